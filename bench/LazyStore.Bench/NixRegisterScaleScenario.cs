using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using LazyStore.Nix;
using LazyStore.Nix.Signatures;
using LazyStore.Store.Serving;

namespace LazyStore.Bench;

/// <summary>One size of <see cref="ScaleCache"/>: the top path and its closure (the data paths and itself).</summary>
internal sealed record ScaleClosure(int Size, string Top, IReadOnlyList<string> Closure, string Generation);

/// <summary>
/// Closures of N small store paths for the registration bench. Each data path is a real directory tree of
/// this machine (subtrees of <c>/usr/share/doc</c> first, then of <c>/usr/share</c> and <c>/usr/include</c>,
/// at most 512 KiB each), added with <c>nix-store --add</c>; a top path, the output of a derivation built
/// by the static busybox, lists the first N of them, so its closure is those N paths and itself. Every size
/// goes into one signed xz cache written by <c>nix copy</c> (with listings), kept in the work directory; a
/// size asked for the first time is added to it.
/// </summary>
internal sealed partial class ScaleCache
{
    private const long MaxTreeBytes = 512 * 1024;
    private static readonly string[] TreeRoots = ["/usr/share/doc", "/usr/share", "/usr/include"];

    private ScaleCache(string directory, IReadOnlyDictionary<int, ScaleClosure> closures)
    {
        Directory = directory;
        Key = PublicKey.Parse(File.ReadAllText(Path.Combine(directory, "pk")).Trim());
        Closures = closures;
    }

    public string Directory { get; }

    public string CacheDirectory => Path.Combine(Directory, "cache");

    public PublicKey Key { get; }

    public IReadOnlyDictionary<int, ScaleClosure> Closures { get; }

    public NarInfo NarInfoOf(string path)
    {
        var file = Path.Combine(CacheDirectory, StorePath.FromBaseName(Path.GetFileName(path)).HashPart + ".narinfo");
        return NarInfo.Parse(File.ReadAllText(file), source: file);
    }

    public static ScaleCache Prepare(string workDirectory, IReadOnlyCollection<int> sizes)
    {
        var directory = Path.Combine(workDirectory, "nix-register-scale-1");
        if (!File.Exists(Path.Combine(directory, "pk")))
        {
            // A cache signed by a lost key is of no use: start again.
            if (System.IO.Directory.Exists(directory))
                System.IO.Directory.Delete(directory, recursive: true);
            System.IO.Directory.CreateDirectory(directory);
            NixTools.Run("nix-store", "--generate-binary-cache-key", "bench-register-scale-1", Path.Combine(directory, "sk"), Path.Combine(directory, "pk.tmp"));
            File.Move(Path.Combine(directory, "pk.tmp"), Path.Combine(directory, "pk"));
        }
        var missing = sizes.Distinct().Where(n => !File.Exists(ManifestOf(directory, n))).Order().ToList();
        if (missing.Count > 0)
            Generate(directory, missing);
        var closures = sizes.Distinct().ToDictionary(n => n, n =>
        {
            var lines = File.ReadAllLines(ManifestOf(directory, n));
            return new ScaleClosure(n, lines[1], lines[1..], lines[0]);
        });
        return new ScaleCache(directory, closures);
    }

    private static string ManifestOf(string directory, int size) => Path.Combine(directory, $"closure-{size}");

    private static void Generate(string directory, IReadOnlyList<int> sizes)
    {
        var clock = Stopwatch.StartNew();
        var source = Path.Combine(directory, "source-root");
        if (System.IO.Directory.Exists(source))
            System.IO.Directory.Delete(source, recursive: true);
        var busyboxTree = Path.Combine(directory, "busybox");
        if (!File.Exists(Path.Combine(busyboxTree, "bin", "busybox")))
        {
            System.IO.Directory.CreateDirectory(Path.Combine(busyboxTree, "bin"));
            File.Copy("/bin/busybox", Path.Combine(busyboxTree, "bin", "busybox"), overwrite: true);
        }
        var busybox = NixTools.Run("nix-store", "--store", source, "--add", busyboxTree).Trim();
        Console.Error.WriteLine($"  adding {sizes.Max()} real directory trees to a source store …");
        var data = AddTrees(source, sizes.Max());

        var tops = new Dictionary<int, string>();
        foreach (var size in sizes)
        {
            File.WriteAllText(Path.Combine(directory, $"paths-{size}.nix"), "[\n" + string.Concat(data.Take(size).Select(p => $"  \"{p}\"\n")) + "]\n");
            File.WriteAllText(Path.Combine(directory, $"top-{size}.nix"), TopExpression(busybox, size));
            tops[size] = NixTools.Run("nix-build", "--store", source, "--no-out-link", Path.Combine(directory, $"top-{size}.nix")).Trim();
        }
        Console.Error.WriteLine($"  nix copy of {data.Count + sizes.Count} paths to an xz cache (once) …");
        NixTools.Run("nix", ["copy", "--store", source, "--to",
            $"file://{Path.Combine(directory, "cache")}?compression=xz&write-nar-listing=true&secret-key={Path.Combine(directory, "sk")}", .. tops.Values]);
        var closures = tops.ToDictionary(t => t.Key, t => NixTools.Run("nix-store", "--store", source, "-qR", t.Value).Split('\n', StringSplitOptions.RemoveEmptyEntries));
        System.IO.Directory.Delete(source, recursive: true);
        var generation = string.Create(CultureInfo.InvariantCulture,
            $"generated in {clock.Elapsed.TotalSeconds:F0} s with the data of {string.Join(", ", sizes)} paths");
        Console.Error.WriteLine("  " + generation);
        foreach (var (size, top) in tops)
        {
            if (closures[size].Length != size + 1)
                throw new InvalidOperationException($"the closure of {top} has {closures[size].Length} paths, not the {size + 1} it was built with");
            // The top path first, as Prepare reads it; written last, so that an interrupted run generates it again.
            File.WriteAllLines(ManifestOf(directory, size) + ".tmp", [generation, top, .. closures[size].Where(p => p != top)]);
            File.Move(ManifestOf(directory, size) + ".tmp", ManifestOf(directory, size));
        }
    }

    /// <summary>Adds trees (several per <c>nix-store --add</c>) until <paramref name="count"/> distinct store paths exist; returns them in order.</summary>
    private static List<string> AddTrees(string source, int count)
    {
        var paths = new List<string>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        using var trees = Trees().GetEnumerator();
        while (paths.Count < count)
        {
            // A little more than is missing: identical trees of the same name are one store path.
            var batch = new List<string>();
            while (batch.Count < Math.Min(500, count - paths.Count + 16) && trees.MoveNext())
                batch.Add(trees.Current);
            if (batch.Count == 0)
                throw new InvalidOperationException($"found only {paths.Count} distinct trees of at most {MaxTreeBytes / 1024} KiB under {string.Join(", ", TreeRoots)}; the bench needs {count}");
            foreach (var path in NixTools.Run("nix-store", ["--store", source, "--add", .. batch]).Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                if (paths.Count < count && seen.Add(path))
                    paths.Add(path);
            }
        }
        return paths;
    }

    /// <summary>
    /// Directories under <see cref="TreeRoots"/> in name order, parents before their subdirectories, that
    /// hold at least one file, at most <see cref="MaxTreeBytes"/> in all, and whose name is a valid store
    /// path name (<c>nix-store --add</c> names the path after the directory). Symbolic links are not followed.
    /// </summary>
    private static IEnumerable<string> Trees()
    {
        var visited = new HashSet<string>(StringComparer.Ordinal);
        foreach (var root in TreeRoots.Where(System.IO.Directory.Exists))
        {
            var found = new List<(string Path, long Bytes, bool HasFile)>();
            Visit(new DirectoryInfo(root), found, visited);
            visited.Add(root);
            foreach (var (path, bytes, hasFile) in found)
            {
                if (path != root && hasFile && bytes <= MaxTreeBytes && StoreName().IsMatch(Path.GetFileName(path)))
                    yield return path;
            }
        }
    }

    private static (long Bytes, bool HasFile) Visit(DirectoryInfo directory, List<(string Path, long Bytes, bool HasFile)> found, HashSet<string> skip)
    {
        int index = found.Count;
        found.Add((directory.FullName, 0, false));
        long bytes = 0;
        bool hasFile = false;
        foreach (var entry in directory.EnumerateFileSystemInfos().OrderBy(e => e.Name, StringComparer.Ordinal))
        {
            if (entry.LinkTarget is not null)
                continue;
            if (entry is DirectoryInfo subdirectory)
            {
                if (skip.Contains(subdirectory.FullName))
                    continue;
                var (b, f) = Visit(subdirectory, found, skip);
                bytes += b;
                hasFile |= f;
            }
            else if (entry is FileInfo file)
            {
                bytes += file.Length;
                hasFile = true;
            }
        }
        found[index] = (directory.FullName, bytes, hasFile);
        return (bytes, hasFile);
    }

    /// <summary>Nix's rule for store path names: letters, digits and <c>+-._?=</c>, not starting with a dot, at most 211 characters.</summary>
    [GeneratedRegex(@"^[A-Za-z0-9+\-_?=][A-Za-z0-9+\-._?=]{0,210}$")]
    private static partial Regex StoreName();

    /// <summary>
    /// top-N.nix: a file listing the first N data paths, so that Nix's reference scan finds them all. The
    /// list goes to the builder as a file (<c>passAsFile</c>): one environment variable may hold at most
    /// 128 KiB (Linux's MAX_ARG_STRLEN), and 3,000 store paths are more.
    /// </summary>
    private static string TopExpression(string busybox, int size) => $$"""
        let busybox = builtins.storePath "{{busybox}}";
        in derivation {
          name = "register-scale-top-{{size}}";
          system = builtins.currentSystem;
          builder = "${busybox}/bin/busybox";
          args = [ "sh" "-c" "${busybox}/bin/busybox cp \"$refsPath\" \"$out\"" ];
          refs = builtins.concatStringsSep "\n" (map builtins.storePath (import ./paths-{{size}}.nix));
          passAsFile = [ "refs" ];
        }

        """;
}

/// <summary>
/// Times the Nix tools a child process runs: shell wrappers named <c>nix-store</c> and <c>nix</c>, put first
/// on its PATH, run the real tool and append its start, end, exit status and first arguments to the file
/// named by <see cref="Variable"/>. Costs a shell and two <c>date</c>s per call.
/// </summary>
internal static class NixCallLog
{
    public const string Variable = "LAZYSTORE_BENCH_NIX_CALLS";

    /// <summary>Writes the wrappers into <paramref name="directory"/> and returns it, for the front of PATH.</summary>
    public static string CreateWrappers(string directory)
    {
        System.IO.Directory.CreateDirectory(directory);
        foreach (var tool in new[] { "nix-store", "nix" })
        {
            var wrapper = Path.Combine(directory, tool);
            File.WriteAllText(wrapper, $"""
                #!/bin/sh
                start=$(date +%s.%N)
                '{NixTools.Which(tool)}' "$@"
                status=$?
                echo "$start $(date +%s.%N) $status {tool} $*" | cut -c1-400 >> "${Variable}"
                exit $status

                """);
            File.SetUnixFileMode(wrapper, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute);
        }
        return directory;
    }

    /// <summary>The calls logged in <paramref name="file"/>; none if it does not exist.</summary>
    public static IReadOnlyList<NixCall> Read(string file)
    {
        if (!File.Exists(file))
            return [];
        return File.ReadAllLines(file).Where(l => l.Length > 0).Select(line =>
        {
            var words = line.Split(' ');
            var arguments = words.Skip(4).ToList();
            // As LazyStore's NixValidity runs them: [--store ROOT] then nix-store's operation flag or the nix command's two words.
            if (arguments.Count >= 2 && arguments[0] == "--store")
                arguments = arguments[2..];
            var operation = words[3] == "nix-store" || arguments.Count < 2
                ? $"{words[3]} {arguments.FirstOrDefault()}"
                : $"{words[3]} {arguments[0]} {arguments[1]}";
            return new NixCall(operation, double.Parse(words[0], CultureInfo.InvariantCulture), double.Parse(words[1], CultureInfo.InvariantCulture),
                int.Parse(words[2], CultureInfo.InvariantCulture));
        }).ToList();
    }

    /// <summary>Seconds during which at least one of <paramref name="calls"/> ran.</summary>
    public static double Busy(IEnumerable<NixCall> calls)
    {
        double total = 0, end = double.MinValue;
        foreach (var call in calls.OrderBy(c => c.Start))
        {
            if (call.End <= end)
                continue;
            total += call.End - Math.Max(call.Start, end);
            end = call.End;
        }
        return total;
    }
}

internal sealed record NixCall(string Operation, double Start, double End, int ExitCode)
{
    public double Seconds => End - Start;
}

/// <summary>
/// <c>lazystore register --closure</c> of a closure of N small paths vs plain substitution of the same
/// closure (<c>nix-store -r</c>) from the same <see cref="BinaryCacheServer"/> on 127.0.0.1, which waits
/// <c>delay</c> before answering each request; each round on fresh chroot stores with fresh Nix cache
/// directories (Nix's narinfo disk cache would spare later rounds their lookups). A LazyStore mount over
/// the store directory is already running (as on a builder; its start is not timed). After each LazyStore
/// round every path of the closure must be valid in Nix's database and carry the cache's signature, and no
/// NAR may have been fetched. Targets (from 1,000 paths): ≤ 0.1× plain substitution's time, and with no
/// delay LazyStore's own cost (the register process's time outside the Nix tools it runs) ≤ 1 ms a path.
/// </summary>
internal sealed class NixRegisterScaleScenario(int size, int delayMilliseconds, IReadOnlyCollection<int> allSizes) : IScenario
{
    private const double TargetRatio = 0.1;
    private const double TargetOwnMillisecondsPerPath = 1.0;

    public string Name => "nix-register-scale";

    private bool Judged => size >= 1000;

    private sealed record Round(double Seconds, IReadOnlyList<ServedRequest> Requests, IReadOnlyList<NixCall> NixCalls, IReadOnlyList<string> Problems, string Timeline = "");

    /// <summary>A request as it arrived (before any delay), in Unix seconds like the Nix call log's.</summary>
    private readonly record struct Arrival(double At, string Path, bool ByNix);

    public ScenarioResult Run(BenchData data, int rounds)
    {
        var label = string.Create(CultureInfo.InvariantCulture, $"{Name} {size + 1} paths, {delayMilliseconds} ms");
        var target = !Judged ? "none (reported); all paths valid and signed, 0 NAR bytes"
            : delayMilliseconds == 0 ? "≤ 0.1× time, own cost ≤ 1 ms/path; all paths valid and signed, 0 NAR bytes"
            : "≤ 0.1× time; all paths valid and signed, 0 NAR bytes";
        var what = $"lazystore register --closure vs nix-store -r of a closure of {size + 1} small paths, {delayMilliseconds} ms server delay per request";
        if ((MountBench.UnavailableReason ?? NixTools.UnavailableReason) is { } reason)
            return MountBench.Skipped(label, what, target, reason);
        var workDirectory = MountBench.WorkDirectory(data);
        var cache = ScaleCache.Prepare(workDirectory, allSizes);
        var closure = cache.Closures[size];
        using var server = new BinaryCacheServer(cache.CacheDirectory);
        var arrivals = new ConcurrentQueue<Arrival>();
        server.Faults = request =>
        {
            arrivals.Enqueue(new Arrival(UnixNow(), request.Path, ByNix(request.Headers)));
            return delayMilliseconds > 0 ? new ServerFault.Delay(TimeSpan.FromMilliseconds(delayMilliseconds)) : null;
        };
        var work = Path.Combine(workDirectory, $"register-scale-rounds-{Environment.ProcessId}");
        var wrappers = NixCallLog.CreateWrappers(Path.Combine(work, "nix-call-log"));
        var startup = ProcessStart();

        Round Lazy(int round)
        {
            using var store = new BenchStore(work, "lazy", cache.Key);
            var mountLog = store.ScratchFile("mount.log");
            store.Mount(server.BaseUri, mountLog);
            var callLog = store.ScratchFile("nix-calls");
            var from = server.Requests.Count;
            arrivals.Clear();
            var started = UnixNow();
            var clock = Stopwatch.StartNew();
            var registered = BenchStore.RunLazystore(
                [("XDG_CACHE_HOME", store.CacheHome), ("PATH", wrappers + ":" + Environment.GetEnvironmentVariable("PATH")), (NixCallLog.Variable, callLog)],
                "register", "--store-root", store.Root, "--closure", "--substituter", server.BaseUri.ToString(),
                "--trusted-public-key", cache.Key.ToString(), "--state-dir", store.StateDirectory, closure.Top);
            var seconds = clock.Elapsed.TotalSeconds;
            var requests = server.Requests.Skip(from).ToList();
            var nixCalls = NixCallLog.Read(callLog);
            var timeline = Timeline(started, started + seconds, [.. arrivals], nixCalls);
            var problems = registered.ExitCode == 0
                ? Check(store, closure, cache.Key)
                : [$"lazystore register failed (exit {registered.ExitCode}): {Shortened(registered.Stderr)}"];
            // Checked after Nix has looked at every path too: nothing may have opened a file.
            var nars = server.Requests.Skip(from).Where(r => r.Path.StartsWith("nar/", StringComparison.Ordinal)).ToList();
            if (nars.Count > 0)
                problems.Add($"{nars.Count} NARs fetched ({nars.Sum(r => r.BodyBytesSent)} bytes)");
            if (problems.Count > 0)
            {
                var kept = Path.Combine(workDirectory, $"nix-register-scale-{size}-{delayMilliseconds}ms-round{round}-{Environment.ProcessId}-mount.log");
                File.Copy(mountLog, kept, overwrite: true);
                problems.Add($"mount log kept in {kept}");
            }
            return new Round(seconds, requests, nixCalls, problems, timeline);
        }

        Round Plain()
        {
            using var store = new BenchStore(work, "plain", cache.Key);
            var from = server.Requests.Count;
            var seconds = Measure.Time(() => NixTools.Run([("XDG_CACHE_HOME", store.CacheHome)], "nix-store", "--store", store.Root, "-r", closure.Top,
                "--option", "substituters", server.BaseUri.ToString(), "--option", "trusted-public-keys", cache.Key.ToString()));
            return new Round(seconds, server.Requests.Skip(from).ToList(), [], []);
        }

        var lazyRounds = new List<Round>();
        var plainRounds = new List<Round>();
        try
        {
            for (int i = 0; i < Math.Clamp(rounds, 1, 3); i++)
            {
                lazyRounds.Add(Lazy(i + 1));
                plainRounds.Add(Plain());
                Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"  round {i + 1}: lazystore register {lazyRounds[^1].Seconds:F2} s, nix-store -r {plainRounds[^1].Seconds:F2} s"));
            }
        }
        finally
        {
            if (Directory.Exists(work))
                Directory.Delete(work, recursive: true);
        }

        var lazy = MedianRound(lazyRounds);
        var plain = MedianRound(plainRounds);
        var problems = lazyRounds.SelectMany((r, i) => r.Problems.Select(p => $"round {i + 1}: {p}")).ToList();
        foreach (var problem in problems)
            Console.Error.WriteLine($"  {label}: {problem}");
        int paths = size + 1;
        var ratio = lazy.Seconds / plain.Seconds;
        var nixBusy = NixCallLog.Busy(lazy.NixCalls);
        var ownPerPath = (lazy.Seconds - nixBusy) / paths * 1e3;
        var meets = problems.Count == 0 && (!Judged || (ratio <= TargetRatio && (delayMilliseconds > 0 || ownPerPath <= TargetOwnMillisecondsPerPath)));
        var narSize = closure.Closure.Sum(p => (long)cache.NarInfoOf(p).NarSize);
        var fileSize = closure.Closure.Sum(p => (long)(cache.NarInfoOf(p).FileSize ?? 0));
        var plainNar = plain.Requests.Where(r => r.Path.StartsWith("nar/", StringComparison.Ordinal)).Sum(r => r.BodyBytesSent);
        var calls = string.Join(", ", lazy.NixCalls.GroupBy(c => c.Operation).Select(g =>
            string.Create(CultureInfo.InvariantCulture, $"{g.Key} {g.Sum(c => c.Seconds):F2} s{(g.Count() > 1 ? $" (×{g.Count()})" : "")}")));
        return new ScenarioResult(label,
            string.Create(CultureInfo.InvariantCulture,
                $"{what}: {size} real directory trees of at most 512 KiB and a top path listing them ({narSize / 1e6:F0} MB of NAR, {fileSize / 1e6:F0} MB xz; data {closure.Generation}); fresh chroot stores and Nix cache directories each round, the mount already running; median of {lazyRounds.Count}"),
            lazy.Requests.Sum(r => r.BodyBytesSent), lazy.Seconds, "plain substitution", plain.Seconds, target, meets)
        {
            Figure = string.Create(CultureInfo.InvariantCulture,
                $"{lazy.Seconds:F2} s = {lazy.Seconds / paths * 1e3:F1} ms/path, own {ownPerPath:F1} ms/path; {Requests(lazy.Requests)}; Nix calls: {calls}; process start ≈ {startup:F2} s; timeline: {lazy.Timeline}")
                + (problems.Count > 0 ? "; FAILED: " + string.Join("; ", problems) : ""),
            BaselineFigure = string.Create(CultureInfo.InvariantCulture, $"nix-store -r: {plain.Seconds:F2} s, {plainNar / 1e6:F1} MB of NAR; {Requests(plain.Requests)}"),
            RatioFigure = string.Create(CultureInfo.InvariantCulture, $"{ratio:F3}× time"),
        };
    }

    /// <summary>At most 400 characters of a process's stderr, on one line: a failure naming all of 3,000 paths would drown the report.</summary>
    private static string Shortened(string stderr)
    {
        var line = stderr.Trim().ReplaceLineEndings(" ");
        return line.Length <= 400 ? line : string.Create(CultureInfo.InvariantCulture, $"{line[..400]}… ({line.Length} characters)");
    }

    private static Round MedianRound(List<Round> rounds) => rounds.OrderBy(r => r.Seconds).ElementAt(rounds.Count / 2);

    private static double UnixNow() => (DateTime.UtcNow - DateTime.UnixEpoch).TotalSeconds;

    /// <summary>Nix's User-Agent says so (<c>curl/… Nix/…</c>); LazyStore's does not.</summary>
    private static bool ByNix(IReadOnlyDictionary<string, string> headers) =>
        headers.TryGetValue("User-Agent", out var agent) && agent.Contains("Nix/", StringComparison.Ordinal);

    /// <summary>
    /// When, after the register process started, LazyStore's first and last narinfo and listing requests
    /// arrived and each kind of Nix call ran, and when the process ended: where its time went, as offsets
    /// that stay meaningful whatever order a later version does things in.
    /// </summary>
    private static string Timeline(double started, double ended, IReadOnlyList<Arrival> arrivals, IReadOnlyList<NixCall> calls)
    {
        var parts = new List<string>();
        string At(double t) => string.Create(CultureInfo.InvariantCulture, $"+{t - started:F2}");
        void Span(string what, IEnumerable<double> times)
        {
            var list = times.ToList();
            if (list.Count > 0)
                parts.Add($"{what} {At(list.Min())}…{At(list.Max())} s");
        }
        var ours = arrivals.Where(a => !a.ByNix).ToList();
        Span("LazyStore narinfos", ours.Where(a => a.Path.EndsWith(".narinfo", StringComparison.Ordinal)).Select(a => a.At));
        Span("listings", ours.Where(a => a.Path.EndsWith(".ls", StringComparison.Ordinal)).Select(a => a.At));
        foreach (var group in calls.GroupBy(c => c.Operation))
            parts.Add($"{group.Key}{(group.Count() > 1 ? $" ×{group.Count()}" : "")} {At(group.Min(c => c.Start))}…{At(group.Max(c => c.End))} s");
        parts.Add($"exit {At(ended)} s");
        return string.Join(", ", parts);
    }

    /// <summary>Requests by kind, and how many of them Nix made.</summary>
    private static string Requests(IReadOnlyList<ServedRequest> requests)
    {
        int Count(Func<ServedRequest, bool> filter) => requests.Count(filter);
        var byNix = Count(r => ByNix(r.Headers));
        return string.Create(CultureInfo.InvariantCulture,
            $"{requests.Count} requests ({Count(r => r.Path.EndsWith(".narinfo", StringComparison.Ordinal))} narinfo, {Count(r => r.Path.EndsWith(".ls", StringComparison.Ordinal))} listings, {Count(r => r.Path.StartsWith("nar/", StringComparison.Ordinal))} NARs; {byNix} by Nix)");
    }

    /// <summary>What is wrong with the store after registration: paths of the closure not valid, or without the cache's signature.</summary>
    private static List<string> Check(BenchStore store, ScaleClosure closure, PublicKey key)
    {
        var problems = new List<string>();
        var valid = NixTools.RunProcess("nix-store", ["--store", store.Root, "-qR", closure.Top], [NixTools.PrivateConfiguration]);
        if (valid.ExitCode != 0)
            return [$"nix-store -qR {closure.Top} failed (exit {valid.ExitCode}): {Shortened(valid.Stderr)}"];
        var missing = closure.Closure.Except(valid.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries), StringComparer.Ordinal).ToList();
        if (missing.Count > 0)
            problems.Add($"{missing.Count} of {closure.Closure.Count} paths not valid in Nix's database, e.g. {missing[0]}");
        var info = NixTools.RunProcess("nix", ["path-info", "--store", store.Root, "--sigs", "-r", closure.Top], [NixTools.PrivateConfiguration]);
        if (info.ExitCode != 0)
            return [.. problems, $"nix path-info --sigs -r {closure.Top} failed (exit {info.ExitCode}): {Shortened(info.Stderr)}"];
        // "PATH<spaces>\tSIG SIG…"
        var signed = info.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Where(line => line.Split('\t', 2) is [_, var sigs] && sigs.Split(' ').Any(s => s.StartsWith(key.Name + ":", StringComparison.Ordinal)))
            .Select(line => line.Split('\t')[0].Trim()).ToHashSet(StringComparer.Ordinal);
        var unsigned = closure.Closure.Where(p => !signed.Contains(p)).ToList();
        if (unsigned.Count > 0)
            problems.Add($"{unsigned.Count} of {closure.Closure.Count} paths without a signature by {key.Name} in Nix's database, e.g. {unsigned[0]}");
        var verify = NixTools.RunProcess("nix", ["store", "verify", "--store", store.Root, "--no-contents", "-r", closure.Top, "--option", "trusted-public-keys", key.ToString()],
            [NixTools.PrivateConfiguration]);
        if (verify.ExitCode != 0)
            problems.Add($"nix store verify --no-contents failed (exit {verify.ExitCode}): {verify.Stderr.Trim().Split('\n')[^1]}");
        return problems;
    }

    /// <summary>Median seconds of three runs of <c>lazystore --version</c>: what starting the .NET process costs before any work.</summary>
    private static double ProcessStart()
    {
        var seconds = Enumerable.Range(0, 3).Select(_ => Measure.Time(() => NixTools.RunChecked("dotnet", [BenchStore.LazystoreDll, "--version"]))).Order().ToList();
        return seconds[1];
    }
}
