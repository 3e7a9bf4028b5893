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
    /// <summary>Reads a whole NAR (which must end where the stream ends) into its entries with payload offsets.</summary>
    public static List<NarIndexEntry> FromNar(Stream nar)
    {
        var entries = new List<NarIndexEntry>();
        using var reader = new NarReader(nar, leaveOpen: true);
        // Entries arrive parents first, so the open directories are exactly the entry's ancestors.
        var parents = new List<int>();
        while (reader.GetNextEntry() is { } entry)
        {
            if (parents.Count > entry.Depth)
                parents.RemoveRange(entry.Depth, parents.Count - entry.Depth);
            int? parent = entry.Depth == 0 ? null : parents[entry.Depth - 1];
            var id = entries.Count;
            entries.Add(new NarIndexEntry(id, parent, entry.Name, entry.Type, entry.IsExecutable, entry.Size,
                entry.Type == NarEntryType.Regular ? entry.PayloadOffset : null, entry.LinkTarget));
            if (entry.Type == NarEntryType.Directory)
                parents.Add(id);
        }
        return entries;
    }

    /// <summary>The nodes of a listing's tree in NAR order, without payload offsets.</summary>
    public static List<NarIndexEntry> FromListing(NarListingNode root)
    {
        var entries = new List<NarIndexEntry>();
        Add(root, parent: null, "");
        return entries;

        void Add(NarListingNode node, int? parent, string name)
        {
            var id = entries.Count;
            entries.Add(node switch
            {
                NarListingRegular r => new NarIndexEntry(id, parent, name, NarEntryType.Regular, r.IsExecutable, r.Size, null, null),
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
