using LazyStore.Nix.Nar;

namespace LazyStore.Store.Catalog;

/// <summary>
/// One node of a NAR's tree as the index keeps it. <see cref="Id"/> numbers nodes in NAR order (root 0);
/// <see cref="PayloadOffset"/> is known only once the NAR itself was read (listings' offsets are never trusted).
/// </summary>
public sealed record NarIndexEntry(
    int Id,
    int? Parent,
    string Name,
    NarEntryType Type,
    bool IsExecutable,
    long Size,
    long? PayloadOffset,
    string? Target)
{
    /// <summary>Reads a whole NAR into its entries with payload offsets (the caller checks that nothing follows it).</summary>
    public static List<NarIndexEntry> FromNar(Stream nar) => Flatten(NarListing.FromNar(nar), keepOffsets: true);

    /// <summary>The nodes of a cache's listing in NAR order, without payload offsets (a listing's are never trusted).</summary>
    public static List<NarIndexEntry> FromListing(NarListingNode root) => Flatten(root, keepOffsets: false);

    private static List<NarIndexEntry> Flatten(NarListingNode root, bool keepOffsets)
    {
        var entries = new List<NarIndexEntry>();
        Add(root, parent: null, "");
        return entries;

        void Add(NarListingNode node, int? parent, string name)
        {
            var id = entries.Count;
            entries.Add(node switch
            {
                NarListingRegular r => new NarIndexEntry(id, parent, name, NarEntryType.Regular, r.IsExecutable, r.Size, keepOffsets ? r.NarOffset : null, null),
                NarListingSymlink s => new NarIndexEntry(id, parent, name, NarEntryType.Symlink, false, 0, null, s.Target),
                _ => new NarIndexEntry(id, parent, name, NarEntryType.Directory, false, 0, null, null),
            });
            // The listing's directories are sorted by NarGrammar.NameComparer, which is NAR order.
            if (node is NarListingDirectory directory)
            {
                foreach (var (childName, child) in directory.Entries)
                    Add(child, id, childName);
            }
        }
    }

    /// <summary>Rebuilds the listing tree of a NAR from its entries (in NAR order).</summary>
    public static NarListingNode ToListing(IReadOnlyList<NarIndexEntry> entries)
    {
        var nodes = new NarListingNode[entries.Count];
        foreach (var e in entries)
        {
            NarListingNode node = e.Type switch
            {
                NarEntryType.Regular => new NarListingRegular(e.Size, e.IsExecutable, e.PayloadOffset),
                NarEntryType.Symlink => new NarListingSymlink(e.Target ?? ""),
                _ => new NarListingDirectory(),
            };
            nodes[e.Id] = node;
            if (e.Parent is { } parent)
                ((NarListingDirectory)nodes[parent]).Entries.Add(e.Name, node);
        }
        return nodes[0];
    }
}
