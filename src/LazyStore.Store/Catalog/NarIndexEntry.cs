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
    /// <summary>
    /// Reads a whole NAR into its entries with payload offsets (the caller checks that nothing follows it). The
    /// reader yields them in NAR order already, so they are taken as they come, without building a tree.
    /// </summary>
    public static List<NarIndexEntry> FromNar(Stream nar)
    {
        using var reader = new NarReader(nar, leaveOpen: true);
        var entries = new List<NarIndexEntry>();
        // The ids of the directories open at each depth: an entry at depth d is a child of directories[d - 1].
        var directories = new List<int>();
        while (reader.GetNextEntry() is { } entry)
        {
            var id = entries.Count;
            int? parent = entry.Depth == 0 ? null : directories[entry.Depth - 1];
            entries.Add(entry.Type switch
            {
                NarEntryType.Regular => new NarIndexEntry(id, parent, entry.Name, NarEntryType.Regular, entry.IsExecutable, entry.Size, entry.PayloadOffset, null),
                NarEntryType.Symlink => new NarIndexEntry(id, parent, entry.Name, NarEntryType.Symlink, false, 0, null, entry.LinkTarget),
                _ => new NarIndexEntry(id, parent, entry.Name, NarEntryType.Directory, false, 0, null, null),
            });
            if (entry.Type == NarEntryType.Directory)
            {
                if (directories.Count > entry.Depth)
                    directories.RemoveRange(entry.Depth, directories.Count - entry.Depth);
                directories.Add(id);
            }
        }
        if (entries.Count == 0)
            throw new InvalidDataException("the NAR reader yielded no root node");
        return entries;
    }

    /// <summary>The nodes of a cache's listing in NAR order, without payload offsets (a listing's are never trusted).</summary>
    public static List<NarIndexEntry> FromListing(NarListingNode root) => Flatten(root, keepOffsets: false);

    /// <summary>The entries of a cache's listing as <see cref="NarListing.ParseListingEntries"/> reads them, without payload offsets.</summary>
    public static List<NarIndexEntry> FromListing(IReadOnlyList<NarListingEntry> listing)
    {
        var entries = new List<NarIndexEntry>(listing.Count);
        for (int id = 0; id < listing.Count; id++)
        {
            var e = listing[id];
            entries.Add(new NarIndexEntry(id, e.Parent < 0 ? null : e.Parent, e.Name, e.Type, e.IsExecutable, e.Size, null, e.Target));
        }
        return entries;
    }

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
