using System.Collections.Concurrent;
using LazyStore.Fuse;
using LazyStore.Nix.Interop;

namespace LazyStore.Store.Mount;

/// <summary>A node the kernel knows by id; it lives until the kernel forgets every lookup of it.</summary>
internal abstract class MountNode(ulong id)
{
    public ulong Id { get; } = id;

    /// <summary>Lookups the kernel holds; guarded by the table's lock.</summary>
    public ulong Lookups { get; set; }
}

/// <summary>
/// An entry of the lower store directory, held by an O_PATH descriptor (as libfuse's passthrough_ll
/// does): it stays the same file across renames, and its inode cannot be reused while the node lives.
/// </summary>
internal sealed class LowerNode(ulong id, SafeFileDescriptor descriptor, ulong device, ulong inode, PosixFileType type) : MountNode(id)
{
    public SafeFileDescriptor Descriptor { get; } = descriptor;

    public int Fd => Descriptor.Fd;

    public ulong Device { get; } = device;

    public ulong Inode { get; } = inode;

    public PosixFileType Type { get; } = type;

    /// <summary>The file reached by descriptor, for calls without an *at form.</summary>
    public string ProcPath => Posix.DescriptorPath(Fd);
}

/// <summary>
/// An entry of a lazy store path's tree. A node made from the cache's listing moves to the verified tree once
/// the NAR is verified if the listing showed exactly that tree; otherwise it is dropped (stale): whatever it
/// showed may be a lie, and every operation on it fails with ESTALE, on which the kernel looks the path up
/// again (LOOKUP_REVAL) and finds the verified tree.
/// </summary>
internal sealed class LazyNode(ulong id, LazyTree tree, int entryId) : MountNode(id)
{
    private volatile LazyTree? _tree = tree;

    /// <summary>The key of the node table: store path, NAR, entry.</summary>
    public (string HashPart, long NarId, int Entry) Key { get; } = (tree.Path.Path.HashPart, tree.Nar.Id, entryId);

    /// <summary>The tree the node serves; throws ESTALE once the node was dropped.</summary>
    public LazyTree Tree => _tree ?? throw new FuseException(Errno.ESTALE, $"{Describe()}: the cache's listing it came from disagrees with the verified NAR");

    /// <summary>The tree the node serves, or null once it was dropped.</summary>
    public LazyTree? CurrentTree => _tree;

    public int EntryId { get; } = entryId;

    public Catalog.NarIndexEntry Entry => Tree.Entry(EntryId);

    /// <summary>The root name of the node's store path in the mount's root.</summary>
    public string BaseName { get; } = tree.Path.Path.BaseName;

    private readonly LazyTree _origin = tree;

    public string Describe() => _origin.Describe(EntryId);

    /// <summary>Moves the node to <paramref name="verified"/> (the same tree, read from the NAR), or drops it when null. Under the table's lock.</summary>
    public void Supersede(LazyTree? verified) => _tree = verified;
}

/// <summary>
/// The node ids handed to the kernel and their lookup counts. Lower nodes are keyed by device and
/// inode, so hard links and repeated lookups share one node; lazy nodes by store path and entry.
/// </summary>
internal sealed class NodeTable : IDisposable
{
    private readonly ConcurrentDictionary<ulong, MountNode> _byId = new();
    private readonly Dictionary<(ulong Device, ulong Inode), LowerNode> _lower = [];
    private readonly Dictionary<(string HashPart, long NarId, int Entry), LazyNode> _lazy = [];

    // Nodes still serving a listing's tree, by NAR, so that the NAR's verification finds them.
    private readonly Dictionary<long, HashSet<LazyNode>> _listed = [];
    private readonly Lock _lock = new();
    private ulong _nextId = 2;

    public NodeTable(LowerNode root)
    {
        Root = root;
        _byId[root.Id] = root;
        _lower[(root.Device, root.Inode)] = root;
    }

    public LowerNode Root { get; }

    public int Count => _byId.Count;

    public MountNode? Find(ulong id) => _byId.GetValueOrDefault(id);

    /// <summary>
    /// The node for a lower file just opened by <paramref name="descriptor"/>, with one more lookup; the
    /// descriptor is closed when a node for the same file already exists.
    /// </summary>
    public LowerNode AddLower(SafeFileDescriptor descriptor, in PosixStat stat)
    {
        lock (_lock)
        {
            if (_lower.TryGetValue((stat.Device, stat.Inode), out var existing))
            {
                descriptor.Dispose();
                existing.Lookups++;
                return existing;
            }
            var node = new LowerNode(_nextId++, descriptor, stat.Device, stat.Inode, stat.Type) { Lookups = 1 };
            _lower[(stat.Device, stat.Inode)] = node;
            _byId[node.Id] = node;
            return node;
        }
    }

    /// <summary>
    /// The node for an entry of a lazy path, with one more lookup. An entry of a listing's tree that a verified
    /// tree has replaced is an entry of that tree (when they agree) or ESTALE (when they do not).
    /// </summary>
    public LazyNode AddLazy(LazyTree tree, int entryId)
    {
        lock (_lock)
        {
            if (!tree.IsVerified && tree.Verdict is { } verdict)
                tree = verdict.Agrees ? verdict.Tree : throw new FuseException(Errno.ESTALE, $"{tree.Describe(entryId)}: the cache's listing disagrees with the verified NAR");
            var key = (tree.Path.Path.HashPart, tree.Nar.Id, entryId);
            if (_lazy.TryGetValue(key, out var existing))
            {
                existing.Lookups++;
                return existing;
            }
            var node = new LazyNode(_nextId++, tree, entryId) { Lookups = 1 };
            _lazy[key] = node;
            _byId[node.Id] = node;
            if (!tree.IsVerified)
            {
                if (!_listed.TryGetValue(tree.Nar.Id, out var listed))
                    _listed[tree.Nar.Id] = listed = [];
                listed.Add(node);
            }
            return node;
        }
    }

    /// <summary>
    /// Moves every node still serving a listing's tree of <paramref name="verified"/>'s NAR to the verified tree,
    /// or drops it where <paramref name="supersede"/> says the listing disagreed (null). Returns the dropped nodes:
    /// the kernel may still hold their entries and attributes.
    /// </summary>
    public IReadOnlyList<LazyNode> Supersede(LazyTree verified, Func<LazyTree, LazyTree?> supersede)
    {
        lock (_lock)
        {
            if (!_listed.Remove(verified.Nar.Id, out var listed))
                return [];
            var dropped = new List<LazyNode>();
            foreach (var node in listed)
            {
                if (node.CurrentTree is not { } tree)
                    continue;
                var successor = supersede(tree);
                node.Supersede(successor);
                if (successor is null)
                {
                    // The key may be given to a node of the verified tree now; this one lives until forgotten.
                    _lazy.Remove(node.Key);
                    dropped.Add(node);
                }
            }
            return dropped;
        }
    }
    public void Forget(ulong id, ulong count)
    {
        lock (_lock)
        {
            if (id == Root.Id || !_byId.TryGetValue(id, out var node))
                return;
            node.Lookups = node.Lookups > count ? node.Lookups - count : 0;
            if (node.Lookups > 0)
                return;
            _byId.TryRemove(id, out _);
            switch (node)
            {
                case LowerNode lower:
                    _lower.Remove((lower.Device, lower.Inode));
                    lower.Descriptor.Dispose();
                    break;
                case LazyNode lazy:
                    if (_lazy.TryGetValue(lazy.Key, out var current) && current == lazy)
                        _lazy.Remove(lazy.Key);
                    if (lazy.CurrentTree is { IsVerified: false } listing && _listed.TryGetValue(listing.Nar.Id, out var listed) && listed.Remove(lazy) && listed.Count == 0)
                        _listed.Remove(listing.Nar.Id);
                    break;
            }
        }
    }

    public void Dispose()
    {
        lock (_lock)
        {
            foreach (var node in _lower.Values)
                node.Descriptor.Dispose();
            _lower.Clear();
            _lazy.Clear();
            _listed.Clear();
            _byId.Clear();
        }
    }
}
