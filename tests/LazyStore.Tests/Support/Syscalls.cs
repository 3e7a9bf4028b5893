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
