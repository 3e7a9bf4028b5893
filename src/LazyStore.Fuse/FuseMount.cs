namespace LazyStore.Fuse;

/// <summary>
/// A mounted <see cref="IFuseFileSystem"/>: the libfuse session, its multi-threaded request loop on
/// a dedicated thread, and the mount itself.
/// </summary>
public sealed class FuseMount : IDisposable
{
    private FuseMount(string mountPoint)
    {
        MountPoint = mountPoint;
    }

    /// <summary>Null when this machine can mount FUSE filesystems, else why not (no /dev/fuse, no libfuse3).</summary>
    public static string? UnavailableReason => throw new NotImplementedException();

    /// <summary>The absolute path the filesystem is mounted at.</summary>
    public string MountPoint { get; }

    /// <summary>Completes when the session has ended and its resources are freed; faults if it ended in an error.</summary>
    public Task Completion => throw new NotImplementedException();

    /// <summary>
    /// Mounts <paramref name="fileSystem"/> at <paramref name="mountPoint"/> and starts serving it.
    /// Throws <see cref="FuseMountException"/> naming the cause when it cannot.
    /// </summary>
    public static FuseMount Mount(IFuseFileSystem fileSystem, string mountPoint, FuseMountOptions? options = null) =>
        throw new NotImplementedException();

    /// <summary>
    /// Drops the kernel's cached entry for <paramref name="name"/> in <paramref name="parent"/>
    /// (including a negative one), so the next access looks it up again. False when the kernel had
    /// nothing cached or the session has ended.
    /// </summary>
    public bool InvalidateEntry(ulong parent, string name) => throw new NotImplementedException();

    /// <summary>Drops the kernel's cached attributes of <paramref name="nodeId"/>.</summary>
    public bool InvalidateAttributes(ulong nodeId) => throw new NotImplementedException();

    /// <summary>Drops cached attributes and the page cache of <paramref name="nodeId"/> from <paramref name="offset"/> for <paramref name="length"/> bytes (0: to the end).</summary>
    public bool InvalidateData(ulong nodeId, long offset = 0, long length = 0) => throw new NotImplementedException();

    /// <summary>Ends the session and unmounts without waiting; <see cref="Completion"/> tells when it is over.</summary>
    public void Unmount() => throw new NotImplementedException();

    /// <summary>Unmounts and waits for the session to end.</summary>
    public void Dispose() => throw new NotImplementedException();
}
