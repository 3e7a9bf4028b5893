using System.Runtime.InteropServices;

namespace LazyStore.Nix.Interop;

/// <summary>
/// The credentials and umask of the calling thread. Linux keeps credentials per thread; glibc's setuid,
/// setgid and setgroups wrappers change every thread of the process (they signal each one), while
/// setfsuid and setfsgid, and the raw setgroups system call, change the calling thread only. A thread's
/// umask is shared with the whole process until <see cref="UnshareFileSystemContext"/>.
/// </summary>
public static partial class Posix
{
    private const int CloneFs = 0x200;

    /// <summary>geteuid(2).</summary>
    public static uint EffectiveUserId => geteuid();

    /// <summary>getegid(2).</summary>
    public static uint EffectiveGroupId => getegid();

    /// <summary>getgroups(2): the calling thread's supplementary groups.</summary>
    public static unsafe uint[] GetGroups()
    {
        while (true)
        {
            var count = getgroups(0, null);
            if (count < 0)
                throw Fail("getgroups", null);
            var groups = new uint[count];
            fixed (uint* list = groups)
            {
                var n = getgroups(count, list);
                if (n >= 0)
                    return groups[..n];
                // EINVAL: the list grew in between.
                if (Marshal.GetLastPInvokeError() != Einval)
                    throw Fail("getgroups", null);
            }
        }
    }

    /// <summary>
    /// setfsuid(2) for the calling thread. The call reports no failure, so the id is read back (an invalid
    /// id, -1, changes nothing and returns the current one). Leaving 0 drops the file-system capabilities
    /// (CAP_DAC_OVERRIDE, CAP_FOWNER, CAP_CHOWN, CAP_FSETID, CAP_MKNOD...) from the effective set;
    /// returning to 0 restores them (capabilities(7)).
    /// </summary>
    public static void SetFileSystemUser(uint uid)
    {
        setfsuid(uid);
        if (setfsuid(uint.MaxValue) != uid)
            throw new PosixException("setfsuid", uid.ToString(System.Globalization.CultureInfo.InvariantCulture), Eperm);
    }

    /// <summary>setfsgid(2) for the calling thread, read back as <see cref="SetFileSystemUser"/> is.</summary>
    public static void SetFileSystemGroup(uint gid)
    {
        setfsgid(gid);
        if (setfsgid(uint.MaxValue) != gid)
            throw new PosixException("setfsgid", gid.ToString(System.Globalization.CultureInfo.InvariantCulture), Eperm);
    }

    /// <summary>The setgroups system call itself, which (unlike glibc's wrapper) sets the calling thread's supplementary groups only.</summary>
    public static unsafe void SetThreadGroups(ReadOnlySpan<uint> groups)
    {
        fixed (uint* list = groups)
        {
            if (syscall(SetgroupsNumber, groups.Length, (nint)list) != 0)
                throw Fail("setgroups", null);
        }
    }

    /// <summary>unshare(CLONE_FS): the calling thread gets its own umask, working and root directory (copies of the process's).</summary>
    public static void UnshareFileSystemContext() => Check(unshare(CloneFs), "unshare(CLONE_FS)", null);

    /// <summary>umask(2): sets the umask of the calling thread's file-system context and returns the previous one.</summary>
    public static uint SetUmask(uint mask) => umask(mask & 0x1FF);

    private const int Eperm = 1;
    private const int Einval = 22;

    /// <summary>setgroups' system call number (asm/unistd.h); glibc offers no per-thread form.</summary>
    private static readonly long SetgroupsNumber = RuntimeInformation.ProcessArchitecture switch
    {
        Architecture.X64 => 116,
        Architecture.Arm64 => 159,
        _ => -1,
    };

    [LibraryImport("libc")]
    private static partial uint geteuid();

    [LibraryImport("libc")]
    private static partial uint getegid();

    [LibraryImport("libc", SetLastError = true)]
    private static unsafe partial int getgroups(int size, uint* list);

    [LibraryImport("libc")]
    private static partial uint setfsuid(uint uid);

    [LibraryImport("libc")]
    private static partial uint setfsgid(uint gid);

    [LibraryImport("libc", SetLastError = true)]
    private static partial long syscall(long number, nint first, nint second);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int unshare(int flags);

    [LibraryImport("libc")]
    private static partial uint umask(uint mask);
}
