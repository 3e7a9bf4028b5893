using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace LazyStore.Fuse.Interop;

/// <summary>The glibc calls the mount lifecycle needs beyond libfuse.</summary>
internal static unsafe partial class Libc
{
    private const string Library = "libc";

    internal const int AtFdCwd = -100;
    internal const int AtEmptyPath = 0x1000;
    internal const int AtStatxForceSync = 0x2000;
    internal const int AtStatxDontSync = 0x4000;
    internal const uint StatxType = 0x1;
    internal const int MntDetach = 2;
    internal const int OWronly = 0x1;
    internal const int OPath = 0x200000;
    internal const int ODirectory = 0x10000;
    internal const int OCloexec = 0x80000;
    internal const ushort SIfmt = 0xF000;
    internal const ushort SIfdir = 0x4000;

    // The new mount API (linux/mount.h): a filesystem context, then a mount attached to no path.
    internal const uint FsopenCloexec = 0x1;
    internal const uint FsconfigCmdCreate = 6;
    internal const uint FsmountCloexec = 0x1;
    internal const uint MountAttrNosuid = 0x2;
    internal const uint MountAttrNodev = 0x4;
    internal const uint MountAttrNoexec = 0x8;

    /// <summary>struct statx from linux/stat.h (256 bytes); only the fields read here are named.</summary>
    [StructLayout(LayoutKind.Explicit, Size = 256)]
    internal struct Statx
    {
        [FieldOffset(28)]
        public ushort Mode;

        /// <summary>The device of the filesystem the file is on (st_dev), filled whatever the mask asked for.</summary>
        [FieldOffset(136)]
        public uint DevMajor;

        [FieldOffset(140)]
        public uint DevMinor;
    }

    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    internal static partial int umount2(string target, int flags);

    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    internal static partial int open(string path, int flags);

    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    internal static partial int openat(int dirfd, string path, int flags);

    [LibraryImport(Library)]
    internal static partial int close(int fd);

    [LibraryImport(Library, SetLastError = true)]
    internal static partial nint write(SafeFileHandle fd, byte* buffer, nuint count);

    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    internal static partial int fsopen(string fileSystemName, uint flags);

    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    internal static partial int fsconfig(int fd, uint command, string? key, nint value, int auxiliary);

    [LibraryImport(Library, SetLastError = true)]
    internal static partial int fsmount(int fd, uint flags, uint attributes);

    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    internal static partial int statx(int dirfd, string path, int flags, uint mask, Statx* buffer);

    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial byte* realpath(string path, byte* resolved);

    [LibraryImport(Library)]
    private static partial void free(void* pointer);

    [LibraryImport(Library)]
    internal static partial uint geteuid();

    /// <summary>struct iovec.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct Iovec
    {
        public byte* Base;
        public nuint Length;
    }

    [LibraryImport(Library, SetLastError = true)]
    internal static partial nint read(int fd, byte* buffer, nuint count);

    [LibraryImport(Library, SetLastError = true)]
    internal static partial nint writev(int fd, Iovec* iov, int count);

    [LibraryImport(Library)]
    internal static partial int vsnprintf(byte* buffer, nuint size, byte* format, nint arguments);

    /// <summary>realpath(3): the canonical absolute path, symlinks resolved, as /proc/self/mountinfo names mount points.</summary>
    internal static string RealPath(string path)
    {
        byte* resolved = realpath(path, null);
        if (resolved is null)
            throw new IOException($"cannot resolve '{path}': {LastErrorMessage()}", Marshal.GetLastPInvokeError());
        try
        {
            return Marshal.PtrToStringUTF8((nint)resolved)!;
        }
        finally
        {
            free(resolved);
        }
    }

    /// <summary>strerror of the last failed call's errno.</summary>
    internal static string LastErrorMessage() => Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError());
}
