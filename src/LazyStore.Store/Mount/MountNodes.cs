using System.Collections.Concurrent;
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

/// <summary>An entry of a lazy store path's tree.</summary>
internal sealed class LazyNode(ulong id, LazyTree tree, int entryId) : MountNode(id)
{
    public LazyTree Tree { get; } = tree;

    public int EntryId { get; } = entryId;

    public Catalog.NarIndexEntry Entry => Tree.Entry(EntryId);

    public string Describe() => Tree.Describe(EntryId);
}

/// <summary>
/// The node ids handed to the kernel and their lookup counts. Lower nodes are keyed by device and
/// inode, so hard links and repeated lookups share one node; lazy nodes by store path and entry.
/// </summary>
internal sealed class NodeTable : IDisposable
{
    private readonly ConcurrentDictionary<ulong, MountNode> _byId = new();
    private readonly Dictionary<(ulong Device, ulong Inode), LowerNode> _lower = [];
    private readonly Dictionary<(string HashPart, int Entry), LazyNode> _lazy = [];
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

    /// <summary>The node for an entry of a lazy path, with one more lookup.</summary>
    public LazyNode AddLazy(LazyTree tree, int entryId)
    {
        var key = (tree.Path.Path.HashPart, entryId);
        lock (_lock)
        {
            // A node made from an older tree (the listing, before the NAR arrived) stays as it is until forgotten.
            if (_lazy.TryGetValue(key, out var existing))
            {
                existing.Lookups++;
                return existing;
            }
            var node = new LazyNode(_nextId++, tree, entryId) { Lookups = 1 };
            _lazy[key] = node;
            _byId[node.Id] = node;
            return node;
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
                    _lazy.Remove((lazy.Tree.Path.Path.HashPart, lazy.EntryId));
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
            _byId.Clear();
        }
    }
}
