using System.Runtime.InteropServices;
using LazyStore.Nix.Interop;

namespace LazyStore.Tests.Mount;

/// <summary>
/// System calls whose errno the mount tests assert exactly, as a program sees them through the mount;
/// .NET's file APIs fold several errnos into one exception type.
/// </summary>
public static unsafe partial class Errno
{
    public const int EPERM = 1;
    public const int ENOENT = 2;
    public const int EIO = 5;
    public const int ENOTDIR = 20;
    public const int EISDIR = 21;
    public const int EROFS = 30;
    public const int ENOTEMPTY = 39;

    /// <summary>0 when <paramref name="call"/> succeeds, else the errno of the <see cref="PosixException"/> it threw.</summary>
    public static int Of(Action call)
    {
        try
        {
            call();
            return 0;
        }
        catch (PosixException e)
        {
            return e.Errno;
        }
    }

    /// <summary>open(2) then read(2) of one byte: 0, or the errno of whichever failed first.</summary>
    public static int OfOpenAndRead(string path)
    {
        int fd = open(path, Posix.ORead | Posix.OCloseOnExec, 0);
        if (fd < 0)
            return Marshal.GetLastPInvokeError();
        try
        {
            byte b;
            return read(fd, &b, 1) < 0 ? Marshal.GetLastPInvokeError() : 0;
        }
        finally
        {
            close(fd);
        }
    }

    /// <summary>open(2) with <paramref name="flags"/> then close(2): 0, or open's errno.</summary>
    public static int OfOpen(string path, int flags, uint mode = 0b110_100_100)
    {
        int fd = open(path, flags | Posix.OCloseOnExec, mode);
        if (fd < 0)
            return Marshal.GetLastPInvokeError();
        close(fd);
        return 0;
    }

    /// <summary>statvfs(3) of a path.</summary>
    public static PosixFileSystemStat StatFileSystem(string path)
    {
        using var fd = Posix.OpenAt(Posix.AtFdCwd, path, Posix.ORead | Posix.ODirectory);
        return Posix.StatFileSystem(fd.Fd);
    }

    /// <summary>Writes through a descriptor and fsync(2)s it, throwing <see cref="PosixException"/> on failure.</summary>
    public static void AppendAndSync(string path, ReadOnlySpan<byte> data)
    {
        using var fd = Posix.OpenAt(Posix.AtFdCwd, path, Posix.OWriteOnly | OAppend);
        fixed (byte* p = data)
        {
            if (write(fd.Fd, p, (nuint)data.Length) != data.Length)
                throw new PosixException("write", path, Marshal.GetLastPInvokeError());
        }
        if (fsync(fd.Fd) != 0)
            throw new PosixException("fsync", path, Marshal.GetLastPInvokeError());
    }

    private const int OAppend = 0x400;

    [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int open(string path, int flags, uint mode);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint read(int fd, byte* buffer, nuint count);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint write(int fd, byte* buffer, nuint count);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int fsync(int fd);

    [LibraryImport("libc")]
    private static partial int close(int fd);
}
