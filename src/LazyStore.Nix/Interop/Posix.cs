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

/// <summary>
/// glibc bindings. statx is used rather than stat because its struct layout is the same on every
/// architecture, so no per-ABI struct definitions are needed.
/// </summary>
public static partial class Posix
{
    private const int AtFdCwd = -100;
    private const int AtSymlinkNoFollow = 0x100;
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

    [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int statx(int dirfd, string path, int flags, uint mask, out Statx buffer);

    /// <summary>struct statx from linux/stat.h (256 bytes); only the fields read here are named.</summary>
    [StructLayout(LayoutKind.Explicit, Size = 256)]
    private struct Statx
    {
        [FieldOffset(28)]
        public ushort Mode;

        [FieldOffset(40)]
        public ulong Size;
    }
}
