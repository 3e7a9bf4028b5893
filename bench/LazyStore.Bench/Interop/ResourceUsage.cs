using System.Runtime.InteropServices;

namespace LazyStore.Bench.Interop;

/// <summary>glibc's getrusage(2), for the peak resident set size of child processes.</summary>
internal static partial class ResourceUsage
{
    private const int RusageChildren = -1;

    /// <summary>struct rusage on 64-bit Linux: two struct timeval, then 14 longs starting with ru_maxrss (KiB).</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct Rusage
    {
        public long UtimeSec;
        public long UtimeUsec;
        public long StimeSec;
        public long StimeUsec;
        public long MaxRssKiB;
        public long Ixrss;
        public long Idrss;
        public long Isrss;
        public long Minflt;
        public long Majflt;
        public long Nswap;
        public long Inblock;
        public long Oublock;
        public long Msgsnd;
        public long Msgrcv;
        public long Nsignals;
        public long Nvcsw;
        public long Nivcsw;
    }

    [LibraryImport("libc", EntryPoint = "getrusage", SetLastError = true)]
    private static partial int GetRusage(int who, out Rusage usage);

    /// <summary>The largest peak RSS, in bytes, of any child process waited for so far.</summary>
    public static long ChildrenPeakRssBytes()
    {
        if (GetRusage(RusageChildren, out var usage) != 0)
            throw new InvalidOperationException($"getrusage failed: errno {Marshal.GetLastPInvokeError()}");
        return usage.MaxRssKiB * 1024;
    }
}
