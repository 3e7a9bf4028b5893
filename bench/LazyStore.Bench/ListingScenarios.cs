using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using LazyStore.Fuse;
using LazyStore.Nix;
using LazyStore.Nix.Nar;

namespace LazyStore.Bench;

/// <summary>
/// A store path of many small files whose cache has a listing: <c>lazystore mount --on-demand</c> runs as a
/// child process, and the scenario times the first <c>stat</c> of the path and one <c>ls</c> of a
/// directory in it (the listing is downloaded, checked and loaded, or refused and the NAR fetched
/// instead), and samples the mount process's peak RSS. Two sizes: one within the default listing bounds
/// and one of 2.5 million entries. No target: the figures are for the record.
/// </summary>
internal sealed class MountLargeListingScenario : IScenario
{
    private const int FilesPerDirectory = 1000;

    private static readonly int[] Sizes = [400_000, 2_500_000];

    public string Name => "mount-large-listing";

    public ScenarioResult Run(BenchData data, int rounds)
    {
        const string Target = "none (recorded)";
        var what = "first stat + ls through `lazystore mount --on-demand` of a path whose listing has many entries";
        if (MountBench.UnavailableReason is { } reason)
            return MountBench.Skipped(Name, what, Target, reason);
        var work = MountBench.WorkDirectory(data);
        var figures = new List<string>();
        double seconds = 0;
        foreach (var files in Sizes)
        {
            var name = string.Create(CultureInfo.InvariantCulture, $"bench-listing-{files / 1000}k");
            var cache = MountCache.Prepare(Path.Combine(work, name + ".cache"), writer =>
            {
                var nar = Path.Combine(work, name + ".nar");
                try
                {
                    WriteNar(nar, files);
                    var path = StorePath.FromParts(SHA256.HashData(Encoding.UTF8.GetBytes(name)).AsSpan(0, 20), name);
                    return [writer.AddNar(nar, path, [])];
                }
                finally
                {
                    File.Delete(nar);
                }
            });
            var (took, cpu, peak, log) = FirstStat(cache, work);
            seconds += took;
            var outcome = log.Contains("fetching the NAR", StringComparison.Ordinal) ? "listing refused, NAR fetched" : "listing served";
            figures.Add(string.Create(CultureInfo.InvariantCulture,
                $"{files + files / FilesPerDirectory + 1:N0} entries: {took:F1} s ({cpu:F1} s CPU), {peak / 1e6:F0} MB peak RSS ({outcome})"));
            Console.Error.WriteLine("  " + figures[^1]);
        }
        return new ScenarioResult(Name, what, 0, seconds, null, null, Target, true) { Figure = string.Join("; ", figures) };
    }

    /// <summary>A NAR of <paramref name="files"/> empty files, <see cref="FilesPerDirectory"/> per directory.</summary>
    private static void WriteNar(string file, int files)
    {
        using var output = new FileStream(file, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20);
        using var nar = new NarWriter(output, leaveOpen: true);
        nar.BeginDirectory();
        for (int d = 0; d < files / FilesPerDirectory; d++)
        {
            nar.BeginEntry(string.Create(CultureInfo.InvariantCulture, $"d{d:D5}"));
            nar.BeginDirectory();
            for (int f = 0; f < FilesPerDirectory; f++)
            {
                nar.BeginEntry(string.Create(CultureInfo.InvariantCulture, $"file-{f:D4}.txt"));
                nar.WriteRegular([]);
            }
            nar.EndDirectory();
        }
        nar.EndDirectory();
        nar.Flush();
    }

    private static (double Seconds, double CpuSeconds, long PeakRss, string Log) FirstStat(MountCache cache, string work)
    {
        var scratch = Path.Combine(work, $"mount-large-listing-{Environment.ProcessId}");
        if (Directory.Exists(scratch))
            Directory.Delete(scratch, recursive: true);
        var (state, lower, mountPoint) = (Path.Combine(scratch, "state"), Path.Combine(scratch, "lower"), Path.Combine(scratch, "mnt"));
        Directory.CreateDirectory(lower);
        Directory.CreateDirectory(mountPoint);
        var psi = new ProcessStartInfo("dotnet")
        {
            ArgumentList =
            {
                Path.Combine(AppContext.BaseDirectory, "lazystore.dll"), "mount", "--on-demand", "--lower", lower,
                "--substituter", "file://" + cache.Directory, "--trusted-public-key", cache.Key.ToString(), "--state-dir", state, mountPoint,
            },
            RedirectStandardError = true,
        };
        using var process = Process.Start(psi)!;
        var log = new StringBuilder();
        process.ErrorDataReceived += (_, e) =>
        {
            lock (log)
                log.AppendLine(e.Data);
        };
        process.BeginErrorReadLine();
        try
        {
            var deadline = Stopwatch.StartNew();
            while (MountTable.At(Path.GetFullPath(mountPoint)) is null)
            {
                if (process.HasExited || deadline.Elapsed > TimeSpan.FromMinutes(1))
                    throw new InvalidOperationException($"lazystore mount did not mount: {log}");
                Thread.Sleep(20);
            }
            var target = Path.Combine(mountPoint, cache.Paths[0].StorePath.BaseName);
            long peak = 0;
            var cpuBefore = CpuSeconds(process.Id);
            var clock = Stopwatch.StartNew();
            var walk = Task.Run(() =>
            {
                MountBench.Run("stat", target);
                return MountBench.Run("ls", Path.Combine(target, "d00000")).Split('\n', StringSplitOptions.RemoveEmptyEntries).Length;
            });
            while (!walk.Wait(TimeSpan.FromMilliseconds(10)))
                peak = Math.Max(peak, FetchMemoryScenario.HighWaterMark(process.Id));
            var took = clock.Elapsed.TotalSeconds;
            var cpu = CpuSeconds(process.Id) - cpuBefore;
            peak = Math.Max(peak, FetchMemoryScenario.HighWaterMark(process.Id));
            if (walk.Result != FilesPerDirectory)
                throw new InvalidOperationException($"ls listed {walk.Result} entries, expected {FilesPerDirectory}");
            lock (log)
                return (took, cpu, peak, log.ToString());
        }
        finally
        {
            MountBench.Run("kill", "-TERM", process.Id.ToString(CultureInfo.InvariantCulture));
            if (!process.WaitForExit(TimeSpan.FromMinutes(1)))
                process.Kill();
            Directory.Delete(scratch, recursive: true);
        }
    }

    /// <summary>
    /// User and system CPU time of a process so far (utime and stime of /proc/PID/stat, in clock ticks of
    /// 1/100 s on Linux): on a shared machine it says more than wall-clock time.
    /// </summary>
    private static double CpuSeconds(int pid)
    {
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return (long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture)) / 100.0;
    }
}
