using System.Runtime.InteropServices;

namespace LazyStore.Fuse.Interop;

/// <summary>
/// The system libfuse3 (Debian package libfuse3-3), its low-level API only. Declarations and struct
/// layouts follow <c>fuse_lowlevel.h</c>, <c>fuse_common.h</c> and <c>fuse_opt.h</c> of libfuse 3.14
/// with <c>FUSE_USE_VERSION</c> 312, on x86_64 glibc; 3.13 or newer is needed (fuse_session_custom_io).
/// </summary>
internal static unsafe partial class LibFuse
{
    internal const string Library = "libfuse3.so.3";

    /// <summary>FUSE_SET_ATTR_* bits of setattr's <c>to_set</c>.</summary>
    [Flags]
    internal enum SetAttrFlags
    {
        Mode = 1 << 0,
        Uid = 1 << 1,
        Gid = 1 << 2,
        Size = 1 << 3,
        Atime = 1 << 4,
        Mtime = 1 << 5,
        AtimeNow = 1 << 7,
        MtimeNow = 1 << 8,
    }

    /// <summary>struct fuse_args (fuse_opt.h).</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct FuseArgs
    {
        public int Argc;
        public byte** Argv;
        public int Allocated;
    }

    /// <summary>struct stat of x86_64 glibc (144 bytes), the layout libfuse converts from.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct Stat
    {
        public ulong Dev;
        public ulong Ino;
        public ulong Nlink;
        public uint Mode;
        public uint Uid;
        public uint Gid;
        private int _pad0;
        public ulong Rdev;
        public long Size;
        public long Blksize;
        public long Blocks;
        public long AtimeSec;
        public long AtimeNsec;
        public long MtimeSec;
        public long MtimeNsec;
        public long CtimeSec;
        public long CtimeNsec;
        private fixed long _reserved[3];
    }

    /// <summary>struct statvfs of 64-bit glibc (112 bytes).</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct Statvfs
    {
        public ulong Bsize;
        public ulong Frsize;
        public ulong Blocks;
        public ulong Bfree;
        public ulong Bavail;
        public ulong Files;
        public ulong Ffree;
        public ulong Favail;
        public ulong Fsid;
        public ulong Flag;
        public ulong Namemax;
        private fixed int _spare[6];
    }

    /// <summary>struct fuse_entry_param.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct EntryParam
    {
        public ulong Ino;
        public ulong Generation;
        public Stat Attr;
        public double AttrTimeout;
        public double EntryTimeout;
    }

    /// <summary>
    /// struct fuse_file_info: <c>int flags</c>, then a 32-bit unit of bitfields (writepage,
    /// direct_io, keep_cache, flush, nonseekable, flock_release, cache_readdir, noflush, in that
    /// order from bit 0) and 32 bits of padding, then the 64-bit fields.
    /// </summary>
    [StructLayout(LayoutKind.Explicit, Size = 40)]
    internal struct FileInfo
    {
        public const uint DirectIo = 1 << 1;
        public const uint KeepCache = 1 << 2;
        public const uint NonSeekable = 1 << 4;
        public const uint CacheReaddir = 1 << 6;
        public const uint NoFlush = 1 << 7;

        [FieldOffset(0)]
        public int Flags;

        [FieldOffset(4)]
        public uint Bits;

        [FieldOffset(16)]
        public ulong Fh;

        [FieldOffset(24)]
        public ulong LockOwner;
    }

    /// <summary>struct fuse_conn_info (ten unsigned fields and 22 reserved).</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct ConnInfo
    {
        public uint ProtoMajor;
        public uint ProtoMinor;
        public uint MaxWrite;
        public uint MaxRead;
        public uint MaxReadahead;
        public uint Capable;
        public uint Want;
        public uint MaxBackground;
        public uint CongestionThreshold;
        public uint TimeGran;
        private fixed uint _reserved[22];
    }

    /// <summary>struct fuse_ctx.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct Ctx
    {
        public uint Uid;
        public uint Gid;
        public int Pid;
        public uint Umask;
    }

    /// <summary>struct fuse_forget_data.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct ForgetData
    {
        public ulong Ino;
        public ulong Nlookup;
    }

    /// <summary>struct fuse_lowlevel_ops: 44 function pointers in declaration order; null ones get libfuse's default.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct LowLevelOps
    {
        public delegate* unmanaged<nint, ConnInfo*, void> Init;
        public nint Destroy;
        public delegate* unmanaged<nint, ulong, byte*, void> Lookup;
        public delegate* unmanaged<nint, ulong, ulong, void> Forget;
        public delegate* unmanaged<nint, ulong, FileInfo*, void> Getattr;
        public delegate* unmanaged<nint, ulong, Stat*, int, FileInfo*, void> Setattr;
        public delegate* unmanaged<nint, ulong, void> Readlink;
        public delegate* unmanaged<nint, ulong, byte*, uint, ulong, void> Mknod;
        public delegate* unmanaged<nint, ulong, byte*, uint, void> Mkdir;
        public delegate* unmanaged<nint, ulong, byte*, void> Unlink;
        public delegate* unmanaged<nint, ulong, byte*, void> Rmdir;
        public delegate* unmanaged<nint, byte*, ulong, byte*, void> Symlink;
        public delegate* unmanaged<nint, ulong, byte*, ulong, byte*, uint, void> Rename;
        public delegate* unmanaged<nint, ulong, ulong, byte*, void> Link;
        public delegate* unmanaged<nint, ulong, FileInfo*, void> Open;
        public delegate* unmanaged<nint, ulong, nuint, long, FileInfo*, void> Read;
        public delegate* unmanaged<nint, ulong, byte*, nuint, long, FileInfo*, void> Write;
        public delegate* unmanaged<nint, ulong, FileInfo*, void> Flush;
        public delegate* unmanaged<nint, ulong, FileInfo*, void> Release;
        public delegate* unmanaged<nint, ulong, int, FileInfo*, void> Fsync;
        public delegate* unmanaged<nint, ulong, FileInfo*, void> Opendir;
        public delegate* unmanaged<nint, ulong, nuint, long, FileInfo*, void> Readdir;
        public delegate* unmanaged<nint, ulong, FileInfo*, void> Releasedir;
        public delegate* unmanaged<nint, ulong, int, FileInfo*, void> Fsyncdir;
        public delegate* unmanaged<nint, ulong, void> Statfs;
        public delegate* unmanaged<nint, ulong, byte*, byte*, nuint, int, void> Setxattr;
        public delegate* unmanaged<nint, ulong, byte*, nuint, void> Getxattr;
        public delegate* unmanaged<nint, ulong, nuint, void> Listxattr;
        public delegate* unmanaged<nint, ulong, byte*, void> Removexattr;
        public delegate* unmanaged<nint, ulong, int, void> Access;
        public delegate* unmanaged<nint, ulong, byte*, uint, FileInfo*, void> Create;
        public nint Getlk;
        public nint Setlk;
        public nint Bmap;
        public nint Ioctl;
        public nint Poll;
        public nint WriteBuf;
        public nint RetrieveReply;
        public delegate* unmanaged<nint, nuint, ForgetData*, void> ForgetMulti;
        public nint Flock;
        public nint Fallocate;
        public delegate* unmanaged<nint, ulong, nuint, long, FileInfo*, void> Readdirplus;
        public nint CopyFileRange;
        public nint Lseek;
    }

    /// <summary>
    /// struct fuse_custom_io (3.13): how the session reads requests from and writes replies to its
    /// device descriptor; read and writev are required, null splice functions turn splicing off.
    /// </summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct CustomIo
    {
        public delegate* unmanaged<int, Libc.Iovec*, int, nint, nint> Writev;
        public delegate* unmanaged<int, byte*, nuint, nint, nint> Read;
        public nint SpliceReceive;
        public nint SpliceSend;
    }

    /// <summary>struct fuse_out_header: every reply starts with it.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct OutHeader
    {
        public uint Length;
        public int Error;
        public ulong Unique;
    }

    /// <summary>The kernel's FUSE_PARALLEL_DIROPS init flag (linux/fuse.h), bit 18 of fuse_init_out's flags.</summary>
    internal const uint InitParallelDirops = 1 << 18;

    /// <summary>Offset of <c>flags</c> in struct fuse_init_out (after major, minor, max_readahead).</summary>
    internal const int InitOutFlagsOffset = 12;

    // Session lifecycle.

    [LibraryImport(Library)]
    internal static partial FuseSessionHandle fuse_session_new(FuseArgs* args, LowLevelOps* op, nuint opSize, nint userdata);

    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int fuse_session_mount(FuseSessionHandle se, string mountpoint);

    /// <summary>The default version, <c>fuse_session_loop_mt@@FUSE_3.12</c>, taking a <c>struct fuse_loop_config*</c>.</summary>
    [LibraryImport(Library)]
    internal static partial int fuse_session_loop_mt(FuseSessionHandle se, FuseLoopConfigHandle config);

    [LibraryImport(Library)]
    internal static partial void fuse_session_exit(FuseSessionHandle se);

    [LibraryImport(Library)]
    internal static partial int fuse_session_fd(FuseSessionHandle se);

    /// <summary>Replaces the session's device I/O; the session keeps using (and finally closes) <paramref name="fd"/>.</summary>
    [LibraryImport(Library)]
    internal static partial int fuse_session_custom_io(FuseSessionHandle se, CustomIo* io, int fd);

    [LibraryImport(Library)]
    internal static partial void fuse_session_unmount(FuseSessionHandle se);

    [LibraryImport(Library)]
    internal static partial void fuse_session_destroy(nint se);

    [LibraryImport(Library)]
    internal static partial FuseLoopConfigHandle fuse_loop_cfg_create();

    [LibraryImport(Library)]
    internal static partial void fuse_loop_cfg_destroy(nint config);

    [LibraryImport(Library)]
    internal static partial void fuse_loop_cfg_set_max_threads(FuseLoopConfigHandle config, uint value);

    [LibraryImport(Library)]
    internal static partial void fuse_loop_cfg_set_clone_fd(FuseLoopConfigHandle config, uint value);

    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int fuse_opt_add_arg(FuseArgs* args, string arg);

    [LibraryImport(Library)]
    internal static partial void fuse_opt_free_args(FuseArgs* args);

    [LibraryImport(Library)]
    internal static partial void fuse_set_log_func(delegate* unmanaged<int, byte*, nint, void> func);

    // Requests. These neither block nor call back into managed code, so they skip the GC transition.

    [LibraryImport(Library)]
    [SuppressGCTransition]
    internal static partial nint fuse_req_userdata(nint req);

    [LibraryImport(Library)]
    [SuppressGCTransition]
    internal static partial Ctx* fuse_req_ctx(nint req);

    /// <summary>
    /// Registers <paramref name="func"/> to be called when the kernel interrupts the request. If it was
    /// interrupted already, <paramref name="func"/> runs at once, inside this call, with the request's lock
    /// held: it must not reply to the request (that frees it under the lock).
    /// </summary>
    [LibraryImport(Library)]
    internal static partial void fuse_req_interrupt_func(nint req, delegate* unmanaged<nint, nint, void> func, nint data);

    [LibraryImport(Library)]
    [SuppressGCTransition]
    internal static partial nuint fuse_add_direntry(nint req, byte* buf, nuint bufsize, byte* name, Stat* stbuf, long off);

    [LibraryImport(Library)]
    [SuppressGCTransition]
    internal static partial nuint fuse_add_direntry_plus(nint req, byte* buf, nuint bufsize, byte* name, EntryParam* e, long off);

    // Replies: each frees the request; exactly one per request (none for forget).

    [LibraryImport(Library)]
    internal static partial int fuse_reply_err(nint req, int err);

    [LibraryImport(Library)]
    internal static partial void fuse_reply_none(nint req);

    [LibraryImport(Library)]
    internal static partial int fuse_reply_entry(nint req, EntryParam* e);

    [LibraryImport(Library)]
    internal static partial int fuse_reply_create(nint req, EntryParam* e, FileInfo* fi);

    [LibraryImport(Library)]
    internal static partial int fuse_reply_attr(nint req, Stat* attr, double attrTimeout);

    [LibraryImport(Library)]
    internal static partial int fuse_reply_readlink(nint req, byte* link);

    [LibraryImport(Library)]
    internal static partial int fuse_reply_open(nint req, FileInfo* fi);

    [LibraryImport(Library)]
    internal static partial int fuse_reply_write(nint req, nuint count);

    [LibraryImport(Library)]
    internal static partial int fuse_reply_buf(nint req, byte* buf, nuint size);

    [LibraryImport(Library)]
    internal static partial int fuse_reply_statfs(nint req, Statvfs* stbuf);

    [LibraryImport(Library)]
    internal static partial int fuse_reply_xattr(nint req, nuint count);

    // Notifications.

    [LibraryImport(Library)]
    internal static partial int fuse_lowlevel_notify_inval_inode(FuseSessionHandle se, ulong ino, long off, long len);

    [LibraryImport(Library)]
    internal static partial int fuse_lowlevel_notify_inval_entry(FuseSessionHandle se, ulong parent, byte* name, nuint namelen);

    /// <summary>Null when libfuse3 can be loaded, else why not.</summary>
    internal static string? UnavailableReason()
    {
        if (!NativeLibrary.TryLoad(Library, typeof(LibFuse).Assembly, null, out var handle))
            return $"{Library} cannot be loaded (install Debian's libfuse3-3 and fuse3)";
        bool hasLoopConfig = NativeLibrary.TryGetExport(handle, "fuse_loop_cfg_create", out _);
        bool hasCustomIo = NativeLibrary.TryGetExport(handle, "fuse_session_custom_io", out _);
        NativeLibrary.Free(handle);
        return hasLoopConfig && hasCustomIo ? null : $"{Library} is older than 3.13 (fuse_loop_cfg_create or fuse_session_custom_io is missing)";
    }
}

/// <summary>Owns a <c>struct fuse_session*</c>.</summary>
internal sealed class FuseSessionHandle : SafeHandle
{
    public FuseSessionHandle()
        : base(IntPtr.Zero, ownsHandle: true)
    {
    }

    public override bool IsInvalid => handle == IntPtr.Zero;

    protected override bool ReleaseHandle()
    {
        LibFuse.fuse_session_destroy(handle);
        return true;
    }
}

/// <summary>Owns a <c>struct fuse_loop_config*</c>.</summary>
internal sealed class FuseLoopConfigHandle : SafeHandle
{
    public FuseLoopConfigHandle()
        : base(IntPtr.Zero, ownsHandle: true)
    {
    }

    public override bool IsInvalid => handle == IntPtr.Zero;

    protected override bool ReleaseHandle()
    {
        LibFuse.fuse_loop_cfg_destroy(handle);
        return true;
    }
}
