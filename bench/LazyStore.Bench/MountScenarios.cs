using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using LazyStore.Fuse;
using LazyStore.Nix;
using LazyStore.Nix.Compression;
using LazyStore.Nix.Signatures;
using LazyStore.Store;
using LazyStore.Store.Configuration;
using LazyStore.Store.Demo;
using LazyStore.Store.Mount;
using LazyStore.Store.Serving;
using LazyStore.Store.Substituters;

namespace LazyStore.Bench;

/// <summary>
/// A signed binary cache (zstd, with listings) of store paths made once from trees of this machine and
/// kept in the work directory, read through a <c>file://</c> substituter: the mount scenarios measure the
/// mount, not the network.
/// </summary>
internal sealed class MountCache
{
    private MountCache(string directory, PublicKey key, IReadOnlyList<NarInfo> paths)
    {
        Directory = directory;
        Key = key;
        Paths = paths;
    }

    public string Directory { get; }

    public PublicKey Key { get; }

    public IReadOnlyList<NarInfo> Paths { get; }

    public static MountCache Prepare(string directory, Func<BinaryCacheWriter, IEnumerable<NarInfo>> build)
    {
        var keyFile = Path.Combine(directory, "signing-key.pub");
        var pathsFile = Path.Combine(directory, "paths");
        if (!File.Exists(pathsFile))
        {
            if (System.IO.Directory.Exists(directory))
                System.IO.Directory.Delete(directory, recursive: true);
            using var key = SecretKey.Generate("bench-mount-1");
            var writer = new BinaryCacheWriter(directory, CompressionMethod.Zstd, key);
            var written = build(writer).Select(i => i.StorePath.HashPart).ToList();
            File.WriteAllText(keyFile, key.PublicKey.ToString());
            // Written last: a cache interrupted half-way is rebuilt, not used.
            File.WriteAllLines(pathsFile + ".tmp", written);
            File.Move(pathsFile + ".tmp", pathsFile);
        }
        var paths = File.ReadAllLines(pathsFile)
            .Select(hash => NarInfo.Parse(File.ReadAllText(Path.Combine(directory, hash + ".narinfo"))))
            .ToList();
        return new MountCache(directory, PublicKey.Parse(File.ReadAllText(keyFile).Trim()), paths);
    }

    public LazyStoreEngine OpenEngine(string stateDirectory, Uri? server = null) => LazyStoreEngine.Open(new LazyStoreOptions
    {
        StateDirectory = stateDirectory,
        Substituters = new SubstituterSettings { Substituters = [server ?? new Uri("file://" + Directory)], TrustedPublicKeys = [Key] },
    });
}

/// <summary>
/// A fresh scratch directory holding a state directory, an empty lower directory and a mount point; the
/// store is mounted there by the bench process itself. Dispose unmounts, then disposes the engine the
/// mount served, then removes the directory; it may be called more than once.
/// </summary>
internal sealed class MountedStore : IDisposable
{
    private readonly string _scratch;
    private StoreMount? _mount;
    private LazyStoreEngine? _engine;

    public MountedStore(string workDirectory, string name)
    {
        _scratch = Path.Combine(workDirectory, $"mount-{name}-{Environment.ProcessId}");
        if (System.IO.Directory.Exists(_scratch))
            System.IO.Directory.Delete(_scratch, recursive: true);
        StateDirectory = Path.Combine(_scratch, "state");
        System.IO.Directory.CreateDirectory(LowerDirectory);
        System.IO.Directory.CreateDirectory(MountPoint);
    }

    public string StateDirectory { get; }

    public string LowerDirectory => Path.Combine(_scratch, "lower");

    public string MountPoint => Path.Combine(_scratch, "mnt");

    public StoreMount Mount => _mount ?? throw new InvalidOperationException("not mounted");

    /// <summary>Mounts <paramref name="engine"/>, which this store then owns.</summary>
    public void MountEngine(LazyStoreEngine engine)
    {
        _engine = engine;
        _mount = StoreMount.Mount(engine, MountPoint, new StoreMountOptions { LowerDirectory = LowerDirectory, Log = Console.Error });
    }

    public string PathOf(NarInfo info, string inside = "") =>
        inside.Length == 0 ? Path.Combine(MountPoint, info.StorePath.BaseName) : Path.Combine(MountPoint, info.StorePath.BaseName, inside);

    public void Dispose()
    {
        _mount?.Dispose();
        _mount = null;
        _engine?.Dispose();
        _engine = null;
        if (System.IO.Directory.Exists(_scratch))
            System.IO.Directory.Delete(_scratch, recursive: true);
    }
}

internal static class MountBench
{
    /// <summary>Why mount scenarios cannot run here, or null.</summary>
    public static string? UnavailableReason => FuseMount.UnavailableReason;

    public static string WorkDirectory(BenchData data) => Path.GetDirectoryName(data.NarPath)!;

    public static ScenarioResult Skipped(string name, string what, string target, string reason)
    {
        Console.Error.WriteLine($"  skipping {name}: {reason}");
        return new ScenarioResult(name, what, 0, double.NaN, null, null, target, true) { SkipReason = reason };
    }

    /// <summary>
    /// Runs each side <paramref name="rounds"/> times, interleaved, after one unmeasured run of each, and
    /// returns the median seconds. Each side times itself, so per-round set-up (dropping caches) is not counted.
    /// </summary>
    public static (double Ours, double Baseline) Interleaved(int rounds, Func<double> ours, Func<double> baseline)
    {
        ours();
        baseline();
        var a = new List<double>();
        var b = new List<double>();
        for (int i = 0; i < rounds; i++)
        {
            a.Add(ours());
            b.Add(baseline());
        }
        return (Median(a), Median(b));
    }

    private static double Median(List<double> values)
    {
        values.Sort();
        return values[values.Count / 2];
    }

    /// <summary>Reads a file to its end in 1 MiB reads, as <c>cat</c> would; returns the bytes read.</summary>
    public static long ReadAll(string path)
    {
        using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 0);
        var buffer = new byte[1 << 20];
        long total = 0;
        int n;
        while ((n = file.Read(buffer)) > 0)
            total += n;
        return total;
    }

    public static byte[] Sha256(string path)
    {
        using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20);
        return SHA256.HashData(file);
    }

    /// <summary>Writes back dirty pages and drops the page cache, dentries and inodes (root only).</summary>
    public static void DropCaches()
    {
        Measure.Shell("sync");
        File.WriteAllText("/proc/sys/vm/drop_caches", "3");
    }

    /// <summary>Runs a program and returns its standard output; throws if it fails.</summary>
    public static string Run(string program, params IEnumerable<string> arguments)
    {
        var psi = new ProcessStartInfo(program) { RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var argument in arguments)
            psi.ArgumentList.Add(argument);
        using var process = Process.Start(psi)!;
        var output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0)
            throw new InvalidOperationException($"{program} failed (exit {process.ExitCode})");
        return output;
    }

    public static string Milliseconds(double seconds) => $"{seconds * 1e3:F1} ms";

    /// <summary>A single file of at least 100 MB of real data: the corpus NAR (the .NET runtime, documentation, libraries).</summary>
    public static MountCache LargeFileCache(BenchData data) =>
        MountCache.Prepare(data.NarPath + ".mount-large", writer =>
        {
            var staging = data.NarPath + ".mount-large-staging";
            if (Directory.Exists(staging))
                Directory.Delete(staging, recursive: true);
            Directory.CreateDirectory(staging);
            try
            {
                // A hard link: the store path's file is the corpus byte for byte without a 200 MB copy.
                Measure.Shell($"ln '{data.NarPath}' '{Path.Combine(staging, LargeFileName)}'");
                return [writer.AddTree(staging, "bench-large-file")];
            }
            finally
            {
                Directory.Delete(staging, recursive: true);
            }
        });

    public const string LargeFileName = "corpus.nar";

    /// <summary>
    /// Opens an engine on a fresh state directory with the large file's path registered and its NAR
    /// fetched (blob on disk), and mounts it.
    /// </summary>
    public static string MountLargeFile(MountCache cache, MountedStore store)
    {
        var engine = cache.OpenEngine(store.StateDirectory);
        var info = cache.Paths[0];
        try
        {
            var lazy = engine.GetPathAsync(info.StorePath, register: true, CancellationToken.None).GetAwaiter().GetResult();
            engine.EnsureFetchedAsync(lazy, CancellationToken.None).GetAwaiter().GetResult();
        }
        catch
        {
            engine.Dispose();
            throw;
        }
        store.MountEngine(engine);
        return store.PathOf(info, LargeFileName);
    }
}

/// <summary>
/// Warm sequential read of a large file through the mount (NAR fetched, page cache warm) vs the same
/// bytes as a native file on the same disk (warm). Target ≥ 0.9×.
/// </summary>
internal sealed class MountWarmReadScenario : IScenario
{
    public string Name => "mount-warm-read";

    public ScenarioResult Run(BenchData data, int rounds)
    {
        const string Target = "≥ 0.9×";
        var what = "warm sequential read (1 MiB reads) of a file through the mount vs the same file on disk";
        if (MountBench.UnavailableReason is { } reason)
            return MountBench.Skipped(Name, what, Target, reason);
        var cache = MountBench.LargeFileCache(data);
        var native = data.NarPath;
        using var store = new MountedStore(MountBench.WorkDirectory(data), Name);
        var mounted = MountBench.MountLargeFile(cache, store);
        // The first pass warms both page caches and proves the mount serves the same bytes.
        if (!MountBench.Sha256(mounted).AsSpan().SequenceEqual(MountBench.Sha256(native)))
            throw new InvalidOperationException($"{mounted} differs from {native}");
        long size = new FileInfo(native).Length;
        // A warm pass takes tens of milliseconds; several per round keep scheduler noise out of the median.
        int passes = (int)Math.Max(1, (2L << 30) / size);
        void ReadPasses(string file)
        {
            for (int i = 0; i < passes; i++)
                Check(MountBench.ReadAll(file), size);
        }
        var (ours, baseline) = MountBench.Interleaved(rounds,
            () => Measure.Time(() => ReadPasses(mounted)),
            () => Measure.Time(() => ReadPasses(native)));
        store.Dispose();
        var result = new ScenarioResult(Name, $"warm sequential read (1 MiB reads, {passes} passes per round) of a {size / 1e6:F0} MB file (the corpus NAR) through the mount vs the same file on disk",
            size * passes, ours, "native file", baseline, Target, false);
        return result with { MeetsTarget = result.Ratio >= 0.9 };
    }

    internal static void Check(long read, long expected)
    {
        if (read != expected)
            throw new InvalidOperationException($"read {read} bytes, expected {expected}");
    }
}

/// <summary>
/// First read of a file whose NAR is stored locally but whose pages are in no cache (dropped before each
/// round, with the dentries and inodes) through the mount vs a cold native read of the same bytes. Target ≥ 0.5×.
/// </summary>
internal sealed class MountFirstReadScenario : IScenario
{
    public string Name => "mount-first-read";

    public ScenarioResult Run(BenchData data, int rounds)
    {
        const string Target = "≥ 0.5×";
        var what = "first read (1 MiB reads) after `echo 3 > /proc/sys/vm/drop_caches`, NAR stored, through the mount vs the same file on disk";
        if (MountBench.UnavailableReason is { } reason)
            return MountBench.Skipped(Name, what, Target, reason);
        if (!Environment.IsPrivilegedProcess)
            return MountBench.Skipped(Name, what, Target, "dropping the page cache needs root");
        var cache = MountBench.LargeFileCache(data);
        var native = data.NarPath;
        using var store = new MountedStore(MountBench.WorkDirectory(data), Name);
        var mounted = MountBench.MountLargeFile(cache, store);
        long bytes = new FileInfo(native).Length;
        var (ours, baseline) = MountBench.Interleaved(rounds,
            () =>
            {
                MountBench.DropCaches();
                return Measure.Time(() => MountWarmReadScenario.Check(MountBench.ReadAll(mounted), bytes));
            },
            () =>
            {
                MountBench.DropCaches();
                return Measure.Time(() => MountWarmReadScenario.Check(MountBench.ReadAll(native), bytes));
            });
        store.Dispose();
        var result = new ScenarioResult(Name, $"first read (1 MiB reads) of a {bytes / 1e6:F0} MB file after `echo 3 > drop_caches` (NAR stored, nothing cached) through the mount vs the same file on disk",
            bytes, ours, "native cold read", baseline, Target, false);
        return result with { MeetsTarget = result.Ratio >= 0.5 };
    }
}

/// <summary>
/// <c>find DIR -printf '%s\n'</c> (readdir + lstat of every entry) over a lazy tree of 10,000 real files,
/// warm, through the mount (metadata from the cache's listing, no NAR fetched) vs the same tree on disk.
/// Target ≤ 1.5× the native time.
/// </summary>
internal sealed class MountStatWalkScenario : IScenario
{
    private const int Files = 10_000;

    public string Name => "mount-stat-walk";

    public ScenarioResult Run(BenchData data, int rounds)
    {
        const string Target = "≤ 1.5× native time";
        var what = $"`find DIR -printf '%s\\n'` (lstat of every entry) of a tree of {Files:N0} files, warm, through the mount vs on disk";
        if (MountBench.UnavailableReason is { } reason)
            return MountBench.Skipped(Name, what, Target, reason);
        var work = MountBench.WorkDirectory(data);
        var tree = Path.Combine(work, "mount-tree-10k");
        var cache = MountCache.Prepare(tree + ".cache", writer => [writer.AddTree(BuildTree(tree), "bench-tree-10k")]);
        using var store = new MountedStore(work, Name);
        var engine = cache.OpenEngine(store.StateDirectory);
        var info = cache.Paths[0];
        store.MountEngine(engine);
        // Registered after mounting: the mount must show a path registered while it runs.
        engine.GetPathAsync(info.StorePath, register: true, CancellationToken.None).GetAwaiter().GetResult();
        var mounted = store.PathOf(info);

        // The first walk warms both sides; both must list the same entries with the same sizes.
        // (Directory sizes are the filesystem's own, so only other entries' sizes are compared.)
        var listing = (string dir) => string.Join('\n', MountBench.Run("find", dir, "-type", "d", "-printf", "%P d\\n", "-o", "-printf", "%P %y %s\\n")
            .Split('\n').Order(StringComparer.Ordinal));
        var (mountedListing, nativeListing) = (listing(mounted), listing(tree));
        if (mountedListing != nativeListing)
            throw new InvalidOperationException($"find lists {mounted} and {tree} differently");
        int entries = mountedListing.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length;
        var (ours, baseline) = MountBench.Interleaved(rounds,
            () => Measure.Time(() => Measure.Shell($"find '{mounted}' -printf '%s\\n' > /dev/null")),
            () => Measure.Time(() => Measure.Shell($"find '{tree}' -printf '%s\\n' > /dev/null")));
        var fetched = store.Mount.Statistics.NarsFetched;
        store.Dispose();
        return new ScenarioResult(Name,
            $"`find DIR -printf '%s\\n'` (readdir + lstat) of {entries:N0} entries ({Files:N0} real files and symlinks), warm, through the mount (NARs fetched: {fetched}) vs the same tree on disk",
            entries, ours, "find on disk", baseline, Target, ours <= 1.5 * baseline)
        {
            Figure = MountBench.Milliseconds(ours),
            BaselineFigure = $"find on disk: {MountBench.Milliseconds(baseline)}",
            RatioFigure = $"{ours / baseline:F2}× time",
        };
    }

    /// <summary>
    /// The first <see cref="Files"/> files and symlinks (in name order) of documentation, locales, the .NET
    /// runtime and shared libraries, copied into <paramref name="tree"/> once.
    /// </summary>
    private static string BuildTree(string tree)
    {
        if (Directory.Exists(tree))
            Directory.Delete(tree, recursive: true);
        var runtime = Path.GetDirectoryName(typeof(object).Assembly.Location)!;
        var sources = new[] { "/usr/share/doc", "/usr/share/locale", Path.GetFullPath(Path.Combine(runtime, "..", "..")), "/usr/lib/x86_64-linux-gnu" };
        int copied = 0;
        foreach (var (source, index) in sources.Where(Directory.Exists).Select((s, i) => (s, i)))
            Copy(source, Path.Combine(tree, index.ToString(CultureInfo.InvariantCulture) + "-" + Path.GetFileName(source)), ref copied);
        return tree;
    }

    private static void Copy(string source, string target, ref int copied)
    {
        Directory.CreateDirectory(target);
        foreach (var entry in Directory.EnumerateFileSystemEntries(source).Order(StringComparer.Ordinal))
        {
            if (copied >= Files)
                return;
            var info = new FileInfo(entry);
            var to = Path.Combine(target, info.Name);
            if (info.LinkTarget is { } link)
            {
                File.CreateSymbolicLink(to, link);
                copied++;
            }
            else if (info.Attributes.HasFlag(FileAttributes.Directory))
            {
                Copy(entry, to, ref copied);
            }
            else if (info.Exists)
            {
                File.Copy(entry, to);
                copied++;
            }
        }
    }
}

/// <summary>
/// Listing the mount's root with 10,000 registered lazy paths (names from the catalog, no lower entries)
/// vs listing a native directory of 10,000 entries with the same names. Reported; no target.
/// </summary>
internal sealed class MountReaddirScenario : IScenario
{
    private const int Paths = 10_000;

    public string Name => "mount-readdir-lazy";

    public ScenarioResult Run(BenchData data, int rounds)
    {
        const string Target = "none (reported)";
        var what = $"readdir of a mount root with {Paths:N0} registered lazy paths vs a native directory of {Paths:N0} entries";
        if (MountBench.UnavailableReason is { } reason)
            return MountBench.Skipped(Name, what, Target, reason);
        var work = MountBench.WorkDirectory(data);
        var native = Path.Combine(work, "mount-many-10k");
        var cache = MountCache.Prepare(native + ".cache", writer => BuildPaths(writer, native + ".staging"));
        if (!Directory.Exists(native))
        {
            // The same names, each a directory like the lazy paths' trees.
            var partial = native + ".tmp";
            if (Directory.Exists(partial))
                Directory.Delete(partial, recursive: true);
            foreach (var info in cache.Paths)
                File.WriteAllText(Path.Combine(Directory.CreateDirectory(Path.Combine(partial, info.StorePath.BaseName)).FullName, "README"), info.StorePath.Name + "\n");
            Directory.Move(partial, native);
        }

        using var store = new MountedStore(work, Name);
        var engine = cache.OpenEngine(store.StateDirectory);
        store.MountEngine(engine);
        var registering = Stopwatch.StartNew();
        var first = engine.GetPathAsync(cache.Paths[0].StorePath, register: true, CancellationToken.None).GetAwaiter().GetResult();
        foreach (var info in cache.Paths.Skip(1))
            engine.Catalog.AddStorePath(info, first.CacheUrl, register: true);
        var registered = registering.Elapsed.TotalSeconds;

        int Count(string dir) => Directory.EnumerateFileSystemEntries(dir).Count();
        if (Count(store.MountPoint) != Paths || Count(native) != Paths)
            throw new InvalidOperationException($"expected {Paths} entries in {store.MountPoint} and {native}");
        var (ours, baseline) = MountBench.Interleaved(rounds,
            () => Measure.Time(() => Count(store.MountPoint)),
            () => Measure.Time(() => Count(native)));
        // The root is not cached by the kernel (it changes as paths are registered): every listing asks
        // the catalog for the registered names. How much of the time that is:
        var (query, _) = MountBench.Interleaved(rounds, () => Measure.Time(() => engine.Catalog.ListRegisteredRoots()), () => 0);
        store.Dispose();
        return new ScenarioResult(Name,
            $"Directory.EnumerateFileSystemEntries (readdir, no stat) of a mount root with {Paths:N0} registered lazy paths (registered in {registered:F1} s; the catalog query listing them alone takes {MountBench.Milliseconds(query)}) vs a native directory of {Paths:N0} subdirectories",
            Paths, ours, "native directory", baseline, Target, true)
        {
            Figure = MountBench.Milliseconds(ours),
            BaselineFigure = $"native directory: {MountBench.Milliseconds(baseline)}",
            RatioFigure = $"{ours / baseline:F2}× time",
        };
    }

    private static IEnumerable<NarInfo> BuildPaths(BinaryCacheWriter writer, string staging)
    {
        for (int i = 0; i < Paths; i++)
        {
            if (Directory.Exists(staging))
                Directory.Delete(staging, recursive: true);
            Directory.CreateDirectory(staging);
            var name = $"bench-path-{i:D5}";
            File.WriteAllText(Path.Combine(staging, "README"), name + "\n");
            yield return writer.AddTree(staging, name);
        }
        Directory.Delete(staging, recursive: true);
    }
}

/// <summary>
/// Starting the demo's program from a lazy path (mount, register the demo closure, run the program until it
/// exits) vs substituting the whole closure the way Nix unpacks it (curl each narinfo and NAR, <c>zstd -dc |
/// nix-store --restore</c>, then run the program), both from the same <see cref="BinaryCacheServer"/>,
/// which counts the bytes each side is sent. Reported; no target.
/// </summary>
internal sealed class MountDemoStartScenario : IScenario
{
    public string Name => "mount-demo-start";

    public ScenarioResult Run(BenchData data, int rounds)
    {
        const string Target = "none (reported)";
        var what = "start the demo program from a lazy path vs download and unpack the whole demo closure";
        if (MountBench.UnavailableReason is { } reason)
            return MountBench.Skipped(Name, what, Target, reason);
        foreach (var tool in new[] { "curl", "zstd", "nix-store" })
        {
            if (!Environment.GetEnvironmentVariable("PATH")!.Split(':').Any(dir => File.Exists(Path.Combine(dir, tool))))
                return MountBench.Skipped(Name, what, Target, $"the baseline needs {tool}");
        }
        var work = Path.Combine(MountBench.WorkDirectory(data), $"mount-demo-{Environment.ProcessId}");
        if (Directory.Exists(work))
            Directory.Delete(work, recursive: true);
        try
        {
            var cacheDirectory = Path.Combine(work, "cache");
            using var key = SecretKey.Generate("bench-demo-1");
            var demo = DemoCache.Build(cacheDirectory, Path.Combine(work, "staging"), StoreDirectory.Default, key);
            using var server = new BinaryCacheServer(cacheDirectory);
            var publicKey = key.PublicKey;
            long oursBytes = 0, baselineBytes = 0;

            double Ours()
            {
                var before = server.BodyBytesSent;
                using var store = new MountedStore(work, "lazy");
                var clock = Stopwatch.StartNew();
                var engine = LazyStoreEngine.Open(new LazyStoreOptions
                {
                    StateDirectory = store.StateDirectory,
                    Substituters = new SubstituterSettings { Substituters = [server.BaseUri], TrustedPublicKeys = [publicKey] },
                });
                store.MountEngine(engine);
                foreach (var info in demo.All)
                    engine.GetPathAsync(info.StorePath, register: true, CancellationToken.None).GetAwaiter().GetResult();
                var output = MountBench.Run(store.PathOf(demo.Program, demo.ProgramFile), demo.ProgramArguments);
                var seconds = clock.Elapsed.TotalSeconds;
                // busybox echo or ls --version: either way the program ran if it printed something.
                if (output.Length == 0)
                    throw new InvalidOperationException("the demo program printed nothing");
                store.Dispose();
                oursBytes = server.BodyBytesSent - before;
                return seconds;
            }

            double Baseline()
            {
                var before = server.BodyBytesSent;
                var unpacked = Path.Combine(work, "unpacked");
                if (Directory.Exists(unpacked))
                    Directory.Delete(unpacked, recursive: true);
                Directory.CreateDirectory(unpacked);
                var baseUri = server.BaseUri.AbsoluteUri.TrimEnd('/');
                var script = new List<string> { "set -e", $"curl -sf '{baseUri}/nix-cache-info' > /dev/null" };
                foreach (var info in demo.All)
                {
                    script.Add($"curl -sf '{baseUri}/{info.StorePath.HashPart}.narinfo' > /dev/null");
                    script.Add($"curl -sf '{baseUri}/{info.Url}' | zstd -dc | nix-store --restore '{Path.Combine(unpacked, info.StorePath.BaseName)}'");
                }
                var program = Path.Combine(unpacked, demo.Program.StorePath.BaseName, demo.ProgramFile);
                script.Add($"'{program}' {string.Join(' ', demo.ProgramArguments.Select(a => $"'{a}'"))} > /dev/null");
                var seconds = Measure.Time(() => Measure.Shell(string.Join('\n', script)));
                Directory.Delete(unpacked, recursive: true);
                baselineBytes = server.BodyBytesSent - before;
                return seconds;
            }

            var (ours, baseline) = MountBench.Interleaved(rounds, Ours, Baseline);
            var closureBytes = demo.All.Sum(i => (long)i.NarSize);
            return new ScenarioResult(Name,
                $"open a fresh state directory, mount, register the demo closure ({demo.All.Count} paths, {closureBytes / 1e6:F0} MB of NARs), run `{demo.ProgramFile} {string.Join(' ', demo.ProgramArguments)}` to exit; baseline: curl every narinfo and NAR, `zstd -dc | nix-store --restore`, run it (no verification)",
                oursBytes, ours, "download and unpack", baseline, Target, true)
            {
                Figure = $"{MountBench.Milliseconds(ours)}, {oursBytes / 1e6:F2} MB sent",
                BaselineFigure = $"download + unpack the closure: {MountBench.Milliseconds(baseline)}, {baselineBytes / 1e6:F2} MB sent",
                RatioFigure = $"{ours / baseline:F3}× time, {(double)oursBytes / baselineBytes:F3}× bytes",
            };
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }
}
