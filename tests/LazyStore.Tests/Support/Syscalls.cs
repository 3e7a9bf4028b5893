using System.Runtime.InteropServices;

namespace LazyStore.Tests.Support;

/// <summary>
/// glibc calls whose errno a test asserts exactly; .NET's file APIs fold several errnos into one
/// exception type.
/// </summary>
public static unsafe partial class Syscalls
{
    public const int ORdonly = 0;
    public const int OWronly = 1;
    public const int OCreat = 0x40;
    public const int RenameNoReplace = 1;
    public const int RenameExchange = 2;
    public const int RenameWhiteout = 4;
    private const int AtFdCwd = -100;

    /// <summary>open(2) then close(2): 0, or the errno open failed with.</summary>
    public static int OpenErrno(string path, int flags = ORdonly)
    {
        int fd = open(path, flags, 0b110_100_100);
        if (fd < 0)
            return Marshal.GetLastPInvokeError();
        close(fd);
        return 0;
    }

    /// <summary>lstat(2): 0, or its errno.</summary>
    public static int StatErrno(string path)
    {
        byte* buffer = stackalloc byte[256];
        return statx(AtFdCwd, path, 0x100, 0x7ff, buffer) == 0 ? 0 : Marshal.GetLastPInvokeError();
    }

    public static int RenameErrno(string from, string to, int flags) =>
        renameat2(AtFdCwd, from, AtFdCwd, to, (uint)flags) == 0 ? 0 : Marshal.GetLastPInvokeError();

    /// <summary>getxattr(2) with a buffer of <paramref name="size"/> bytes (0 asks for the length).</summary>
    public static (long Result, int Errno, byte[] Value) GetXattr(string path, string name, int size)
    {
        var buffer = new byte[size];
        fixed (byte* p = buffer)
        {
            long result = (long)getxattr(path, name, p, (nuint)size);
            return result < 0 ? (result, Marshal.GetLastPInvokeError(), []) : (result, 0, buffer[..(int)Math.Min(result, size)]);
        }
    }

    public static int SetXattrErrno(string path, string name, byte[] value, int flags = 0)
    {
        fixed (byte* p = value)
            return setxattr(path, name, p, (nuint)value.Length, flags) == 0 ? 0 : Marshal.GetLastPInvokeError();
    }

    /// <summary>listxattr(2) with a buffer of <paramref name="size"/> bytes (0 asks for the length).</summary>
    public static (long Result, int Errno, string[] Names) ListXattr(string path, int size)
    {
        var buffer = new byte[size];
        fixed (byte* p = buffer)
        {
            long result = (long)listxattr(path, p, (nuint)size);
            if (result < 0)
                return (result, Marshal.GetLastPInvokeError(), []);
            var names = System.Text.Encoding.UTF8.GetString(buffer, 0, (int)Math.Min(result, size)).Split('\0', StringSplitOptions.RemoveEmptyEntries);
            return (result, 0, names);
        }
    }

    public static int RemoveXattrErrno(string path, string name) =>
        removexattr(path, name) == 0 ? 0 : Marshal.GetLastPInvokeError();

    /// <summary>
    /// Makes the calling thread, and only it, the user <paramref name="uid"/> in <paramref name="gid"/> with
    /// <paramref name="groups"/> and <paramref name="umask"/>, for good: real, effective, saved and file-system ids
    /// all change, so every capability is gone. The raw system calls change one thread's credentials (glibc's
    /// wrappers would change every thread's), and unshare(CLONE_FS) gives the thread a umask of its own.
    /// </summary>
    public static void BecomeUser(uint uid, uint gid, uint[] groups, uint umask)
    {
        var (setgroups, setresgid, setresuid) = RuntimeInformation.ProcessArchitecture switch
        {
            Architecture.X64 => (116L, 119L, 117L),
            Architecture.Arm64 => (159L, 149L, 147L),
            var other => throw new PlatformNotSupportedException($"no system call numbers for {other}"),
        };
        if (unshare(CloneFs) != 0)
            throw new IOException($"unshare(CLONE_FS) failed: errno {Marshal.GetLastPInvokeError()}");
        umask_(umask);
        fixed (uint* list = groups)
        {
            if (syscall(setgroups, groups.Length, (nint)list, 0) != 0)
                throw new IOException($"setgroups failed: errno {Marshal.GetLastPInvokeError()}");
        }
        if (syscall(setresgid, (nint)gid, (nint)gid, (nint)gid) != 0)
            throw new IOException($"setresgid({gid}) failed: errno {Marshal.GetLastPInvokeError()}");
        if (syscall(setresuid, (nint)uid, (nint)uid, (nint)uid) != 0)
            throw new IOException($"setresuid({uid}) failed: errno {Marshal.GetLastPInvokeError()}");
    }

    private const int CloneFs = 0x200;

    [LibraryImport("libc", SetLastError = true)]
    private static partial long syscall(long number, nint first, nint second, nint third);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int unshare(int flags);

    [LibraryImport("libc", EntryPoint = "umask")]
    private static partial uint umask_(uint mask);

    [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int open(string path, int flags, int mode);

    [LibraryImport("libc")]
    private static partial int close(int fd);

    [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int statx(int dirfd, string path, int flags, uint mask, byte* buffer);

    [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int renameat2(int olddirfd, string oldpath, int newdirfd, string newpath, uint flags);

    [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial nint getxattr(string path, string name, byte* value, nuint size);

    [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int setxattr(string path, string name, byte* value, nuint size, int flags);

    [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial nint listxattr(string path, byte* list, nuint size);

    [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int removexattr(string path, string name);
}
