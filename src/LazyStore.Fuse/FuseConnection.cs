namespace LazyStore.Fuse;

/// <summary>Optional kernel features (FUSE_CAP_* in fuse_common.h of libfuse 3.14).</summary>
[Flags]
public enum FuseCapabilities : uint
{
    None = 0,
    AsyncRead = 1 << 0,
    PosixLocks = 1 << 1,
    AtomicOpenTruncate = 1 << 3,
    ExportSupport = 1 << 4,
    DontMask = 1 << 6,
    SpliceWrite = 1 << 7,
    SpliceMove = 1 << 8,
    SpliceRead = 1 << 9,
    FlockLocks = 1 << 10,
    IoctlDirectory = 1 << 11,
    AutoInvalidateData = 1 << 12,
    ReaddirPlus = 1 << 13,
    ReaddirPlusAuto = 1 << 14,
    AsyncDirectIo = 1 << 15,
    WritebackCache = 1 << 16,
    NoOpenSupport = 1 << 17,
    ParallelDirectoryOperations = 1 << 18,
    PosixAcl = 1 << 19,
    HandleKillPriv = 1 << 20,
    CacheSymlinks = 1 << 23,

    /// <summary>
    /// The kernel can open directories without asking (zero-message opendir, Linux 5.1). Wanted, the
    /// session answers every OPENDIR with ENOSYS itself, never calling
    /// <see cref="IFuseFileSystem.OpenDirectoryAsync"/>, and from then on the kernel sends neither
    /// OPENDIR nor RELEASEDIR: a directory's open(2) and close(2) cost no round trip. Readdir then
    /// carries file handle 0, and the kernel keeps every listing it reads to the end (as with
    /// <see cref="FuseOpenResult.CacheDirectory"/> and <see cref="FuseOpenResult.KeepCache"/>) until an
    /// operation through the mount changes the directory's entries, or, with
    /// <see cref="AutoInvalidateData"/>, a listing from the start finds the directory's attributes
    /// expired and its mtime changed. A listing that changes behind the kernel's back must say so
    /// with <see cref="FuseDirectoryBuffer.Uncacheable"/>.
    /// </summary>
    NoOpendirSupport = 1 << 24,
    ExplicitInvalidateData = 1 << 25,
    ExpireOnly = 1 << 26,
}

/// <summary>
/// The connection parameters negotiated at INIT (fuse_conn_info), handed to
/// <see cref="IFuseFileSystem.Initialize"/> to adjust. Changes made after that call returns have no effect.
/// </summary>
/// <remarks>
/// <see cref="Wanted"/> starts with libfuse's defaults for what the kernel offers (async read,
/// parallel directory operations, automatic data invalidation, async direct I/O, atomic O_TRUNC,
/// readdirplus), adjusted by <see cref="FuseMountOptions.ReaddirPlus"/>, but without
/// <see cref="FuseCapabilities.HandleKillPriv"/>: the kernel clears setuid and setgid bits itself. With
/// <see cref="FuseCapabilities.AtomicOpenTruncate"/> wanted, open receives O_TRUNC and must truncate
/// itself; without it the kernel sends a setattr of size 0 instead.
/// </remarks>
public sealed class FuseConnection
{
    internal FuseConnection(uint protocolMajor, uint protocolMinor, FuseCapabilities capable, FuseCapabilities wanted)
    {
        ProtocolMajor = protocolMajor;
        ProtocolMinor = protocolMinor;
        Capable = capable;
        Wanted = wanted & capable;
    }

    public uint ProtocolMajor { get; }

    public uint ProtocolMinor { get; }

    /// <summary>What the kernel and libfuse support.</summary>
    public FuseCapabilities Capable { get; }

    /// <summary>What this session will use; always a subset of <see cref="Capable"/>.</summary>
    public FuseCapabilities Wanted { get; private set; }

    /// <summary>Largest write request in bytes.</summary>
    public uint MaxWrite { get; set; }

    /// <summary>Largest readahead the kernel may issue, in bytes.</summary>
    public uint MaxReadahead { get; set; }

    /// <summary>
    /// How many background requests (readahead, async direct I/O) the kernel keeps in flight; 0 keeps
    /// the kernel's default of 12. Raise it when reads complete asynchronously and slowly.
    /// </summary>
    public uint MaxBackground { get; set; }

    /// <summary>Background requests in flight above which the kernel counts the filesystem as congested; 0 means 3/4 of <see cref="MaxBackground"/>.</summary>
    public uint CongestionThreshold { get; set; }

    /// <summary>Timestamp granularity in nanoseconds (a power of 10); 1 keeps nanoseconds.</summary>
    public uint TimeGranularity { get; set; }

    /// <summary>Asks for <paramref name="capabilities"/>; false (and nothing changes) unless every one is <see cref="Capable"/>.</summary>
    public bool TryEnable(FuseCapabilities capabilities)
    {
        if ((capabilities & ~Capable) != 0)
            return false;
        Wanted |= capabilities;
        return true;
    }

    public void Disable(FuseCapabilities capabilities) => Wanted &= ~capabilities;
}
