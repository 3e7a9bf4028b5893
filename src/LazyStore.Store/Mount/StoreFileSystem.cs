using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Text;
using LazyStore.Fuse;
using LazyStore.Nix.Interop;
using LazyStore.Nix.Nar;
using LazyStore.Store.Catalog;
using LazyStore.Store.Fetch;

namespace LazyStore.Store.Mount;

/// <summary>
/// The overlay the kernel sees: the lower store directory passed through (reads and writes), and lazy
/// store paths as read-only trees with Nix's canonical metadata whose files are read from verified NAR
/// blobs. A name in the root that exists in the lower directory always wins over a lazy path.
/// </summary>
/// <remarks>
/// Timeouts: lazy content never changes, so the kernel may keep its entries, attributes and pages for
/// a day. Lower entries change only through this mount (the kernel then updates its caches itself),
/// so a second is enough for the rare change behind its back. Root names that are not there are never
/// cached, so a path registered by another process shows up at its next lookup.
/// </remarks>
internal sealed partial class StoreFileSystem : IFuseFileSystem, IDisposable
{
    private static readonly TimeSpan LazyTimeout = TimeSpan.FromDays(1);
    private static readonly TimeSpan LowerTimeout = TimeSpan.FromSeconds(1);

    /// <summary>Nix's canonical timestamp for store paths (canonicalisePathMetaData: mtime 1).</summary>
    private static readonly FuseTimestamp CanonicalTime = new(1, 0);

    // Lazy inode numbers: the top bit set (lower filesystems do not hand such out), then the NAR's row
    // id and the entry's number in NAR order, so an entry keeps its st_ino across lookups and mounts.
    private const ulong LazyInodeBit = 1UL << 63;

    private const uint CanonicalDirectoryPermissions = 0x16D;

    private const int OAccessModes = 3;
    private const int OTruncate = 0x200;
    private const int AtSymlinkFollow = 0x400;

    private readonly LazyStoreEngine _engine;
    private readonly LazyTrees _trees;
    private readonly NodeTable _nodes;
    private readonly MountLog _log;
    private readonly KernelCacheInvalidations _kernelCaches;
    private readonly ConcurrentDictionary<ulong, OpenHandle> _handles = new();
    private readonly ConditionalWeakTable<MountNode, NodeListings> _nodeListings = new();
    private long _nextHandle;
    private long _lazyOpens;
    private long _failedOpens;

    public StoreFileSystem(LazyStoreEngine engine, SafeFileDescriptor lowerRoot, string lowerPath, StoreMountOptions options)
    {
        _engine = engine;
        _log = new MountLog(options.Log, options.Verbosity);
        _trees = new LazyTrees(engine, options, _log);
        _engine.Substituters.Warning += _log.Error;
        // The caches' nix-cache-info is read while the mount starts rather than at the first lookup.
        _ = _engine.Substituters.InitializeAsync(CancellationToken.None);
        _trees.Verified += SupersedeListings;
        _kernelCaches = new KernelCacheInvalidations(_log);
        var stat = Posix.StatAt(lowerRoot.Fd, "");
        if (stat.Type != PosixFileType.Directory)
            throw new IOException($"the lower store directory {lowerPath} is not a directory");
        _nodes = new NodeTable(new LowerNode(IFuseFileSystem.RootNodeId, lowerRoot, stat.Device, stat.Inode, stat.Type) { Lookups = 1 });
    }

    /// <summary>The kernel behind this file system, once mounted: the mount's caches of dropped listings are invalidated through it.</summary>
    public void Attach(FuseMount kernel) => _kernelCaches.Attach(kernel);

    /// <summary>Completes when every kernel cache invalidation asked for so far was sent.</summary>
    public Task KernelCachesInvalidated => _kernelCaches.Completion;

    public StoreMountStatistics Statistics =>
        new(Interlocked.Read(ref _lazyOpens), Interlocked.Read(ref _failedOpens), _engine.Nars.NarsFetched, _engine.Nars.BytesDownloaded);

    public void Initialize(FuseConnection connection)
    {
        // Symlink targets in lazy paths never change, and lower ones change only through the mount,
        // which the kernel sees: it may keep readlink results in its page cache.
        connection.TryEnable(FuseCapabilities.CacheSymlinks);
        // A directory's open and close then cost no round trip (a warm `find` over a lazy tree made
        // two per directory). Lazy listings never change, so the kernel keeps them; lower ones can
        // change behind its back (the root's registered paths among them), so they are uncacheable.
        connection.TryEnable(FuseCapabilities.NoOpendirSupport);
        // With default_permissions alone the kernel checks mode bits only; with POSIX ACLs it reads each
        // inode's ACL through getxattr and enforces it, as for a plain directory. It then also leaves the
        // umask to the file system (DONT_MASK): the lower one applies the caller's (CallerCredentials), or
        // ignores it under a default ACL.
        connection.TryEnable(FuseCapabilities.PosixAcl | FuseCapabilities.DontMask);
    }

    // ---- names and attributes ----

    public ValueTask<FuseEntry> LookupAsync(FuseRequestContext context, ulong parent, string name)
    {
        switch (Node(parent))
        {
            case LazyNode lazy:
                if (lazy.Entry.Type != NarEntryType.Directory)
                    throw new FuseException(Errno.ENOTDIR);
                if (lazy.Tree.Lookup(lazy.EntryId, name) is not { } child)
                    return new(FuseEntry.Negative(LazyTimeout));
                // A deleted entry stays gone for this mount only: not a negative entry to keep for a day.
                return new(_trees.DeletionOf(lazy.Tree)?.IsRemoved(child.Id) == true
                    ? FuseEntry.Negative(TimeSpan.Zero)
                    : LazyEntry(_nodes.AddLazy(lazy.Tree, child.Id)));
            case LowerNode lower:
                if (TryLookupLower(lower, name) is { } entry)
                    return new(entry);
                return lower == _nodes.Root ? LookupLazyRootAsync(name, context.Interrupted) : new(FuseEntry.Negative(LowerTimeout));
            default:
                throw new FuseException(Errno.ESTALE);
        }
    }

    /// <summary>A root name that is not on disk; <paramref name="interrupted"/> ends the wait for the caches (EINTR).</summary>
    private async ValueTask<FuseEntry> LookupLazyRootAsync(string name, CancellationToken interrupted)
    {
        LazyTree? tree;
        try
        {
            tree = await _trees.FindAsync(name, interrupted).ConfigureAwait(false);
        }
        catch (LazyPathUnavailableException e)
        {
            _log.Error($"lookup {name}: {e.Message}");
            throw new FuseException(Errno.EIO, e.Message, e);
        }
        if (tree is null)
        {
            _log.Debug($"lookup {name}: neither in the lower directory nor a lazy path");
            return FuseEntry.Negative(TimeSpan.Zero);
        }
        return LazyEntry(_nodes.AddLazy(tree, tree.Root.Id));
    }

    /// <summary>The lower entry <paramref name="name"/> of <paramref name="parent"/> with one more lookup, or null when there is none.</summary>
    private FuseEntry? TryLookupLower(LowerNode parent, string name)
    {
        SafeFileDescriptor descriptor;
        try
        {
            descriptor = Posix.OpenAt(parent.Fd, name, Posix.OPath | Posix.ONoFollow);
        }
        catch (PosixException e) when (e.Errno == Errno.ENOENT)
        {
            return null;
        }
        catch (PosixException e)
        {
            throw Fail(e);
        }
        PosixStat stat;
        try
        {
            stat = Posix.StatAt(descriptor.Fd, "");
        }
        catch (PosixException e)
        {
            descriptor.Dispose();
            throw Fail(e);
        }
        return LowerEntry(_nodes.AddLower(descriptor, stat), stat);
    }

    private FuseEntry LookupLowerCreated(LowerNode parent, string name) =>
        TryLookupLower(parent, name) ?? throw new FuseException(Errno.ENOENT, $"'{name}' vanished right after it was created");

    public void Forget(ulong nodeId, ulong lookupCount) => _nodes.Forget(nodeId, lookupCount);

    public ValueTask<FuseAttributeResult> GetAttributesAsync(FuseRequestContext context, ulong nodeId, ulong? fileHandle) =>
        new(Node(nodeId) switch
        {
            LazyNode lazy => new FuseAttributeResult(LazyAttributes(lazy.Tree, lazy.Entry), LazyTimeout),
            LowerNode lower => new FuseAttributeResult(LowerAttributes(Stat(lower)), LowerTimeout),
            _ => throw new FuseException(Errno.ESTALE),
        });

    public ValueTask<string> ReadLinkAsync(FuseRequestContext context, ulong nodeId)
    {
        switch (Node(nodeId))
        {
            case LazyNode lazy:
                var tree = lazy.Tree;
                if (tree.Entry(lazy.EntryId).Target is not { } target)
                    throw new FuseException(Errno.EINVAL);
                // The kernel follows a link without asking again, also out of the mount (to /, to a file of
                // root's): a target is served only from the verified NAR, never from the unsigned listing.
                return tree.IsVerified ? new(target) : ReadListedLinkAsync(lazy, context.Interrupted);
            case LowerNode lower:
                try
                {
                    return new(Encoding.UTF8.GetString(Posix.ReadLinkAt(lower.Fd, "")));
                }
                catch (PosixException e)
                {
                    throw Fail(e);
                }
            default:
                throw new FuseException(Errno.ESTALE);
        }
    }

    private async ValueTask<string> ReadListedLinkAsync(LazyNode node, CancellationToken interrupted)
    {
        try
        {
            SupersedeListings(await _trees.EnsureVerifiedAsync(node.Tree, interrupted).ConfigureAwait(false));
        }
        catch (LazyPathUnavailableException e)
        {
            _log.Error($"readlink {node.Describe()}: {e.Message}");
            throw new FuseException(Errno.EIO, e.Message, e);
        }
        // Moved to the verified tree, the node's entry is the NAR's own symlink; dropped, it fails with ESTALE
        // and the kernel walks the path again through the verified tree.
        if (node.Tree is { IsVerified: true } verified && verified.Entry(node.EntryId).Target is { } target)
            return target;
        _log.Error($"readlink {node.Describe()}: the verified NAR does not confirm the listed symlink");
        throw new FuseException(Errno.EIO);
    }

    /// <summary>
    /// Moves the nodes made from a listing of <paramref name="verified"/>'s NAR to the verified tree where the
    /// listing agreed with it; where it did not, drops them and has the kernel forget what it cached from them.
    /// </summary>
    private void SupersedeListings(LazyTree verified)
    {
        var dropped = _nodes.Supersede(verified, listing => _trees.Supersede(listing, verified));
        if (dropped.Count > 0)
            _kernelCaches.Forget(dropped.Select(n => n.BaseName).Distinct(StringComparer.Ordinal).ToList(), dropped.Select(n => n.Id).ToList());
    }

    private FuseEntry LazyEntry(LazyNode node) => new()
    {
        NodeId = node.Id,
        Attributes = LazyAttributes(node.Tree, node.Entry),
        EntryTimeout = LazyTimeout,
        AttributeTimeout = LazyTimeout,
    };

    private static FuseEntry LowerEntry(LowerNode node, in PosixStat stat) => new()
    {
        NodeId = node.Id,
        Attributes = LowerAttributes(stat),
        EntryTimeout = LowerTimeout,
        AttributeTimeout = LowerTimeout,
    };

    /// <summary>
    /// What Nix makes of a store path's files: root-owned, r-x or r--, mtime 1 (canonicalisePathMetaData);
    /// while Nix deletes the path, the directories it made writable and what is left in them.
    /// </summary>
    private FuseAttributes LazyAttributes(LazyTree tree, NarIndexEntry entry)
    {
        var deletion = _trees.DeletionOf(tree);
        var (mode, size, links) = entry.Type switch
        {
            NarEntryType.Directory => ((uint)FuseFileType.Directory | (deletion?.Permissions(entry.Id) ?? CanonicalDirectoryPermissions), 0L,
                2u + (uint)(deletion?.Remaining(tree, entry.Id) ?? tree.Children(entry.Id)).Count(c => c.Type == NarEntryType.Directory)),
            NarEntryType.Symlink => ((uint)FuseFileType.Symlink | 0x1FF, (long)Encoding.UTF8.GetByteCount(entry.Target ?? ""), 1u),
            _ => ((uint)FuseFileType.Regular | (entry.IsExecutable ? 0x16Du : 0x124u), entry.Size, 1u),
        };
        return new FuseAttributes
        {
            Inode = LazyInode(tree.Nar.Id, entry.Id),
            Mode = mode,
            LinkCount = links,
            Size = size,
            Blocks = (size + 511) / 512,
            AccessTime = CanonicalTime,
            ModificationTime = CanonicalTime,
            ChangeTime = CanonicalTime,
        };
    }

    private static ulong LazyInode(long narId, int entryId) => LazyInodeBit | ((ulong)narId << 32) | (uint)entryId;

    private static FuseAttributes LowerAttributes(in PosixStat stat) => new()
    {
        Inode = stat.Inode,
        Mode = stat.Mode,
        LinkCount = stat.LinkCount,
        UserId = stat.Uid,
        GroupId = stat.Gid,
        DeviceNumber = (uint)stat.RDevice,
        Size = stat.Size,
        Blocks = stat.Blocks,
        BlockSize = (int)stat.BlockSize,
        AccessTime = new FuseTimestamp(stat.Access.Seconds, stat.Access.Nanoseconds),
        ModificationTime = new FuseTimestamp(stat.Modification.Seconds, stat.Modification.Nanoseconds),
        ChangeTime = new FuseTimestamp(stat.Change.Seconds, stat.Change.Nanoseconds),
    };

    private static PosixStat Stat(LowerNode node)
    {
        try
        {
            return Posix.StatAt(node.Fd, "");
        }
        catch (PosixException e)
        {
            throw Fail(e);
        }
    }

    // ---- files ----

    public ValueTask<FuseOpenResult> OpenAsync(FuseRequestContext context, ulong nodeId, int flags)
    {
        switch (Node(nodeId))
        {
            case LazyNode lazy:
                if ((flags & OAccessModes) != Posix.ORead || (flags & OTruncate) != 0)
                    throw new FuseException(Errno.EROFS);
                return OpenLazyAsync(lazy, context.Interrupted);
            case LowerNode lower:
                try
                {
                    var descriptor = Posix.OpenAt(Posix.AtFdCwd, lower.ProcPath, flags & ~(Posix.ONoFollow | Posix.OCreate | Posix.OExclusive));
                    return new(new FuseOpenResult { FileHandle = AddHandle(new LowerFile(descriptor)) });
                }
                catch (PosixException e)
                {
                    throw Fail(e);
                }
            default:
                throw new FuseException(Errno.ESTALE);
        }
    }

    /// <summary>A lazy file's first open waits for its NAR; <paramref name="interrupted"/> ends the wait (EINTR), not the shared download.</summary>
    private async ValueTask<FuseOpenResult> OpenLazyAsync(LazyNode node, CancellationToken interrupted)
    {
        Interlocked.Increment(ref _lazyOpens);
        var listedTree = node.Tree;
        var listed = listedTree.Entry(node.EntryId);
        if (listed.Type != NarEntryType.Regular)
            throw new FuseException(Errno.EISDIR);
        _log.Debug($"open {node.Describe()}");
        LazyTree tree;
        NarBlob blob;
        try
        {
            (tree, blob) = await _trees.OpenBlobAsync(listedTree, interrupted).ConfigureAwait(false);
            if (!listedTree.IsVerified)
                SupersedeListings(tree);
        }
        catch (LazyPathUnavailableException e)
        {
            Interlocked.Increment(ref _failedOpens);
            _log.Error($"open {node.Describe()}: {e.Message}");
            throw new FuseException(Errno.EIO, e.Message, e);
        }
        // A node from the cache's listing, which nothing verified, was moved to the verified tree if the
        // listing showed exactly that tree; if not, it was dropped, and the kernel, told ESTALE, walks the
        // path again through the verified tree.
        if (node.CurrentTree is not { IsVerified: true } current)
        {
            blob.Dispose();
            throw new FuseException(Errno.ESTALE, $"open {node.Describe()}: the cache's listing disagrees with the verified NAR");
        }
        var verified = current.Entry(node.EntryId);
        if (verified.Type != listed.Type || verified.Size != listed.Size || verified.IsExecutable != listed.IsExecutable)
        {
            blob.Dispose();
            Interlocked.Increment(ref _failedOpens);
            _log.Error($"open {node.Describe()}: listed as {LazyTree.Show(listed)}, the verified NAR has {LazyTree.Show(verified)}");
            throw new FuseException(Errno.EIO);
        }
        return new FuseOpenResult { FileHandle = AddHandle(new LazyFile(blob, verified)), KeepCache = true };
    }

    public ValueTask<int> ReadAsync(FuseRequestContext context, ulong nodeId, ulong fileHandle, long offset, Memory<byte> buffer)
    {
        try
        {
            // Positional reads of local files: cheaper done on the worker than handed to another thread.
            return new(Handle(fileHandle) switch
            {
                LazyFile lazy => lazy.Blob.Read(lazy.Entry, offset, buffer.Span),
                LowerFile lower => Posix.ReadAt(lower.Fd, buffer.Span, offset),
                _ => throw new FuseException(Errno.EBADF),
            });
        }
        catch (PosixException e)
        {
            throw Fail(e);
        }
        catch (IOException e)
        {
            throw new FuseException(Errno.EIO, e.Message, e);
        }
    }

    public ValueTask<int> WriteAsync(FuseRequestContext context, ulong nodeId, ulong fileHandle, long offset, ReadOnlyMemory<byte> data)
    {
        if (Handle(fileHandle) is not LowerFile lower)
            throw new FuseException(Errno.EROFS);
        try
        {
            return new(Posix.WriteAt(lower.Fd, data.Span, offset));
        }
        catch (PosixException e)
        {
            throw Fail(e);
        }
    }

    public ValueTask FlushAsync(FuseRequestContext context, ulong nodeId, ulong fileHandle, ulong lockOwner) => ValueTask.CompletedTask;

    public ValueTask ReleaseAsync(FuseRequestContext context, ulong nodeId, ulong fileHandle, int flags)
    {
        if (_handles.TryRemove(fileHandle, out var handle))
            handle.Dispose();
        return ValueTask.CompletedTask;
    }

    public ValueTask FsyncAsync(FuseRequestContext context, ulong nodeId, ulong fileHandle, bool dataOnly)
    {
        if (Handle(fileHandle) is LowerFile lower)
        {
            try
            {
                Posix.Sync(lower.Fd, dataOnly);
            }
            catch (PosixException e)
            {
                throw Fail(e);
            }
        }
        return ValueTask.CompletedTask;
    }

    // ---- directories ----

    public ValueTask<FuseOpenResult> OpenDirectoryAsync(FuseRequestContext context, ulong nodeId, int flags)
    {
        var node = Node(nodeId);
        if (node is LazyNode { Entry.Type: not NarEntryType.Directory })
            throw new FuseException(Errno.ENOTDIR);
        var immutable = node is LazyNode;
        return new(new FuseOpenResult
        {
            FileHandle = AddHandle(NewListing(node)),
            CacheDirectory = immutable,
            KeepCache = immutable,
        });
    }

    /// <summary>The listing is made at the first readdir: a kernel that cached this directory's entries opens it and reads nothing.</summary>
    private DirectoryListing NewListing(MountNode node)
    {
        Func<List<DirectoryItem>> list = node switch
        {
            LazyNode lazy => () => ListLazy(lazy),
            LowerNode lower => () => ListLower(lower),
            _ => throw new FuseException(Errno.ESTALE),
        };
        return new DirectoryListing(node, list);
    }

    /// <summary>
    /// The listing a readdir reads: its open handle's, or when the kernel opened the directory without
    /// asking (handle 0), the node's listing that <paramref name="offset"/> names; a new one from
    /// offset 0, or when the one named is no longer kept (then read on from the same index).
    /// </summary>
    private ListingRead ReadListing(ulong nodeId, ulong fileHandle, long offset)
    {
        if (fileHandle != 0)
            return new ListingRead(Listing(fileHandle), null, 0, offset);
        var node = Node(nodeId);
        var listings = _nodeListings.GetValue(node, _ => new NodeListings());
        var (listing, generation) = (offset != 0 ? listings.Find(ListingRead.GenerationOf(offset)) : null) ?? listings.Start(NewListing(node));
        return new ListingRead(listing, listings, generation, offset);
    }

    private List<DirectoryItem> ListLazy(LazyNode node)
    {
        var self = LazyInode(node.Tree.Nar.Id, node.EntryId);
        var parent = node.Entry.Parent is { } p ? LazyInode(node.Tree.Nar.Id, p) : self;
        var items = new List<DirectoryItem> { DirectoryItem.Dot(".", self), DirectoryItem.Dot("..", parent) };
        foreach (var child in _trees.DeletionOf(node.Tree)?.Remaining(node.Tree, node.EntryId) ?? node.Tree.Children(node.EntryId))
            items.Add(new DirectoryItem(child.Name, LazyInode(node.Tree.Nar.Id, child.Id), FileType(child.Type), DirectoryItemKind.Lazy, child.Id));
        return items;
    }

    /// <summary>A snapshot of a lower directory (and for the root, the lazy paths it does not shadow), so offsets stay valid while it is read.</summary>
    private List<DirectoryItem> ListLower(LowerNode node)
    {
        List<PosixDirectoryEntry> entries;
        try
        {
            entries = Posix.ReadDirectory(node.Fd, ".", 0, int.MaxValue);
        }
        catch (PosixException e)
        {
            throw Fail(e);
        }
        var items = new List<DirectoryItem>(entries.Count);
        foreach (var e in entries)
        {
            items.Add(e.Name is "." or ".."
                ? DirectoryItem.Dot(e.Name, e.Inode)
                : new DirectoryItem(e.Name, e.Inode, (FuseFileType)e.Type, DirectoryItemKind.Lower));
        }
        if (node == _nodes.Root)
        {
            var lower = entries.Select(e => e.Name).ToHashSet(StringComparer.Ordinal);
            foreach (var root in _trees.ListRoot())
            {
                if (!lower.Contains(root.BaseName))
                    items.Add(new DirectoryItem(root.BaseName, LazyInode(root.NarId, 0), root.RootType is { } t ? FileType(t) : 0, DirectoryItemKind.LazyRoot));
            }
        }
        return items;
    }

    private static FuseFileType FileType(NarEntryType type) => type switch
    {
        NarEntryType.Directory => FuseFileType.Directory,
        NarEntryType.Symlink => FuseFileType.Symlink,
        _ => FuseFileType.Regular,
    };

    public ValueTask ReadDirectoryAsync(FuseRequestContext context, ulong nodeId, ulong fileHandle, long offset, FuseDirectoryBuffer buffer)
    {
        var read = ReadListing(nodeId, fileHandle, offset);
        buffer.Uncacheable = read.Listing.Node is not LazyNode;
        var items = read.Listing.Items;
        for (var i = read.Start; i < items.Count; i++)
        {
            var item = items[i];
            if (!buffer.TryAdd(item.Name, item.Inode, item.Type, read.Cookie(i)))
                break;
        }
        read.EndIfDone();
        return ValueTask.CompletedTask;
    }

    public ValueTask ReadDirectoryPlusAsync(FuseRequestContext context, ulong nodeId, ulong fileHandle, long offset, FuseDirectoryPlusBuffer buffer)
    {
        var read = ReadListing(nodeId, fileHandle, offset);
        var listing = read.Listing;
        buffer.Uncacheable = listing.Node is not LazyNode;
        for (var i = read.Start; i < listing.Items.Count; i++)
        {
            var item = listing.Items[i];
            FuseEntry entry;
            switch (item.Kind)
            {
                case DirectoryItemKind.Lower:
                    if (TryLookupLower((LowerNode)listing.Node, item.Name) is not { } lower)
                        continue;
                    entry = lower;
                    break;
                case DirectoryItemKind.Lazy:
                    entry = LazyEntry(_nodes.AddLazy(((LazyNode)listing.Node).Tree, item.EntryId));
                    break;
                default:
                    // "." and "..", and lazy roots whose tree may not be known yet: names only, no lookup.
                    entry = new FuseEntry { Attributes = new FuseAttributes { Inode = item.Inode, Mode = (uint)item.Type } };
                    break;
            }
            if (!buffer.TryAdd(item.Name, entry, read.Cookie(i)))
            {
                if (entry.NodeId != 0)
                    _nodes.Forget(entry.NodeId, 1);
                break;
            }
        }
        read.EndIfDone();
        return ValueTask.CompletedTask;
    }

    public ValueTask ReleaseDirectoryAsync(FuseRequestContext context, ulong nodeId, ulong fileHandle)
    {
        _handles.TryRemove(fileHandle, out _);
        return ValueTask.CompletedTask;
    }

    public ValueTask<FuseFileSystemStatistics> StatFsAsync(FuseRequestContext context, ulong nodeId)
    {
        try
        {
            var s = Posix.StatFileSystem(_nodes.Root.Fd);
            return new(new FuseFileSystemStatistics
            {
                BlockSize = s.BlockSize,
                FragmentSize = s.FragmentSize,
                Blocks = s.Blocks,
                BlocksFree = s.BlocksFree,
                BlocksAvailable = s.BlocksAvailable,
                Files = s.Files,
                FilesFree = s.FilesFree,
                MaxNameLength = s.NameMax,
            });
        }
        catch (PosixException e)
        {
            throw Fail(e);
        }
    }

    // ---- plumbing ----

    private MountNode Node(ulong id) => _nodes.Find(id) ?? throw new FuseException(Errno.ESTALE);

    private OpenHandle Handle(ulong id) => _handles.TryGetValue(id, out var handle) ? handle : throw new FuseException(Errno.EBADF);

    private DirectoryListing Listing(ulong id) => Handle(id) as DirectoryListing ?? throw new FuseException(Errno.EBADF);

    private ulong AddHandle(OpenHandle handle)
    {
        var id = (ulong)Interlocked.Increment(ref _nextHandle);
        _handles[id] = handle;
        return id;
    }

    private static FuseException Fail(PosixException e) => new(e.Errno, e.Message, e);

    public void Dispose()
    {
        _engine.Substituters.Warning -= _log.Error;
        _trees.Dispose();
        _kernelCaches.Dispose();
        foreach (var handle in _handles.Values)
            handle.Dispose();
        _handles.Clear();
        _nodes.Dispose();
    }

    private abstract class OpenHandle : IDisposable
    {
        public virtual void Dispose()
        {
        }
    }

    private sealed class LowerFile(SafeFileDescriptor descriptor) : OpenHandle
    {
        public int Fd => descriptor.Fd;

        public override void Dispose() => descriptor.Dispose();
    }

    private sealed class LazyFile(NarBlob blob, NarIndexEntry entry) : OpenHandle
    {
        public NarBlob Blob { get; } = blob;

        public NarIndexEntry Entry { get; } = entry;

        public override void Dispose() => Blob.Dispose();
    }

    private sealed class DirectoryListing(MountNode node, Func<List<DirectoryItem>> list) : OpenHandle
    {
        private List<DirectoryItem>? _items;

        public MountNode Node { get; } = node;

        /// <summary>A snapshot taken at the first readdir, so offsets stay valid while the directory is read.</summary>
        public List<DirectoryItem> Items => LazyInitializer.EnsureInitialized(ref _items, list);
    }

    /// <summary>
    /// Where one readdir starts in a listing. Cookies are the index of the next item (1-based) in the
    /// low 32 bits and, for listings found by node, the listing's generation above them.
    /// </summary>
    private readonly struct ListingRead(DirectoryListing listing, NodeListings? owner, long generation, long offset)
    {
        public DirectoryListing Listing => listing;

        public int Start => (int)Math.Min(offset & uint.MaxValue, int.MaxValue);

        public static long GenerationOf(long cookie) => cookie >>> 32;

        public long Cookie(int index) => (generation << 32) | (uint)(index + 1);

        /// <summary>A readdir from the end ends a listing found by node: nothing will continue it.</summary>
        public void EndIfDone()
        {
            if (owner is not null && Start >= listing.Items.Count)
                owner.End(generation);
        }
    }

    /// <summary>
    /// One directory's listings in progress while the kernel opens directories without asking: each is
    /// made at a readdir from offset 0, numbered, and found again by the number in its cookies, so
    /// concurrent readers each keep their own snapshot. There is no releasedir to say when a reader is
    /// done: a listing is dropped when read to its end, or once no readdir has continued it for a
    /// while (a reader that stopped early), and at most a bounded number are kept.
    /// </summary>
    private sealed class NodeListings
    {
        private const int MaxKept = 256;
        private static readonly long IdleMilliseconds = (long)TimeSpan.FromMinutes(1).TotalMilliseconds;
        private readonly List<OpenListing> _open = [];
        private long _generation;

        public (DirectoryListing, long) Start(DirectoryListing listing)
        {
            lock (_open)
            {
                var now = Environment.TickCount64;
                _open.RemoveAll(open => now - open.LastRead > IdleMilliseconds);
                if (_open.Count >= MaxKept)
                    _open.Remove(_open.MinBy(open => open.LastRead)!);
                // Generations stay below 2^31 so that cookies stay positive.
                _generation = _generation % int.MaxValue + 1;
                _open.Add(new OpenListing(_generation, listing) { LastRead = now });
                return (listing, _generation);
            }
        }

        public (DirectoryListing, long)? Find(long generation)
        {
            lock (_open)
            {
                foreach (var open in _open)
                {
                    if (open.Generation == generation)
                    {
                        open.LastRead = Environment.TickCount64;
                        return (open.Listing, open.Generation);
                    }
                }
                return null;
            }
        }

        public void End(long generation)
        {
            lock (_open)
                _open.RemoveAll(open => open.Generation == generation);
        }

        private sealed class OpenListing(long generation, DirectoryListing listing)
        {
            public long Generation { get; } = generation;

            public DirectoryListing Listing { get; } = listing;

            public long LastRead { get; set; }
        }
    }

    private enum DirectoryItemKind
    {
        Dot,
        Lower,
        Lazy,
        LazyRoot,
    }

    private readonly record struct DirectoryItem(string Name, ulong Inode, FuseFileType Type, DirectoryItemKind Kind, int EntryId = 0)
    {
        public static DirectoryItem Dot(string name, ulong inode) => new(name, inode, FuseFileType.Directory, DirectoryItemKind.Dot);
    }
}
