using System.Globalization;

namespace LazyStore.Bench;

/// <summary>
/// LazyStore benchmarks. Each scenario runs LazyStore and a standard tool on the same bytes in the same
/// run and reports the ratio, because absolute figures on shared machines are noise.
/// Usage: lazystore-bench [--work DIR] [--rounds N] [--only NAME[,NAME] (nar-parse-seek, nar-parse-stream, xz-decode, zstd-decode, sha256, fetch-xz, fetch-zstd, fetch-rss, mount-warm-read, mount-first-read, mount-stat-walk, mount-readdir-lazy, mount-demo-start, mount-large-listing, nix-ci-noop, nix-few-files, nix-register-scale)] [--min-mb N] [--sizes N,N…] [--delays MS,MS…] [--report FILE]
/// </summary>
internal static class Program
{
    private static int Main(string[] args)
    {
        var options = BenchOptions.Parse(args);
        Directory.CreateDirectory(options.WorkDir);
        var data = BenchData.Prepare(options);
        Console.Error.WriteLine($"data: {data.Description}");

        IScenario[] scenarios =
        [
            new NarParseScenario(streaming: false),
            new NarParseScenario(streaming: true),
            new DecompressScenario("xz"),
            new DecompressScenario("zstd"),
            new Sha256Scenario(),
            new FetchScenario("xz"),
            new FetchScenario("zstd"),
            new FetchMemoryScenario(options),
            new MountWarmReadScenario(),
            new MountFirstReadScenario(),
            new MountStatWalkScenario(),
            new MountReaddirScenario(),
            new MountDemoStartScenario(),
            new MountLargeListingScenario(),
            new NixSubstitutionScenario(ciNoop: true),
            new NixSubstitutionScenario(ciNoop: false),
            .. options.ScaleSizes.SelectMany(n => options.ScaleDelays.Select(ms => new NixRegisterScaleScenario(n, ms, options.ScaleSizes))),
        ];
        var results = new List<ScenarioResult>();
        foreach (var scenario in scenarios.Where(s => options.Only is null || options.Only.Contains(s.Name)))
        {
            Console.Error.WriteLine($"running {scenario.Name} …");
            var result = scenario.Run(data, options.Rounds);
            results.Add(result);
            Console.Error.WriteLine("  " + result.Summary);
        }

        var report = Report.Markdown(data, options, results);
        Console.WriteLine(report);
        if (options.ReportFile is { } file)
            File.WriteAllText(file, report);
        return results.All(r => r.MeetsTarget) ? 0 : 2;
    }
}

/// <param name="ScaleSizes">nix-register-scale's closure sizes (data paths; the closure has one more, the top path).</param>
/// <param name="ScaleDelays">nix-register-scale's server delays per request, in milliseconds.</param>
internal sealed record BenchOptions(string WorkDir, int Rounds, HashSet<string>? Only, string? ReportFile, long MinNarBytes,
    IReadOnlyList<int> ScaleSizes, IReadOnlyList<int> ScaleDelays)
{
    public static BenchOptions Parse(string[] args)
    {
        string work = Path.Combine(Path.GetTempPath(), "lazystore-bench");
        int rounds = 5;
        HashSet<string>? only = null;
        string? report = null;
        long minBytes = 200L * 1024 * 1024;
        int[] sizes = [100, 1000, 3000];
        int[] delays = [0, 20];
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--work": work = args[++i]; break;
                case "--rounds": rounds = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--only": only = [.. args[++i].Split(',')]; break;
                case "--report": report = args[++i]; break;
                case "--min-mb": minBytes = long.Parse(args[++i], CultureInfo.InvariantCulture) * 1024 * 1024; break;
                case "--sizes": sizes = Numbers(args[++i]); break;
                case "--delays": delays = Numbers(args[++i]); break;
                default: throw new ArgumentException($"unknown argument '{args[i]}'");
            }
        }
        return new BenchOptions(work, rounds, only, report, minBytes, sizes, delays);
    }

    private static int[] Numbers(string list) =>
        [.. list.Split(',').Select(n => int.Parse(n.Replace("_", "", StringComparison.Ordinal), NumberStyles.None, CultureInfo.InvariantCulture))];
}
