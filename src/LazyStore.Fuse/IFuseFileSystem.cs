namespace LazyStore.Fuse;

/// <summary>
/// A filesystem served through FUSE's low-level, inode-based protocol: the kernel names nodes by
/// the node ids this filesystem hands out in <see cref="FuseEntry"/> replies and never by path.
/// </summary>
/// <remarks>
/// <para>
/// Handlers run on libfuse worker threads, several at a time. A handler that must wait (a download,
/// a slow disk) returns an incomplete <see cref="ValueTask"/> and the worker goes back to the kernel
/// at once; the reply is sent from whichever thread completes the task. A handler that completes
/// synchronously is replied to on the worker without allocating. Never block a worker on I/O.
/// </para>
/// <para>
/// Errors: throw <see cref="FuseException"/> (or return a task faulted with one) to answer with its
/// errno. Any other exception is logged and answered with EIO. Two frequent failures have cheaper
/// forms: a lookup of a missing name may return <see cref="FuseEntry.Negative"/>, and a missing
/// extended attribute is a null from <see cref="GetExtendedAttributeAsync"/>.
/// </para>
/// <para>
/// Interrupts: a pending handler's <see cref="FuseRequestContext.Interrupted"/> is cancelled when the
/// kernel interrupts its request (the caller got a signal; after SIGKILL the caller cannot go until
/// its request is answered). Stop waiting and throw <see cref="OperationCanceledException"/> to answer
/// EINTR, or finish normally; work shared with other requests should go on for them.
/// </para>
/// <para>
/// Lookup counts: each successful reply carrying a <see cref="FuseEntry"/> with a non-zero node id
/// (lookup, mknod, mkdir, symlink, link, create, and each readdirplus entry except "." and "..")
/// adds one to the kernel's count for that node; <see cref="Forget"/> subtracts. A node id must
/// stay valid until its count returns to zero. The root is never looked up nor forgotten. When the
/// session ends every count is implicitly zero: the kernel sends no forgets at unmount.
/// </para>
/// <para>
/// Members with a default body answer ENOSYS, which the kernel takes as "not supported" and, for
/// flush, fsync, fsyncdir, access, create and the extended attribute operations, stops asking.
/// </para>
/// </remarks>
public interface IFuseFileSystem
{
    /// <summary>The node id of the mount's root directory (FUSE_ROOT_ID).</summary>
    const ulong RootNodeId = 1;

    /// <summary>Called once, on a worker, when the kernel connects; adjust <paramref name="connection"/> here.</summary>
    void Initialize(FuseConnection connection)
    {
    }

    /// <summary>Resolves <paramref name="name"/> in directory <paramref name="parent"/>.</summary>
    ValueTask<FuseEntry> LookupAsync(FuseRequestContext context, ulong parent, string name);

    /// <summary>
    /// The kernel dropped <paramref name="lookupCount"/> references to <paramref name="nodeId"/>
    /// (FORGET and BATCH_FORGET). Nothing is replied; keep it quick and never throw.
    /// </summary>
    void Forget(ulong nodeId, ulong lookupCount);

    /// <summary>stat(2); <paramref name="fileHandle"/> is set when the request came through an open file (fstat).</summary>
    ValueTask<FuseAttributeResult> GetAttributesAsync(FuseRequestContext context, ulong nodeId, ulong? fileHandle);

    /// <summary>chmod, chown, truncate, utimensat; replies with the attributes after the change.</summary>
    ValueTask<FuseAttributeResult> SetAttributesAsync(FuseRequestContext context, ulong nodeId, FuseSetAttributes changes) =>
        NotImplemented<FuseAttributeResult>();

    /// <summary>readlink(2): the symlink's target.</summary>
    ValueTask<string> ReadLinkAsync(FuseRequestContext context, ulong nodeId) => NotImplemented<string>();

    /// <summary>mknod(2) of a regular file, device, fifo or socket; <paramref name="mode"/> includes the type bits.</summary>
    ValueTask<FuseEntry> MakeNodeAsync(FuseRequestContext context, ulong parent, string name, uint mode, uint deviceNumber) =>
        NotImplemented<FuseEntry>();

    /// <summary>mkdir(2); <paramref name="mode"/> holds permission bits only.</summary>
    ValueTask<FuseEntry> MakeDirectoryAsync(FuseRequestContext context, ulong parent, string name, uint mode) =>
        NotImplemented<FuseEntry>();

    /// <summary>unlink(2). The node itself lives on until the kernel forgets it.</summary>
    ValueTask UnlinkAsync(FuseRequestContext context, ulong parent, string name) => NotImplemented();

    /// <summary>rmdir(2).</summary>
    ValueTask RemoveDirectoryAsync(FuseRequestContext context, ulong parent, string name) => NotImplemented();

    /// <summary>symlink(2): creates <paramref name="name"/> in <paramref name="parent"/> pointing at <paramref name="target"/>.</summary>
    ValueTask<FuseEntry> SymlinkAsync(FuseRequestContext context, string target, ulong parent, string name) =>
        NotImplemented<FuseEntry>();

    /// <summary>renameat2(2).</summary>
    ValueTask RenameAsync(FuseRequestContext context, ulong parent, string name, ulong newParent, string newName, FuseRenameFlags flags) =>
        NotImplemented();

    /// <summary>link(2): a new name <paramref name="newName"/> in <paramref name="newParent"/> for <paramref name="nodeId"/>.</summary>
    ValueTask<FuseEntry> LinkAsync(FuseRequestContext context, ulong nodeId, ulong newParent, string newName) =>
        NotImplemented<FuseEntry>();

    /// <summary>open(2) of a non-directory; <paramref name="flags"/> are open(2)'s flags (O_CREAT, O_EXCL and O_NOCTTY removed by the kernel).</summary>
    ValueTask<FuseOpenResult> OpenAsync(FuseRequestContext context, ulong nodeId, int flags);

    /// <summary>
    /// pread(2): fills <paramref name="buffer"/> from <paramref name="offset"/> and returns the byte
    /// count; fewer than the buffer's length means end of file (unless the file was opened with
    /// <see cref="FuseOpenResult.DirectIo"/>). The buffer belongs to the binding and is only valid
    /// until the returned task completes.
    /// </summary>
    ValueTask<int> ReadAsync(FuseRequestContext context, ulong nodeId, ulong fileHandle, long offset, Memory<byte> buffer);

    /// <summary>
    /// pwrite(2): returns the number of bytes written. <paramref name="data"/> is only valid until
    /// the returned task completes.
    /// </summary>
    ValueTask<int> WriteAsync(FuseRequestContext context, ulong nodeId, ulong fileHandle, long offset, ReadOnlyMemory<byte> data) =>
        NotImplemented<int>();

    /// <summary>Sent at each close(2) of a file descriptor (there may be several per open).</summary>
    ValueTask FlushAsync(FuseRequestContext context, ulong nodeId, ulong fileHandle, ulong lockOwner) => NotImplemented();

    /// <summary>The last reference to an open file is gone; its handle will not be used again. Errors are not reported to anyone.</summary>
    ValueTask ReleaseAsync(FuseRequestContext context, ulong nodeId, ulong fileHandle, int flags) => ValueTask.CompletedTask;

    /// <summary>fsync(2), or fdatasync(2) when <paramref name="dataOnly"/>.</summary>
    ValueTask FsyncAsync(FuseRequestContext context, ulong nodeId, ulong fileHandle, bool dataOnly) => NotImplemented();

    /// <summary>opendir(3). Never called with <see cref="FuseCapabilities.NoOpendirSupport"/> wanted.</summary>
    ValueTask<FuseOpenResult> OpenDirectoryAsync(FuseRequestContext context, ulong nodeId, int flags);

    /// <summary>
    /// readdir: adds entries to <paramref name="buffer"/> starting after the entry whose
    /// nextOffset cookie was <paramref name="offset"/> (0: from the beginning) until
    /// <see cref="FuseDirectoryBuffer.TryAdd(ReadOnlySpan{char}, ulong, FuseFileType, long)"/> returns
    /// false. Adding nothing means the end of the directory. <paramref name="fileHandle"/> is 0 when
    /// the kernel opened the directory without asking (<see cref="FuseCapabilities.NoOpendirSupport"/>).
    /// </summary>
    ValueTask ReadDirectoryAsync(FuseRequestContext context, ulong nodeId, ulong fileHandle, long offset, FuseDirectoryBuffer buffer);

    /// <summary>
    /// readdirplus: like <see cref="ReadDirectoryAsync"/> with a full <see cref="FuseEntry"/> per
    /// name, so <c>ls -l</c> needs no lookups. Each entry that
    /// <see cref="FuseDirectoryPlusBuffer.TryAdd(ReadOnlySpan{char}, in FuseEntry, long)"/> accepts
    /// counts as a lookup of that node, except "." and "..".
    /// </summary>
    ValueTask ReadDirectoryPlusAsync(FuseRequestContext context, ulong nodeId, ulong fileHandle, long offset, FuseDirectoryPlusBuffer buffer);

    /// <summary>The directory handle from <see cref="OpenDirectoryAsync"/> will not be used again. Never called with <see cref="FuseCapabilities.NoOpendirSupport"/> wanted.</summary>
    ValueTask ReleaseDirectoryAsync(FuseRequestContext context, ulong nodeId, ulong fileHandle) => ValueTask.CompletedTask;

    /// <summary>fsync(2) on a directory.</summary>
    ValueTask FsyncDirectoryAsync(FuseRequestContext context, ulong nodeId, ulong fileHandle, bool dataOnly) => NotImplemented();

    /// <summary>statvfs(2).</summary>
    ValueTask<FuseFileSystemStatistics> StatFsAsync(FuseRequestContext context, ulong nodeId) =>
        ValueTask.FromResult(new FuseFileSystemStatistics { BlockSize = 512, MaxNameLength = 255 });

    /// <summary>setxattr(2); <paramref name="flags"/> are XATTR_CREATE (1) and XATTR_REPLACE (2). <paramref name="value"/> is only valid until the task completes.</summary>
    ValueTask SetExtendedAttributeAsync(FuseRequestContext context, ulong nodeId, string name, ReadOnlyMemory<byte> value, int flags) =>
        NotImplemented();

    /// <summary>
    /// getxattr(2): the whole value, or null when the node has no such attribute (ENODATA). The
    /// binding answers size probes and too-small buffers (ERANGE) itself.
    /// </summary>
    ValueTask<byte[]?> GetExtendedAttributeAsync(FuseRequestContext context, ulong nodeId, string name) => NotImplemented<byte[]?>();

    /// <summary>listxattr(2): every name; the binding encodes and sizes the list.</summary>
    ValueTask<IReadOnlyList<string>> ListExtendedAttributesAsync(FuseRequestContext context, ulong nodeId) =>
        NotImplemented<IReadOnlyList<string>>();

    /// <summary>removexattr(2).</summary>
    ValueTask RemoveExtendedAttributeAsync(FuseRequestContext context, ulong nodeId, string name) => NotImplemented();

    /// <summary>access(2) with R_OK (4), W_OK (2), X_OK (1) or F_OK (0). Not sent when mounted with default_permissions.</summary>
    ValueTask AccessAsync(FuseRequestContext context, ulong nodeId, int mask) => NotImplemented();

    /// <summary>open(2) with O_CREAT of a name that does not exist; ENOSYS makes the kernel use mknod and open instead.</summary>
    ValueTask<FuseCreateResult> CreateAsync(FuseRequestContext context, ulong parent, string name, uint mode, int flags) =>
        NotImplemented<FuseCreateResult>();

    private static ValueTask NotImplemented() => ValueTask.FromException(new FuseException(Errno.ENOSYS));

    private static ValueTask<T> NotImplemented<T>() => ValueTask.FromException<T>(new FuseException(Errno.ENOSYS));
}
