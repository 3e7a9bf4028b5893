using LazyStore.Fuse;

namespace LazyStore.Tests.Fuse;

/// <summary>A node of <see cref="MemoryFileSystem"/>.</summary>
public sealed class MemoryNode
{
    internal MemoryNode(ulong id, string name, uint mode)
    {
        Id = id;
        Name = name;
        Mode = mode;
        LinkCount = (mode & 0xF000) == (uint)FuseFileType.Directory ? 2u : 1u;
        Children = (mode & 0xF000) == (uint)FuseFileType.Directory ? new(StringComparer.Ordinal) : null;
        AccessTime = ModificationTime = ChangeTime = FuseTimestamp.Now;
    }

    public ulong Id { get; }

    public string Name { get; internal set; }

    public uint Mode { get; internal set; }

    public uint UserId { get; internal set; }

    public uint GroupId { get; internal set; }

    public uint LinkCount { get; internal set; }

    public byte[] Data { get; internal set; } = [];

    public string? Target { get; internal set; }

    public SortedDictionary<string, ulong>? Children { get; }

    public Dictionary<string, byte[]> ExtendedAttributes { get; } = new(StringComparer.Ordinal);

    public FuseTimestamp AccessTime { get; internal set; }

    public FuseTimestamp ModificationTime { get; internal set; }

    public FuseTimestamp ChangeTime { get; internal set; }

    public bool IsDirectory => Children is not null;
}

/// <summary>
/// A writable in-memory filesystem for mount tests. It counts the kernel's lookup references per
/// node, and <see cref="Intercept"/> lets a test delay or fail any operation by name.
/// </summary>
public sealed class MemoryFileSystem : IFuseFileSystem
{
    private const int OTrunc = 0x200;

    private readonly object _gate = new();
    private readonly Dictionary<ulong, MemoryNode> _nodes = [];
    private readonly Dictionary<ulong, long> _lookups = [];
    private readonly Dictionary<ulong, ulong> _parents = [];
    private readonly List<string> _violations = [];
    private readonly HashSet<ulong> _directoryHandlesRead = [];
    private ulong _nextId = IFuseFileSystem.RootNodeId + 1;
    private TaskCompletionSource _allForgotten = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public MemoryFileSystem()
    {
        Root = new MemoryNode(IFuseFileSystem.RootNodeId, "", (uint)FuseFileType.Directory | 0b111_101_101);
        _nodes[Root.Id] = Root;
        _parents[Root.Id] = Root.Id;
    }

    public MemoryNode Root { get; }

    /// <summary>How long the kernel may cache entries and attributes; zero makes every access ask again.</summary>
    public TimeSpan CacheTimeout { get; set; }

    /// <summary>How long the kernel may remember that a name does not exist.</summary>
    public TimeSpan NegativeTimeout { get; set; }

    /// <summary>Whether opens keep the kernel's page cache from earlier opens.</summary>
    public bool KeepCache { get; set; }

    /// <summary>Whether readdir replies mark listings as changing behind the kernel's back.</summary>
    public bool UncacheableListings { get; set; }

    public Action<FuseConnection>? OnInitialize { get; set; }

    /// <summary>Awaited at the start of every operation with its name and the node's name; may throw to fail it.</summary>
    public Func<string, string, ValueTask>? Intercept { get; set; }

    /// <summary>Like <see cref="Intercept"/>, for lookup, open and read only, with the request's <see cref="FuseRequestContext.Interrupted"/> token.</summary>
    public Func<string, string, CancellationToken, ValueTask>? InterceptInterruptible { get; set; }

    public FuseConnection? Connection { get; private set; }

    /// <summary>Operations by name, counted as they start.</summary>
    private Dictionary<string, int> Calls { get; } = [];

    /// <summary>Forgets that would have driven a lookup count below zero.</summary>
    public IReadOnlyList<string> Violations
    {
        get
        {
            lock (_gate)
                return _violations.ToList();
        }
    }

    /// <summary>The kernel's lookup references summed over every node.</summary>
    public long OutstandingLookups
    {
        get
        {
            lock (_gate)
                return _lookups.Values.Sum();
        }
    }

    /// <summary>Completes when every lookup reference has been forgotten (after at least one was taken).</summary>
    public Task AllForgotten
    {
        get
        {
            lock (_gate)
                return _allForgotten.Task;
        }
    }

    public MemoryNode AddFile(string path, byte[] data, uint permissions = 0b110_100_100)
    {
        var node = Add(path, (uint)FuseFileType.Regular | permissions);
        node.Data = data;
        return node;
    }

    public MemoryNode AddDirectory(string path) => Add(path, (uint)FuseFileType.Directory | 0b111_101_101);

    public MemoryNode AddSymlink(string path, string target)
    {
        var node = Add(path, (uint)FuseFileType.Symlink | 0b111_111_111);
        node.Target = target;
        return node;
    }

    /// <summary>The node at a slash-separated path below the root, or null.</summary>
    public MemoryNode? Find(string path)
    {
        lock (_gate)
        {
            var node = Root;
            foreach (var part in path.Split('/', StringSplitOptions.RemoveEmptyEntries))
            {
                if (node.Children is null || !node.Children.TryGetValue(part, out var id))
                    return null;
                node = _nodes[id];
            }
            return node;
        }
    }

    public int CallCount(string operation)
    {
        lock (_gate)
            return Calls.GetValueOrDefault(operation);
    }

    /// <summary>The file handles readdir and readdirplus were called with.</summary>
    public IReadOnlySet<ulong> DirectoryHandlesRead
    {
        get
        {
            lock (_gate)
                return _directoryHandlesRead.ToHashSet();
        }
    }

    void IFuseFileSystem.Initialize(FuseConnection connection)
    {
        Connection = connection;
        OnInitialize?.Invoke(connection);
    }

    public async ValueTask<FuseEntry> LookupAsync(FuseRequestContext context, ulong parent, string name)
    {
        await Enter("lookup", name, context.Interrupted);
        lock (_gate)
        {
            var directory = Directory(parent);
            if (!directory.Children!.TryGetValue(name, out var id))
                return FuseEntry.Negative(NegativeTimeout);
            return Referenced(_nodes[id]);
        }
    }

    public void Forget(ulong nodeId, ulong lookupCount)
    {
        lock (_gate)
        {
            long left = _lookups.GetValueOrDefault(nodeId) - (long)lookupCount;
            if (left < 0)
                _violations.Add($"node {nodeId} forgotten {lookupCount} times with {left + (long)lookupCount} lookups");
            if (left <= 0)
            {
                _lookups.Remove(nodeId);
                if (_nodes.TryGetValue(nodeId, out var node) && node.LinkCount == 0)
                    _nodes.Remove(nodeId);
            }
            else
            {
                _lookups[nodeId] = left;
            }
            if (_lookups.Count == 0)
                _allForgotten.TrySetResult();
        }
    }

    public async ValueTask<FuseAttributeResult> GetAttributesAsync(FuseRequestContext context, ulong nodeId, ulong? fileHandle)
    {
        await Enter("getattr", NameOf(nodeId));
        lock (_gate)
            return new FuseAttributeResult(Attributes(Node(nodeId)), CacheTimeout);
    }

    public async ValueTask<FuseAttributeResult> SetAttributesAsync(FuseRequestContext context, ulong nodeId, FuseSetAttributes changes)
    {
        await Enter("setattr", NameOf(nodeId));
        lock (_gate)
        {
            var node = Node(nodeId);
            if (changes.Mode is { } mode)
                node.Mode = (node.Mode & 0xF000) | (mode & 0xFFF);
            if (changes.UserId is { } uid)
                node.UserId = uid;
            if (changes.GroupId is { } gid)
                node.GroupId = gid;
            if (changes.Size is { } size)
                node.Data = Resized(node.Data, size);
            node.AccessTime = Changed(node.AccessTime, changes.AccessTime);
            node.ModificationTime = Changed(node.ModificationTime, changes.ModificationTime);
            node.ChangeTime = FuseTimestamp.Now;
            return new FuseAttributeResult(Attributes(node), CacheTimeout);
        }
    }

    public async ValueTask<string> ReadLinkAsync(FuseRequestContext context, ulong nodeId)
    {
        await Enter("readlink", NameOf(nodeId));
        lock (_gate)
            return Node(nodeId).Target ?? throw new FuseException(Errno.EINVAL);
    }

    public async ValueTask<FuseEntry> MakeNodeAsync(FuseRequestContext context, ulong parent, string name, uint mode, uint deviceNumber)
    {
        await Enter("mknod", name);
        lock (_gate)
            return Referenced(Create(parent, name, mode));
    }

    public async ValueTask<FuseEntry> MakeDirectoryAsync(FuseRequestContext context, ulong parent, string name, uint mode)
    {
        await Enter("mkdir", name);
        lock (_gate)
        {
            var node = Create(parent, name, (uint)FuseFileType.Directory | (mode & 0xFFF));
            Node(parent).LinkCount++;
            return Referenced(node);
        }
    }

    public async ValueTask UnlinkAsync(FuseRequestContext context, ulong parent, string name)
    {
        await Enter("unlink", name);
        lock (_gate)
        {
            var node = Child(parent, name);
            if (node.IsDirectory)
                throw new FuseException(Errno.EISDIR);
            Detach(parent, name, node);
        }
    }

    public async ValueTask RemoveDirectoryAsync(FuseRequestContext context, ulong parent, string name)
    {
        await Enter("rmdir", name);
        lock (_gate)
        {
            var node = Child(parent, name);
            if (!node.IsDirectory)
                throw new FuseException(Errno.ENOTDIR);
            if (node.Children!.Count > 0)
                throw new FuseException(Errno.ENOTEMPTY);
            Detach(parent, name, node);
            node.LinkCount = 0;
            Node(parent).LinkCount--;
        }
    }

    public async ValueTask<FuseEntry> SymlinkAsync(FuseRequestContext context, string target, ulong parent, string name)
    {
        await Enter("symlink", name);
        lock (_gate)
        {
            var node = Create(parent, name, (uint)FuseFileType.Symlink | 0b111_111_111);
            node.Target = target;
            return Referenced(node);
        }
    }

    public async ValueTask RenameAsync(FuseRequestContext context, ulong parent, string name, ulong newParent, string newName, FuseRenameFlags flags)
    {
        await Enter("rename", name);
        lock (_gate)
        {
            var node = Child(parent, name);
            var targets = Directory(newParent).Children!;
            bool exists = targets.TryGetValue(newName, out var existingId);
            if (flags.HasFlag(FuseRenameFlags.Exchange))
            {
                if (!exists)
                    throw new FuseException(Errno.ENOENT);
                var other = _nodes[existingId];
                Directory(parent).Children![name] = other.Id;
                targets[newName] = node.Id;
                (other.Name, node.Name) = (name, newName);
                (_parents[other.Id], _parents[node.Id]) = (parent, newParent);
                return;
            }
            if (exists && flags.HasFlag(FuseRenameFlags.NoReplace))
                throw new FuseException(Errno.EEXIST);
            if (exists)
            {
                var replaced = _nodes[existingId];
                if (replaced.Children is { Count: > 0 })
                    throw new FuseException(Errno.ENOTEMPTY);
                Detach(newParent, newName, replaced);
            }
            Directory(parent).Children!.Remove(name);
            targets[newName] = node.Id;
            node.Name = newName;
            _parents[node.Id] = newParent;
        }
    }

    public async ValueTask<FuseEntry> LinkAsync(FuseRequestContext context, ulong nodeId, ulong newParent, string newName)
    {
        await Enter("link", newName);
        lock (_gate)
        {
            var node = Node(nodeId);
            var children = Directory(newParent).Children!;
            if (!children.TryAdd(newName, nodeId))
                throw new FuseException(Errno.EEXIST);
            node.LinkCount++;
            return Referenced(node);
        }
    }

    public async ValueTask<FuseOpenResult> OpenAsync(FuseRequestContext context, ulong nodeId, int flags)
    {
        await Enter("open", NameOf(nodeId), context.Interrupted);
        lock (_gate)
        {
            var node = Node(nodeId);
            if ((flags & OTrunc) != 0)
                node.Data = [];
            return new FuseOpenResult { FileHandle = nodeId, KeepCache = KeepCache };
        }
    }

    public async ValueTask<int> ReadAsync(FuseRequestContext context, ulong nodeId, ulong fileHandle, long offset, Memory<byte> buffer)
    {
        await Enter("read", NameOf(nodeId), context.Interrupted);
        lock (_gate)
        {
            var data = Node(nodeId).Data;
            if (offset >= data.Length)
                return 0;
            int count = (int)Math.Min(buffer.Length, data.Length - offset);
            data.AsSpan((int)offset, count).CopyTo(buffer.Span);
            return count;
        }
    }

    public async ValueTask<int> WriteAsync(FuseRequestContext context, ulong nodeId, ulong fileHandle, long offset, ReadOnlyMemory<byte> data)
    {
        await Enter("write", NameOf(nodeId));
        lock (_gate)
        {
            var node = Node(nodeId);
            if (offset + data.Length > node.Data.Length)
                node.Data = Resized(node.Data, offset + data.Length);
            data.Span.CopyTo(node.Data.AsSpan((int)offset));
            node.ModificationTime = FuseTimestamp.Now;
            return data.Length;
        }
    }

    public async ValueTask FlushAsync(FuseRequestContext context, ulong nodeId, ulong fileHandle, ulong lockOwner) =>
        await Enter("flush", NameOf(nodeId));

    public async ValueTask ReleaseAsync(FuseRequestContext context, ulong nodeId, ulong fileHandle, int flags) =>
        await Enter("release", NameOf(nodeId));

    public async ValueTask FsyncAsync(FuseRequestContext context, ulong nodeId, ulong fileHandle, bool dataOnly) =>
        await Enter("fsync", NameOf(nodeId));

    public async ValueTask<FuseOpenResult> OpenDirectoryAsync(FuseRequestContext context, ulong nodeId, int flags)
    {
        await Enter("opendir", NameOf(nodeId));
        lock (_gate)
            return new FuseOpenResult { FileHandle = Directory(nodeId).Id };
    }

    public async ValueTask ReleaseDirectoryAsync(FuseRequestContext context, ulong nodeId, ulong fileHandle) =>
        await Enter("releasedir", NameOf(nodeId));

    public async ValueTask ReadDirectoryAsync(FuseRequestContext context, ulong nodeId, ulong fileHandle, long offset, FuseDirectoryBuffer buffer)
    {
        await Enter("readdir", NameOf(nodeId));
        buffer.Uncacheable = UncacheableListings;
        lock (_gate)
        {
            _directoryHandlesRead.Add(fileHandle);
            var listing = Listing(nodeId);
            for (int i = (int)offset; i < listing.Count; i++)
            {
                var (name, node) = listing[i];
                if (!buffer.TryAdd(name, node.Id, (FuseFileType)(node.Mode & 0xF000), i + 1))
                    break;
            }
        }
    }

    public async ValueTask ReadDirectoryPlusAsync(FuseRequestContext context, ulong nodeId, ulong fileHandle, long offset, FuseDirectoryPlusBuffer buffer)
    {
        await Enter("readdirplus", NameOf(nodeId));
        buffer.Uncacheable = UncacheableListings;
        lock (_gate)
        {
            _directoryHandlesRead.Add(fileHandle);
            var listing = Listing(nodeId);
            for (int i = (int)offset; i < listing.Count; i++)
            {
                var (name, node) = listing[i];
                bool dot = name is "." or "..";
                var entry = dot ? new FuseEntry { Attributes = Attributes(node) with { Inode = node.Id } } : Entry(node);
                if (!buffer.TryAdd(name, entry, i + 1))
                    break;
                if (!dot)
                    AddReference(node.Id);
            }
        }
    }

    public async ValueTask<FuseFileSystemStatistics> StatFsAsync(FuseRequestContext context, ulong nodeId)
    {
        await Enter("statfs", NameOf(nodeId));
        lock (_gate)
        {
            return new FuseFileSystemStatistics
            {
                BlockSize = 4096,
                Blocks = 1000,
                BlocksFree = 400,
                BlocksAvailable = 300,
                Files = (ulong)_nodes.Count + 100,
                FilesFree = 100,
                MaxNameLength = 255,
            };
        }
    }

    public async ValueTask SetExtendedAttributeAsync(FuseRequestContext context, ulong nodeId, string name, ReadOnlyMemory<byte> value, int flags)
    {
        await Enter("setxattr", name);
        lock (_gate)
        {
            var attributes = Node(nodeId).ExtendedAttributes;
            bool exists = attributes.ContainsKey(name);
            if ((flags & 1) != 0 && exists)
                throw new FuseException(Errno.EEXIST);
            if ((flags & 2) != 0 && !exists)
                throw new FuseException(Errno.ENODATA);
            attributes[name] = value.ToArray();
        }
    }

    public async ValueTask<byte[]?> GetExtendedAttributeAsync(FuseRequestContext context, ulong nodeId, string name)
    {
        await Enter("getxattr", name);
        lock (_gate)
            return Node(nodeId).ExtendedAttributes.GetValueOrDefault(name);
    }

    public async ValueTask<IReadOnlyList<string>> ListExtendedAttributesAsync(FuseRequestContext context, ulong nodeId)
    {
        await Enter("listxattr", NameOf(nodeId));
        lock (_gate)
            return Node(nodeId).ExtendedAttributes.Keys.ToList();
    }

    public async ValueTask RemoveExtendedAttributeAsync(FuseRequestContext context, ulong nodeId, string name)
    {
        await Enter("removexattr", name);
        lock (_gate)
        {
            if (!Node(nodeId).ExtendedAttributes.Remove(name))
                throw new FuseException(Errno.ENODATA);
        }
    }

    public async ValueTask AccessAsync(FuseRequestContext context, ulong nodeId, int mask) => await Enter("access", NameOf(nodeId));

    public async ValueTask<FuseCreateResult> CreateAsync(FuseRequestContext context, ulong parent, string name, uint mode, int flags)
    {
        await Enter("create", name);
        lock (_gate)
        {
            var node = Create(parent, name, mode);
            return new FuseCreateResult(Referenced(node), new FuseOpenResult { FileHandle = node.Id });
        }
    }

    private async ValueTask Enter(string operation, string name, CancellationToken interrupted = default)
    {
        lock (_gate)
            Calls[operation] = Calls.GetValueOrDefault(operation) + 1;
        if (InterceptInterruptible is { } interruptible)
            await interruptible(operation, name, interrupted);
        if (Intercept is { } intercept)
            await intercept(operation, name);
    }

    private MemoryNode Add(string path, uint mode)
    {
        lock (_gate)
        {
            int slash = path.LastIndexOf('/');
            var parent = slash < 0 ? Root : Find(path[..slash]) ?? throw new ArgumentException($"no directory for {path}");
            var node = Create(parent.Id, path[(slash + 1)..], mode);
            if (node.IsDirectory)
                parent.LinkCount++;
            return node;
        }
    }

    private MemoryNode Create(ulong parent, string name, uint mode)
    {
        var directory = Directory(parent);
        if (directory.Children!.ContainsKey(name))
            throw new FuseException(Errno.EEXIST);
        var node = new MemoryNode(_nextId++, name, mode);
        _nodes[node.Id] = node;
        _parents[node.Id] = parent;
        directory.Children[name] = node.Id;
        directory.ModificationTime = FuseTimestamp.Now;
        return node;
    }

    private void Detach(ulong parent, string name, MemoryNode node)
    {
        Directory(parent).Children!.Remove(name);
        node.LinkCount--;
        if (node.LinkCount == 0 && !_lookups.ContainsKey(node.Id))
            _nodes.Remove(node.Id);
    }

    private List<(string Name, MemoryNode Node)> Listing(ulong nodeId)
    {
        var directory = Directory(nodeId);
        var listing = new List<(string, MemoryNode)> { (".", directory), ("..", _nodes[_parents[nodeId]]) };
        listing.AddRange(directory.Children!.Select(c => (c.Key, _nodes[c.Value])));
        return listing;
    }

    private FuseEntry Referenced(MemoryNode node)
    {
        AddReference(node.Id);
        return Entry(node);
    }

    private void AddReference(ulong nodeId)
    {
        _lookups[nodeId] = _lookups.GetValueOrDefault(nodeId) + 1;
        if (_allForgotten.Task.IsCompleted)
            _allForgotten = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    private FuseEntry Entry(MemoryNode node) => new()
    {
        NodeId = node.Id,
        Attributes = Attributes(node),
        EntryTimeout = CacheTimeout,
        AttributeTimeout = CacheTimeout,
    };

    private static FuseAttributes Attributes(MemoryNode node) => new()
    {
        Mode = node.Mode,
        LinkCount = node.LinkCount,
        UserId = node.UserId,
        GroupId = node.GroupId,
        Size = node.Target is { } target ? System.Text.Encoding.UTF8.GetByteCount(target) : node.Data.Length,
        Blocks = (node.Data.Length + 511) / 512,
        AccessTime = node.AccessTime,
        ModificationTime = node.ModificationTime,
        ChangeTime = node.ChangeTime,
    };

    private string NameOf(ulong nodeId)
    {
        lock (_gate)
            return _nodes.TryGetValue(nodeId, out var node) ? node.Name : "";
    }

    private MemoryNode Node(ulong nodeId) => _nodes.TryGetValue(nodeId, out var node) ? node : throw new FuseException(Errno.ENOENT);

    private MemoryNode Directory(ulong nodeId)
    {
        var node = Node(nodeId);
        return node.IsDirectory ? node : throw new FuseException(Errno.ENOTDIR);
    }

    private MemoryNode Child(ulong parent, string name) =>
        Directory(parent).Children!.TryGetValue(name, out var id) ? _nodes[id] : throw new FuseException(Errno.ENOENT);

    private static byte[] Resized(byte[] data, long size)
    {
        var resized = new byte[size];
        data.AsSpan(0, (int)Math.Min(data.Length, size)).CopyTo(resized);
        return resized;
    }

    private static FuseTimestamp Changed(FuseTimestamp current, FuseTimeChange change) => change.Kind switch
    {
        FuseTimeChangeKind.Now => FuseTimestamp.Now,
        FuseTimeChangeKind.Set => change.Time,
        _ => current,
    };
}
