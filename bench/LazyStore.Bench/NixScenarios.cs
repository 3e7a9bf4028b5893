using System.Diagnostics;
using System.Globalization;
using System.Text;
using LazyStore.Nix;
using LazyStore.Nix.Signatures;
using LazyStore.Store;
using LazyStore.Store.Configuration;
using LazyStore.Store.Mount;
using LazyStore.Store.Serving;

namespace LazyStore.Bench;

/// <summary>
/// A closure built by the real Nix and written by <c>nix copy</c> to an xz binary cache: data paths that
/// are derivation outputs (busybox copies trees of the .NET SDK and this machine's libraries into
/// <c>$out</c>), and on top <c>app</c>, whose output refers to all of them. <c>consumer</c> builds on
/// <c>app</c> and opens three of its files. Made once per work directory.
/// </summary>
internal sealed class NixClosure
{
    private const long MinNarBytes = 320L * 1024 * 1024;
    private const int MinPaths = 30;

    private NixClosure(string directory)
    {
        Directory = directory;
        var manifest = File.ReadAllLines(Path.Combine(directory, "manifest"));
        BusyboxTree = Path.Combine(directory, "busybox");
        SandboxPaths = manifest[0];
        App = manifest[1];
        Closure = manifest[2..];
        Key = PublicKey.Parse(File.ReadAllText(Path.Combine(directory, "pk")).Trim());
    }

    public string Directory { get; }

    public string CacheDirectory => Path.Combine(Directory, "cache");

    public PublicKey Key { get; }

    /// <summary>The tree whose <c>nix-store --add</c> gives every store the same busybox path, the builder of every derivation here.</summary>
    public string BusyboxTree { get; }

    /// <summary>What the data derivations copy from, for <c>extra-sandbox-paths</c> when they are built (only in preparation).</summary>
    public string SandboxPaths { get; }

    public string AppExpression => Path.Combine(Directory, "app.nix");

    public string ConsumerExpression => Path.Combine(Directory, "consumer.nix");

    /// <summary><c>app</c>'s output path.</summary>
    public string App { get; }

    /// <summary>Every path of <c>app</c>'s closure.</summary>
    public IReadOnlyList<string> Closure { get; }

    public NarInfo NarInfoOf(string path)
    {
        var file = Path.Combine(CacheDirectory, StorePath.FromBaseName(Path.GetFileName(path)).HashPart + ".narinfo");
        return NarInfo.Parse(File.ReadAllText(file), source: file);
    }

    public static NixClosure Prepare(string workDirectory)
    {
        var directory = Path.Combine(workDirectory, "nix-closure-xz-2");
        if (File.Exists(Path.Combine(directory, "manifest")))
            return new NixClosure(directory);
        if (System.IO.Directory.Exists(directory))
            System.IO.Directory.Delete(directory, recursive: true);
        System.IO.Directory.CreateDirectory(Path.Combine(directory, "busybox", "bin"));
        File.Copy("/bin/busybox", Path.Combine(directory, "busybox", "bin", "busybox"));
        NixTools.Run("nix-store", "--generate-binary-cache-key", "bench-nix-1", Path.Combine(directory, "sk"), Path.Combine(directory, "pk"));
        var source = Path.Combine(directory, "source-root");
        var busybox = NixTools.Run("nix-store", "--store", source, "--add", Path.Combine(directory, "busybox")).Trim();

        var sources = DataSources();
        var reads = sources.Where(s => System.IO.Directory.Exists(s.Path)).Take(2)
            .Select(s => (s.Name, File: FirstFile(s.Path))).ToList();
        File.WriteAllText(Path.Combine(directory, "data.nix"), DataExpression(busybox, sources));
        File.WriteAllText(Path.Combine(directory, "app.nix"), AppText);
        File.WriteAllText(Path.Combine(directory, "consumer.nix"), ConsumerText(reads));
        var roots = string.Join(' ', sources.Select(s => s.Root).Distinct(StringComparer.Ordinal));
        Console.Error.WriteLine($"  building the closure ({sources.Count} data paths from {roots}) …");
        var app = NixTools.Run("nix-build", "--store", source, "--no-out-link", "--option", "extra-sandbox-paths", roots, Path.Combine(directory, "app.nix")).Trim();
        var closure = NixTools.Run("nix-store", "--store", source, "-qR", app).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Console.Error.WriteLine($"  nix copy of {closure.Length} paths to an xz cache (once) …");
        NixTools.Run("nix", "copy", "--store", source, "--to",
            $"file://{Path.Combine(directory, "cache")}?compression=xz&write-nar-listing=true&secret-key={Path.Combine(directory, "sk")}", app);
        System.IO.Directory.Delete(source, recursive: true);
        File.WriteAllLines(Path.Combine(directory, "manifest"), [roots, app, .. closure]);
        return new NixClosure(directory);
    }

    /// <summary>
    /// Trees of real files, one store path each, until there are enough bytes and paths: the .NET SDK's
    /// and runtime's directories and files, then this machine's shared libraries.
    /// </summary>
    private static List<(string Name, string Path, string Root)> DataSources()
    {
        var runtime = System.IO.Path.GetDirectoryName(typeof(object).Assembly.Location)!;
        var dotnetRoot = System.IO.Path.GetFullPath(System.IO.Path.Combine(runtime, "..", "..", ".."));
        var parents = new List<(string Dir, string Root)>();
        foreach (var sdk in System.IO.Directory.EnumerateDirectories(System.IO.Path.Combine(dotnetRoot, "sdk")).Order(StringComparer.Ordinal))
            parents.Add((sdk, dotnetRoot));
        foreach (var framework in System.IO.Directory.EnumerateDirectories(System.IO.Path.Combine(dotnetRoot, "shared")).Order(StringComparer.Ordinal))
            parents.Add((framework, dotnetRoot));
        parents.Add(("/usr/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu"));
        var chosen = new List<(string, string, string)>();
        long total = 0;
        foreach (var (parent, root) in parents)
        {
            foreach (var entry in System.IO.Directory.EnumerateFileSystemEntries(parent).Order(StringComparer.Ordinal))
            {
                if (total >= MinNarBytes && chosen.Count >= MinPaths)
                    return chosen;
                var info = new FileInfo(entry);
                if (info.LinkTarget is not null || !IsPlain(entry))
                    continue;
                var size = info.Attributes.HasFlag(FileAttributes.Directory) ? TreeSize(entry) : info.Length;
                if (size < 256 * 1024)
                    continue;
                chosen.Add((StoreName(System.IO.Path.GetFileName(parent) + "-" + System.IO.Path.GetFileName(entry)), entry, root));
                total += size;
            }
        }
        throw new InvalidOperationException($"found only {total / 1e6:F0} MB in {chosen.Count} trees of real files; the bench needs {MinNarBytes / 1e6:F0} MB in {MinPaths}");
    }

    private static long TreeSize(string directory) =>
        new DirectoryInfo(directory).EnumerateFiles("*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0 })
            .Where(f => f.LinkTarget is null).Sum(f => f.Length);

    private static string FirstFile(string directory) =>
        System.IO.Path.GetRelativePath(directory, System.IO.Directory.EnumerateFiles(directory, "*", SearchOption.AllDirectories)
            .Order(StringComparer.Ordinal).First(f => new FileInfo(f).LinkTarget is null && IsPlain(f)));

    /// <summary>Paths that go into Nix strings and shell words unquoted: no quotes, dollars, backslashes or spaces.</summary>
    private static bool IsPlain(string path) => path.All(c => char.IsAsciiLetterOrDigit(c) || "/+-._".Contains(c));

    /// <summary>A store path name: letters, digits and <c>+-._?=</c> (Nix's rule), at most 200 characters.</summary>
    private static string StoreName(string name)
    {
        var safe = new string(name.Select(c => char.IsAsciiLetterOrDigit(c) || "+-._?=".Contains(c) ? c : '-').ToArray()).TrimStart('.');
        return safe.Length > 200 ? safe[..200] : safe;
    }

    /// <summary>data.nix: the builder, and one derivation per data path copying its tree into <c>$out</c>.</summary>
    private static string DataExpression(string busybox, IEnumerable<(string Name, string Path, string Root)> sources)
    {
        var text = new StringBuilder();
        text.Append(CultureInfo.InvariantCulture, $$"""
            let
              busybox = builtins.storePath "{{busybox}}";
              sh = "${busybox}/bin/busybox";
              build = name: script: derivation { inherit name; system = builtins.currentSystem; builder = sh; args = [ "sh" "-c" script ]; };
            in {
              inherit sh build;
              data = {

            """);
        // A file becomes lib/FILE of a directory output: store paths that are single files are rare in real
        // closures, and Nix bind-mounts directory inputs into a build chroot but hard-links file inputs, or
        // copies them (reading them whole) where it cannot, as from a lazy path.
        foreach (var (name, path, _) in sources)
        {
            var copy = System.IO.Directory.Exists(path) ? $"${{sh}} cp -r '{path}' $out" : $"${{sh}} mkdir -p $out/lib; ${{sh}} cp '{path}' $out/lib/";
            text.Append(CultureInfo.InvariantCulture, $"    \"{name}\" = build \"{name}\" \"{copy}\";\n");
        }
        text.Append("  };\n}\n");
        return text.ToString();
    }

    private const string AppText = """
        let d = import ./data.nix;
        in d.build "app" "${d.sh} mkdir $out; echo ${toString (builtins.attrValues d.data)} > $out/refs"

        """;

    /// <summary>consumer.nix: reads <c>app</c>'s refs file and one file of each of two data paths.</summary>
    private static string ConsumerText(IEnumerable<(string Name, string File)> reads) =>
        "let d = import ./data.nix; app = import ./app.nix;\n"
        + "in d.build \"consumer\" \"${d.sh} mkdir $out; ${d.sh} cat ${app}/refs"
        + string.Concat(reads.Select(r => $" '${{d.data.\"{r.Name}\"}}/{r.File}'"))
        + " | ${d.sh} wc -c > $out/bytes\"\n";
}

internal static class NixTools
{
    public static string? UnavailableReason =>
        new[] { "nix-store", "nix-build", "nix-instantiate", "nix" }.FirstOrDefault(t => !OnPath(t)) is { } missing ? $"{missing} is not on PATH (install Debian's nix-bin)"
        : !File.Exists("/bin/busybox") ? "/bin/busybox is missing (install Debian's busybox-static)"
        : null;

    private static bool OnPath(string tool) =>
        Environment.GetEnvironmentVariable("PATH")!.Split(':').Any(dir => File.Exists(Path.Combine(dir, tool)));

    /// <summary>Nix's new command line on, and no substituters unless given.</summary>
    public static readonly (string Name, string Value) PrivateConfiguration = ("NIX_CONFIG", "experimental-features = nix-command\nsubstituters =\n");

    /// <summary>Runs a Nix tool with a private configuration (no substituters unless given) and returns its stdout; throws with its stderr if it fails.</summary>
    public static string Run(string tool, params IEnumerable<string> arguments) => Run([], tool, arguments);

    /// <summary>As <see cref="Run(string, IEnumerable{string})"/>, with more environment variables (a cache directory, say).</summary>
    public static string Run(IReadOnlyList<(string Name, string Value)> environment, string tool, params IEnumerable<string> arguments) =>
        RunChecked(tool, arguments, [PrivateConfiguration, .. environment]).Stdout;

    /// <summary>Runs a program to its end; throws with its stderr if it fails.</summary>
    public static ProcessOutput RunChecked(string program, IEnumerable<string> arguments, IReadOnlyList<(string Name, string Value)>? environment = null)
    {
        var output = RunProcess(program, arguments, environment);
        if (output.ExitCode != 0)
            throw new InvalidOperationException($"{program} {string.Join(' ', arguments)} failed (exit {output.ExitCode}): {output.Stderr}");
        return output;
    }

    /// <summary>Runs a program to its end and returns its exit status and output, whatever the status.</summary>
    public static ProcessOutput RunProcess(string program, IEnumerable<string> arguments, IReadOnlyList<(string Name, string Value)>? environment = null)
    {
        var psi = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var argument in arguments)
            psi.ArgumentList.Add(argument);
        foreach (var (name, value) in environment ?? [])
            psi.Environment[name] = value;
        using var process = Process.Start(psi)!;
        var stderr = process.StandardError.ReadToEndAsync();
        var output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return new ProcessOutput(process.ExitCode, output, stderr.Result);
    }

    /// <summary>The full path of <paramref name="tool"/> as PATH finds it.</summary>
    public static string Which(string tool) =>
        Environment.GetEnvironmentVariable("PATH")!.Split(':').Select(dir => Path.Combine(dir, tool)).FirstOrDefault(File.Exists)
        ?? throw new InvalidOperationException($"{tool} is not on PATH");
}

internal sealed record ProcessOutput(int ExitCode, string Stdout, string Stderr);

/// <summary>
/// Real Nix substitution vs LazyStore on the same cache in the same run, each round on fresh chroot
/// stores. <c>ci-noop</c>: <c>nix-build</c> of <c>app</c>, whose output the cache has (plain Nix
/// downloads and unpacks its closure; LazyStore realises it lazily). <c>few-files</c>: <c>nix-build</c>
/// of <c>consumer</c>, which opens three files of <c>app</c>'s closure. Targets: time ≤ 1/10 (ci-noop)
/// and ≤ 1/3 (few-files) of plain substitution; NAR bytes = the FileSize of the NARs opened.
/// </summary>
internal sealed class NixSubstitutionScenario(bool ciNoop) : IScenario
{
    public string Name => ciNoop ? "nix-ci-noop" : "nix-few-files";

    private static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count == 0 ? double.NaN : sorted[sorted.Count / 2];
    }

    public ScenarioResult Run(BenchData data, int rounds)
    {
        var target = ciNoop ? "≤ 0.1× time, NAR bytes 0" : "≤ 0.33× time, NAR bytes = FileSize of opened NARs";
        var what = ciNoop
            ? "nix-build of a derivation whose output the cache has: plain substitution vs lazystore realise + nix-build"
            : "nix-build of a derivation opening 3 files of a cached closure: plain substitution vs lazystore realise + nix-build";
        if ((MountBench.UnavailableReason ?? NixTools.UnavailableReason) is { } reason)
            return MountBench.Skipped(Name, what, target, reason);
        var closure = NixClosure.Prepare(MountBench.WorkDirectory(data));
        var expression = ciNoop ? closure.AppExpression : closure.ConsumerExpression;
        using var server = new BinaryCacheServer(closure.CacheDirectory);
        var work = Path.Combine(MountBench.WorkDirectory(data), $"nix-rounds-{Environment.ProcessId}");
        (long Total, long Nar, HashSet<string> Nars) plainBytes = (0, 0, []), lazyBytes = (0, 0, []);
        var steps = new List<(double Instantiate, double Realise, double Build)>();

        (long, long, HashSet<string>) Sent(int from)
        {
            var requests = server.Requests.Skip(from).ToList();
            var nars = requests.Where(r => r.Path.StartsWith("nar/", StringComparison.Ordinal)).ToList();
            return (requests.Sum(r => r.BodyBytesSent), nars.Sum(r => r.BodyBytesSent), nars.Select(r => r.Path).ToHashSet(StringComparer.Ordinal));
        }

        double Plain()
        {
            using var store = new BenchStore(work, "plain", closure.Key, closure.BusyboxTree);
            var from = server.Requests.Count;
            var seconds = Measure.Time(() => NixTools.Run("nix-build", "--store", store.Root, "--no-out-link",
                "--option", "substituters", server.BaseUri.ToString(), "--option", "trusted-public-keys", closure.Key.ToString(), expression));
            plainBytes = Sent(from);
            return seconds;
        }

        double Lazy()
        {
            using var store = new BenchStore(work, "lazy", closure.Key, closure.BusyboxTree);
            store.Mount(server.BaseUri);
            var from = server.Requests.Count;
            var clock = Stopwatch.StartNew();
            var derivation = NixTools.Run("nix-instantiate", "--store", store.Root, expression).Trim();
            var instantiated = clock.Elapsed.TotalSeconds;
            store.Lazystore("realise", "--store-root", store.Root, "--substituter", server.BaseUri.ToString(),
                "--trusted-public-key", closure.Key.ToString(), "--state-dir", store.StateDirectory, derivation);
            var realised = clock.Elapsed.TotalSeconds;
            NixTools.Run("nix-build", "--store", store.Root, "--no-out-link", derivation);
            var seconds = clock.Elapsed.TotalSeconds;
            steps.Add((instantiated, realised - instantiated, seconds - realised));
            lazyBytes = Sent(from);
            return seconds;
        }

        double lazy, plain;
        try
        {
            (lazy, plain) = MountBench.Interleaved(Math.Clamp(rounds, 1, 3), Lazy, Plain);
        }
        finally
        {
            if (Directory.Exists(work))
                Directory.Delete(work, recursive: true);
        }
        var opened = lazyBytes.Nars.ToList();
        var openedFileSize = closure.Closure.Select(closure.NarInfoOf).Where(i => opened.Contains(i.Url)).Sum(i => (long)(i.FileSize ?? 0));
        var narSize = closure.Closure.Sum(p => (long)closure.NarInfoOf(p).NarSize);
        var fileSize = closure.Closure.Sum(p => (long)(closure.NarInfoOf(p).FileSize ?? 0));
        var ratio = lazy / plain;
        var bytesExact = lazyBytes.Nar == openedFileSize && (!ciNoop || lazyBytes.Nar == 0);
        return new ScenarioResult(Name,
            $"{what}; closure of {closure.Closure.Count} paths, {narSize / 1e6:F0} MB NAR, {fileSize / 1e6:F0} MB xz; fresh chroot stores each round, the mount already running",
            lazyBytes.Total, lazy, "plain substitution", plain, target, ratio <= (ciNoop ? 0.1 : 1.0 / 3) && bytesExact)
        {
            Figure = $"{lazy:F2} s (nix-instantiate {Median(steps.Select(s => s.Instantiate)):F2} s, lazystore realise {Median(steps.Select(s => s.Realise)):F2} s, nix-build {Median(steps.Select(s => s.Build)):F2} s), {lazyBytes.Nar / 1e6:F2} MB of NAR ({opened.Count} NARs; their FileSize {openedFileSize / 1e6:F2} MB) + {(lazyBytes.Total - lazyBytes.Nar) / 1e3:F0} kB metadata",
            BaselineFigure = $"plain substitution: {plain:F2} s, {plainBytes.Nar / 1e6:F2} MB of NAR ({plainBytes.Nars.Count} NARs) + {(plainBytes.Total - plainBytes.Nar) / 1e3:F0} kB metadata",
            RatioFigure = $"{ratio:F3}× time, {(plainBytes.Nar == 0 ? 0 : (double)lazyBytes.Nar / plainBytes.Nar):F4}× NAR bytes",
        };
    }
}

/// <summary>
/// A fresh chroot store for one round, optionally with a builder tree (busybox) added locally, and a Nix
/// cache directory of its own; optionally a LazyStore mount over its store directory.
/// </summary>
internal sealed class BenchStore : IDisposable
{
    private static int s_stores;
    private readonly string _scratch;
    private LazyStoreEngine? _engine;
    private StoreMount? _mount;
    private TextWriter? _mountLog;

    public BenchStore(string work, string name, PublicKey key, string? builderTree = null)
    {
        // A directory name never used before in this process: the catalog pools its SQLite connections by
        // file name, and a pooled connection to a removed state directory's database would still read the
        // removed file (a mount of a later round served an earlier round's catalog).
        _scratch = Path.Combine(work, $"{name}-{Interlocked.Increment(ref s_stores)}");
        if (Directory.Exists(_scratch))
            Directory.Delete(_scratch, recursive: true);
        Directory.CreateDirectory(StoreDirectory);
        if (builderTree is not null)
            NixTools.Run("nix-store", "--store", Root, "--add", builderTree);
        Key = key;
    }

    private PublicKey Key { get; }

    public string Root => Path.Combine(_scratch, "root");

    public string StoreDirectory => Path.Combine(Root, "nix", "store");

    public string StateDirectory => Path.Combine(_scratch, "state");

    /// <summary>
    /// For <c>XDG_CACHE_HOME</c>: Nix keeps narinfos it has seen in <c>$XDG_CACHE_HOME/nix</c> across runs,
    /// which would spare a later round the lookups a fresh machine makes.
    /// </summary>
    public string CacheHome => Path.Combine(_scratch, "xdg-cache");

    /// <summary>A path in this round's scratch directory, removed with it.</summary>
    public string ScratchFile(string name) => Path.Combine(_scratch, name);

    /// <summary>
    /// Mounts LazyStore over the store directory, as a daemon already running on a builder would be; the
    /// mount's log goes to <paramref name="logFile"/> if given, else nowhere.
    /// </summary>
    public void Mount(Uri cache, string? logFile = null)
    {
        _mountLog = logFile is null ? TextWriter.Null : TextWriter.Synchronized(new StreamWriter(logFile) { AutoFlush = true });
        _engine = LazyStoreEngine.Open(new LazyStoreOptions
        {
            StateDirectory = StateDirectory,
            Substituters = new SubstituterSettings { Substituters = [cache], TrustedPublicKeys = [Key] },
        });
        // Nix builds as its build users, who reach the inputs through the mount.
        _mount = StoreMount.Mount(_engine, StoreDirectory, new StoreMountOptions { AllowOther = true, Log = _mountLog });
    }

    /// <summary>Runs the real <c>lazystore</c> command; throws with its stderr if it fails.</summary>
    public void Lazystore(params string[] arguments) =>
        NixTools.RunChecked("dotnet", [LazystoreDll, .. arguments]);

    /// <summary>Runs the real <c>lazystore</c> command with more environment variables, to its end, whatever its exit status.</summary>
    public static ProcessOutput RunLazystore(IReadOnlyList<(string Name, string Value)> environment, params string[] arguments) =>
        NixTools.RunProcess("dotnet", [LazystoreDll, .. arguments], environment);

    public static string LazystoreDll => Path.Combine(AppContext.BaseDirectory, "lazystore.dll");

    public void Dispose()
    {
        _mount?.Dispose();
        _engine?.Dispose();
        _mountLog?.Dispose();
        if (Directory.Exists(_scratch))
            Directory.Delete(_scratch, recursive: true);
    }
}
