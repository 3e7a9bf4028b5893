using System.Runtime.InteropServices;

namespace LazyStore.Nix.Interop;

/// <summary>Limits of execve(2) that callers starting programs with long argument lists respect.</summary>
public static partial class Posix
{
    private const int ScArgMax = 0;

    /// <summary>Linux's cap on argument and environment space, whatever the stack limit: 3/4 of _STK_LIM (fs/exec.c, bprm_stack_limits).</summary>
    private const long KernelArgumentSpaceCap = 6L * 1024 * 1024;

    /// <summary>Bytes every execve(2) may take, whatever the stack limit (include/uapi/linux/limits.h ARG_MAX).</summary>
    private const long MinimumArgumentSpace = 128 * 1024;

    /// <summary>
    /// The bytes execve(2) accepts for the argument and environment strings together, their pointers
    /// included: a quarter of the stack limit (glibc's <c>sysconf(_SC_ARG_MAX)</c>), at most the kernel's cap.
    /// </summary>
    public static long ArgumentSpace
    {
        get
        {
            var space = sysconf(ScArgMax);
            return space <= 0 ? MinimumArgumentSpace : Math.Clamp(space, MinimumArgumentSpace, KernelArgumentSpaceCap);
        }
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial long sysconf(int name);
}
