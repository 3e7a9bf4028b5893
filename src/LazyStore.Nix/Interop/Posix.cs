using System.Runtime.InteropServices;

namespace LazyStore.Nix.Interop;

/// <summary>File type bits of st_mode (S_IFMT), as statx(2) reports them.</summary>
public enum PosixFileType
{
    Unknown = 0,
    Fifo = 0x1000,
    CharacterDevice = 0x2000,
    Directory = 0x4000,
    BlockDevice = 0x6000,
    Regular = 0x8000,
    Symlink = 0xA000,
    Socket = 0xC000,
}

/// <summary>The subset of lstat(2) that NAR serialisation needs.</summary>
public readonly record struct PosixFileStatus(PosixFileType Type, int Mode, long Size);

/// <summary>A timestamp as the kernel keeps it.</summary>
public readonly record struct PosixTime(long Seconds, uint Nanoseconds);

/// <summary>Everything statx(2) reports that a file system needs to pass on.</summary>
public readonly record struct PosixStat(
    ulong Inode, ulong Device, uint Mode, uint LinkCount, uint Uid, uint Gid, ulong RDevice,
    long Size, long Blocks, uint BlockSize, PosixTime Access, PosixTime Modification, PosixTime Change)
{
    public PosixFileType Type => (PosixFileType)(Mode & 0xF000);
}

/// <summary>One directory entry as readdir(3) returns it; <see cref="Cookie"/> resumes after it.</summary>
public readonly record struct PosixDirectoryEntry(string Name, ulong Inode, PosixFileType Type, long Cookie);

/// <summary>What statvfs(3) reports of a file system.</summary>
public readonly record struct PosixFileSystemStat(ulong BlockSize, ulong FragmentSize, ulong Blocks, ulong BlocksFree,
    ulong BlocksAvailable, ulong Files, ulong FilesFree, ulong NameMax);

/// <summary>A failed system call: which, on what, and errno.</summary>
public sealed class PosixException(string call, string? subject, int errno)
    : IOException($"{call}{(subject is null ? "" : $" '{subject}'")}: {Marshal.GetPInvokeErrorMessage(errno)}", errno)
{
    public int Errno { get; } = errno;
}

/// <summary>
/// glibc bindings: statx for NAR serialisation, and the *at calls the overlay's pass-through to the
/// lower store directory is built on (every path relative to a directory descriptor, so the lower
/// directory stays reachable after a mount covers it). statx is used rather than stat because its
/// struct layout is the same on every architecture.
/// </summary>
public static partial class Posix
{
    public const int AtFdCwd = -100;
    public const int AtSymlinkNoFollow = 0x100;
    public const int AtRemoveDir = 0x200;
    public const int AtEmptyPath = 0x1000;
    public const int ORead = 0;
    public const int OWriteOnly = 1;
    public const int OReadWrite = 2;
    public const int OCreate = 0x40;
    public const int OExclusive = 0x80;
    public const int ONoFollow = 0x20000;
    public const int ODirectory = 0x10000;
    public const int OPath = 0x200000;
    public const int OCloseOnExec = 0x80000;
    public const long UtimeNow = (1L << 30) - 1;
    public const long UtimeOmit = (1L << 30) - 2;
    private const uint StatxBasicStats = 0x7ff;

    /// <summary>lstat(2): the status of <paramref name="path"/> itself, not of a symlink's target.</summary>
    public static PosixFileStatus LStat(string path)
    {
        Statx buffer;
        if (statx(AtFdCwd, path, AtSymlinkNoFollow, StatxBasicStats, out buffer) != 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            throw new IOException($"cannot stat '{path}': {Marshal.GetPInvokeErrorMessage(errno)}", errno);
        }
        return new PosixFileStatus((PosixFileType)(buffer.Mode & 0xF000), buffer.Mode & 0xFFF, (long)buffer.Size);
    }

    /// <summary>statx(2) of <paramref name="path"/> relative to <paramref name="dirfd"/> (with AT_EMPTY_PATH and "", of the fd itself); never follows a final symlink.</summary>
    public static PosixStat StatAt(int dirfd, string path)
    {
        if (statx(dirfd, path, AtSymlinkNoFollow | (path.Length == 0 ? AtEmptyPath : 0), StatxBasicStats, out var b) != 0)
            throw Fail("statx", path);
        return new PosixStat(b.Inode, MakeDevice(b.DevMajor, b.DevMinor), b.Mode, b.LinkCount, b.Uid, b.Gid,
            MakeDevice(b.RDevMajor, b.RDevMinor), (long)b.Size, (long)b.Blocks, b.BlockSize,
            new PosixTime(b.AtimeSec, b.AtimeNsec), new PosixTime(b.MtimeSec, b.MtimeNsec), new PosixTime(b.CtimeSec, b.CtimeNsec));
    }

    /// <summary>glibc's makedev: the dev_t encoding of a major and minor number (sys/sysmacros.h).</summary>
    public static ulong MakeDevice(uint major, uint minor) =>
        ((ulong)(major & 0xfffff000) << 32) | ((ulong)(major & 0xfff) << 8) | ((ulong)(minor & 0xffffff00) << 12) | (minor & 0xff);

    /// <summary>openat(2); the caller owns the returned descriptor.</summary>
    public static SafeFileDescriptor OpenAt(int dirfd, string path, int flags, uint mode = 0)
    {
        var fd = openat(dirfd, path, flags | OCloseOnExec, mode);
        return fd < 0 ? throw Fail("open", path) : new SafeFileDescriptor(fd);
    }

    public static void MakeDirectoryAt(int dirfd, string path, uint mode) => Check(mkdirat(dirfd, path, mode), "mkdir", path);

    public static void MakeNodeAt(int dirfd, string path, uint mode, ulong device) => Check(mknodat(dirfd, path, mode, device), "mknod", path);

    public static void UnlinkAt(int dirfd, string path, bool directory) => Check(unlinkat(dirfd, path, directory ? AtRemoveDir : 0), directory ? "rmdir" : "unlink", path);

    public static void RenameAt(int oldDirfd, string oldPath, int newDirfd, string newPath, uint flags) =>
        Check(renameat2(oldDirfd, oldPath, newDirfd, newPath, flags), "rename", oldPath);

    public static void SymlinkAt(string target, int dirfd, string path) => Check(symlinkat(target, dirfd, path), "symlink", path);

    public static void LinkAt(int oldDirfd, string oldPath, int newDirfd, string newPath, int flags) =>
        Check(linkat(oldDirfd, oldPath, newDirfd, newPath, flags), "link", newPath);

    public static void ChownAt(int dirfd, string path, uint uid, uint gid, int flags) => Check(fchownat(dirfd, path, uid, gid, flags), "chown", path);

    public static void ChmodAt(int dirfd, string path, uint mode) => Check(fchmodat(dirfd, path, mode, 0), "chmod", path);

    public static void Truncate(string path, long length) => Check(truncate(path, length), "truncate", path);

    /// <summary>utimensat(2); a time of <see cref="UtimeOmit"/> nanoseconds leaves it, <see cref="UtimeNow"/> sets it to now.</summary>
    public static unsafe void SetTimesAt(int dirfd, string path, PosixTime access, PosixTime modification, int flags)
    {
        var times = stackalloc Timespec[2];
        times[0] = new Timespec { Seconds = access.Seconds, Nanoseconds = access.Nanoseconds };
        times[1] = new Timespec { Seconds = modification.Seconds, Nanoseconds = modification.Nanoseconds };
        Check(utimensat(dirfd, path, times, flags), "utimensat", path);
    }

    /// <summary>readlinkat(2): a symlink's target as bytes (targets need not be UTF-8).</summary>
    public static unsafe byte[] ReadLinkAt(int dirfd, string path)
    {
        var buffer = new byte[4096];
        fixed (byte* p = buffer)
        {
            var n = readlinkat(dirfd, path, p, (nuint)buffer.Length);
            if (n < 0)
                throw Fail("readlink", path);
            return buffer.AsSpan(0, (int)n).ToArray();
        }
    }

    /// <summary>
    /// The entries of a directory from <paramref name="cookie"/> on (0 = the start), with the cookie that
    /// resumes after each (telldir values, as FUSE readdir offsets). "." and ".." are included, as readdir
    /// returns them.
    /// </summary>
    public static unsafe List<PosixDirectoryEntry> ReadDirectory(int dirfd, string path, long cookie, int maxEntries)
    {
        var fd = openat(dirfd, path, ORead | ODirectory | OCloseOnExec, 0);
        if (fd < 0)
            throw Fail("opendir", path);
        var dir = fdopendir(fd);
        if (dir == 0)
        {
            var error = Fail("opendir", path);
            close(fd);
            throw error;
        }
        try
        {
            if (cookie != 0)
                seekdir(dir, cookie);
            var entries = new List<PosixDirectoryEntry>();
            while (entries.Count < maxEntries)
            {
                Marshal.SetLastPInvokeError(0);
                var entry = (Dirent*)readdir(dir);
                if (entry == null)
                {
                    if (Marshal.GetLastPInvokeError() != 0)
                        throw Fail("readdir", path);
                    break;
                }
                var name = new ReadOnlySpan<byte>(entry->Name, 256);
                name = name[..name.IndexOf((byte)0)];
                entries.Add(new PosixDirectoryEntry(System.Text.Encoding.UTF8.GetString(name), entry->Inode, (PosixFileType)(entry->Type << 12), entry->Offset));
            }
            return entries;
        }
        finally
        {
            closedir(dir);
        }
    }

    /// <summary>fstatvfs(2) of a descriptor's file system.</summary>
    public static PosixFileSystemStat StatFileSystem(int fd)
    {
        if (fstatvfs(fd, out var b) != 0)
            throw Fail("statvfs", null);
        return new PosixFileSystemStat(b.BlockSize, b.FragmentSize, b.Blocks, b.BlocksFree, b.BlocksAvailable, b.Files, b.FilesFree, b.NameMax);
    }

    /// <summary>
    /// lgetxattr(2), or getxattr(2) with <paramref name="follow"/> (needed for <c>/proc/self/fd/N</c> of an
    /// O_PATH descriptor, a symlink to the file); with an empty buffer, the size the value needs.
    /// </summary>
    public static unsafe int GetExtendedAttribute(string path, string name, Span<byte> value, bool follow = false)
    {
        fixed (byte* p = value)
        {
            var n = follow ? getxattr(path, name, p, (nuint)value.Length) : lgetxattr(path, name, p, (nuint)value.Length);
            return n < 0 ? throw Fail("getxattr", name) : (int)n;
        }
    }

    /// <summary>llistxattr(2) (listxattr(2) with <paramref name="follow"/>): NUL-terminated names; with an empty buffer, the size they need.</summary>
    public static unsafe int ListExtendedAttributes(string path, Span<byte> names, bool follow = false)
    {
        fixed (byte* p = names)
        {
            var n = follow ? listxattr(path, p, (nuint)names.Length) : llistxattr(path, p, (nuint)names.Length);
            return n < 0 ? throw Fail("listxattr", path) : (int)n;
        }
    }

    public static unsafe void SetExtendedAttribute(string path, string name, ReadOnlySpan<byte> value, int flags, bool follow = false)
    {
        fixed (byte* p = value)
            Check(follow ? setxattr(path, name, p, (nuint)value.Length, flags) : lsetxattr(path, name, p, (nuint)value.Length, flags), "setxattr", name);
    }

    public static void RemoveExtendedAttribute(string path, string name, bool follow = false) =>
        Check(follow ? removexattr(path, name) : lremovexattr(path, name), "removexattr", name);

    /// <summary>pread(2): the number of bytes read, 0 at the end of the file.</summary>
    public static unsafe int ReadAt(int fd, Span<byte> buffer, long offset)
    {
        fixed (byte* p = buffer)
        {
            nint n;
            while ((n = pread(fd, p, (nuint)buffer.Length, offset)) < 0 && Marshal.GetLastPInvokeError() == Eintr)
            {
            }
            return n < 0 ? throw Fail("pread", null) : (int)n;
        }
    }

    /// <summary>pwrite(2): the number of bytes written.</summary>
    public static unsafe int WriteAt(int fd, ReadOnlySpan<byte> data, long offset)
    {
        fixed (byte* p = data)
        {
            nint n;
            while ((n = pwrite(fd, p, (nuint)data.Length, offset)) < 0 && Marshal.GetLastPInvokeError() == Eintr)
            {
            }
            return n < 0 ? throw Fail("pwrite", null) : (int)n;
        }
    }

    /// <summary>fsync(2), or fdatasync(2) when <paramref name="dataOnly"/>.</summary>
    public static void Sync(int fd, bool dataOnly) => Check(dataOnly ? fdatasync(fd) : fsync(fd), dataOnly ? "fdatasync" : "fsync", null);

    /// <summary>ftruncate(2).</summary>
    public static void TruncateFile(int fd, long length) => Check(ftruncate(fd, length), "ftruncate", null);

    /// <summary>
    /// The path through which a descriptor's file is reached again (<c>/proc/self/fd/N</c>): how calls without
    /// an *at form (open of an O_PATH descriptor's file, truncate, xattrs) reach it by descriptor.
    /// </summary>
    public static string DescriptorPath(int fd) => "/proc/self/fd/" + fd.ToString(System.Globalization.CultureInfo.InvariantCulture);

    private const int Eintr = 4;

    private static void Check(int result, string call, string? subject)
    {
        if (result != 0)
            throw Fail(call, subject);
    }

    private static PosixException Fail(string call, string? subject) => new(call, subject, Marshal.GetLastPInvokeError());

    [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int statx(int dirfd, string path, int flags, uint mask, out Statx buffer);

    [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int openat(int dirfd, string path, int flags, uint mode);

    [LibraryImport("libc", SetLastError = true)]
    internal static partial int close(int fd);

    [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int mkdirat(int dirfd, string path, uint mode);

    [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int mknodat(int dirfd, string path, uint mode, ulong device);

    [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int unlinkat(int dirfd, string path, int flags);

    [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int renameat2(int oldDirfd, string oldPath, int newDirfd, string newPath, uint flags);

    [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int symlinkat(string target, int dirfd, string path);

    [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int linkat(int oldDirfd, string oldPath, int newDirfd, string newPath, int flags);

    [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int fchownat(int dirfd, string path, uint uid, uint gid, int flags);

    [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int fchmodat(int dirfd, string path, uint mode, int flags);

    [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int truncate(string path, long length);

    [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static unsafe partial int utimensat(int dirfd, string path, Timespec* times, int flags);

    [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static unsafe partial nint readlinkat(int dirfd, string path, byte* buffer, nuint size);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint fdopendir(int fd);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint readdir(nint dir);

    [LibraryImport("libc")]
    private static partial void seekdir(nint dir, long position);

    [LibraryImport("libc")]
    private static partial int closedir(nint dir);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int fstatvfs(int fd, out Statvfs buffer);

    [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static unsafe partial nint lgetxattr(string path, string name, byte* value, nuint size);

    [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static unsafe partial nint llistxattr(string path, byte* names, nuint size);

    [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static unsafe partial int lsetxattr(string path, string name, byte* value, nuint size, int flags);

    [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int lremovexattr(string path, string name);

    [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static unsafe partial nint getxattr(string path, string name, byte* value, nuint size);

    [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static unsafe partial nint listxattr(string path, byte* names, nuint size);

    [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static unsafe partial int setxattr(string path, string name, byte* value, nuint size, int flags);

    [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int removexattr(string path, string name);

    [LibraryImport("libc", SetLastError = true)]
    private static unsafe partial nint pread(int fd, byte* buffer, nuint count, long offset);

    [LibraryImport("libc", SetLastError = true)]
    private static unsafe partial nint pwrite(int fd, byte* buffer, nuint count, long offset);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int fsync(int fd);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int fdatasync(int fd);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int ftruncate(int fd, long length);

    /// <summary>struct dirent (64-bit glibc): d_ino, d_off, d_reclen, d_type, d_name[256].</summary>
    [StructLayout(LayoutKind.Sequential)]
    private unsafe struct Dirent
    {
        public ulong Inode;
        public long Offset;
        public ushort RecordLength;
        public byte Type;
        public fixed byte Name[256];
    }

    /// <summary>struct statvfs (64-bit glibc).</summary>
    [StructLayout(LayoutKind.Sequential)]
    private unsafe struct Statvfs
    {
        public ulong BlockSize;
        public ulong FragmentSize;
        public ulong Blocks;
        public ulong BlocksFree;
        public ulong BlocksAvailable;
        public ulong Files;
        public ulong FilesFree;
        public ulong FilesAvailable;
        public ulong FileSystemId;
        public ulong Flags;
        public ulong NameMax;
        public fixed int Spare[6];
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct Timespec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    /// <summary>struct statx from linux/stat.h (256 bytes, the same on every architecture).</summary>
    [StructLayout(LayoutKind.Explicit, Size = 256)]
    private struct Statx
    {
        [FieldOffset(4)] public uint BlockSize;
        [FieldOffset(16)] public uint LinkCount;
        [FieldOffset(20)] public uint Uid;
        [FieldOffset(24)] public uint Gid;
        [FieldOffset(28)] public ushort Mode;
        [FieldOffset(32)] public ulong Inode;
        [FieldOffset(40)] public ulong Size;
        [FieldOffset(48)] public ulong Blocks;
        [FieldOffset(64)] public long AtimeSec;
        [FieldOffset(72)] public uint AtimeNsec;
        [FieldOffset(96)] public long CtimeSec;
        [FieldOffset(104)] public uint CtimeNsec;
        [FieldOffset(112)] public long MtimeSec;
        [FieldOffset(120)] public uint MtimeNsec;
        [FieldOffset(128)] public uint RDevMajor;
        [FieldOffset(132)] public uint RDevMinor;
        [FieldOffset(136)] public uint DevMajor;
        [FieldOffset(140)] public uint DevMinor;
    }
}

/// <summary>An owned file descriptor (including O_PATH descriptors, which FileStream cannot hold).</summary>
public sealed class SafeFileDescriptor : SafeHandle
{
    public SafeFileDescriptor(int fd)
        : base(-1, ownsHandle: true) => SetHandle(fd);

    public int Fd => (int)handle;

    public override bool IsInvalid => handle == -1;

    protected override bool ReleaseHandle() => Posix.close((int)handle) == 0;
}
