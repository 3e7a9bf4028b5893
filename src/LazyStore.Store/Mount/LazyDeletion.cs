using LazyStore.Nix.Nar;
using LazyStore.Store.Catalog;

namespace LazyStore.Store.Mount;

/// <summary>
/// How far the deletion of a lazy path has got. Nix deletes a store path as it would any directory
/// (deletePath): it makes each directory writable (chmod u+rwx), unlinks what is inside, and removes
/// the directories bottom up. Entries removed stay hidden for the rest of the mount; the path leaves
/// the catalog when its root goes. Nothing else may change a lazy path.
/// </summary>
internal sealed class LazyDeletion
{
    private const uint OwnerPermissions = 0x1C0;

    private readonly Lock _lock = new();
    private readonly HashSet<int> _removed = [];
    private readonly Dictionary<int, uint> _permissions = [];

    public bool IsRemoved(int entryId)
    {
        lock (_lock)
            return _removed.Contains(entryId);
    }

    /// <summary>The permission bits a chmod gave the entry, or null when it still has the canonical ones.</summary>
    public uint? Permissions(int entryId)
    {
        lock (_lock)
            return _permissions.TryGetValue(entryId, out var permissions) ? permissions : null;
    }

    /// <summary>
    /// Accepts deletePath's chmod: a directory's permissions may gain owner bits, nothing else. Returns
    /// false for any other change.
    /// </summary>
    public bool TrySetPermissions(NarIndexEntry entry, uint canonical, uint requested)
    {
        requested &= 0xFFF;
        if (entry.Type != NarEntryType.Directory || (requested & ~OwnerPermissions) != (canonical & ~OwnerPermissions))
            return false;
        lock (_lock)
            _permissions[entry.Id] = requested;
        return true;
    }

    /// <summary>The entries of a directory that are not removed.</summary>
    public IEnumerable<NarIndexEntry> Remaining(LazyTree tree, int directory)
    {
        lock (_lock)
            return tree.Children(directory).Where(c => !_removed.Contains(c.Id)).ToList();
    }

    /// <summary>Removes an entry; a directory only when nothing inside it is left. False when it is not empty.</summary>
    public bool TryRemove(LazyTree tree, NarIndexEntry entry)
    {
        lock (_lock)
        {
            if (entry.Type == NarEntryType.Directory && tree.Children(entry.Id).Any(c => !_removed.Contains(c.Id)))
                return false;
            _removed.Add(entry.Id);
            return true;
        }
    }
}
