using System.Diagnostics;
using LazyStore.Nix;
using LazyStore.Nix.Compression;
using LazyStore.Nix.IO;
using LazyStore.Nix.Signatures;
using LazyStore.Store;
using LazyStore.Store.Configuration;
using LazyStore.Store.Serving;
using LazyStore.Store.Substituters;

namespace LazyStore.Bench;

/// <summary>A one-path binary cache of a corpus NAR, written once by LazyStore's writer and served on 127.0.0.1.</summary>
internal sealed class CorpusCache
{
    private CorpusCache(string directory, NarInfo info, PublicKey key)
    {
        Directory = directory;
        Info = info;
        Key = key;
    }

    public string Directory { get; }

    public NarInfo Info { get; }

    public PublicKey Key { get; }

    public static CorpusCache Prepare(string narPath, CompressionMethod method)
    {
        var directory = narPath + ".cache-" + NarCompression.ToNarInfoValue(method);
        var keyFile = Path.Combine(directory, "signing-key");
        var infoFile = Path.Combine(directory, "corpus.narinfo-path");
        if (!File.Exists(infoFile))
        {
            if (System.IO.Directory.Exists(directory))
                System.IO.Directory.Delete(directory, recursive: true);
            using var key = SecretKey.Generate("bench-1");
            var writer = new BinaryCacheWriter(directory, method, key, writeListings: false);
            NixHash narHash;
            using (var nar = new HashingReadStream(File.OpenRead(narPath), NixHashAlgorithm.Sha256))
            {
                nar.Drain();
                narHash = nar.FinishHash();
            }
            var path = StorePath.MakeSourcePath(narHash, "corpus", []);
            var info = writer.AddNar(narPath, path, []);
            File.WriteAllText(keyFile, key.PublicKey.ToString());
            File.WriteAllText(infoFile, info.StorePath.HashPart);
        }
        var hash = File.ReadAllText(infoFile).Trim();
        var narInfo = NarInfo.Parse(File.ReadAllText(Path.Combine(directory, hash + ".narinfo")));
        return new CorpusCache(directory, narInfo, PublicKey.Parse(File.ReadAllText(keyFile).Trim()));
    }

    public LazyStoreEngine OpenEngine(Uri server, string stateDir) => LazyStoreEngine.Open(new LazyStoreOptions
    {
        StateDirectory = stateDir,
        Substituters = new SubstituterSettings { Substituters = [server], TrustedPublicKeys = [Key] },
    });
}

/// <summary>
/// Fetch + verify + index of a corpus NAR over loopback HTTP into a fresh state directory, vs
/// <c>curl URL | xz -dc | sha256sum</c> (or zstd) on the same file in the same run. Target ≥ 0.9×.
/// </summary>
internal sealed class FetchScenario(string codec) : IScenario
{
    public string Name => "fetch-" + codec;

    public ScenarioResult Run(BenchData data, int rounds)
    {
        var (method, tool) = codec switch
        {
            "xz" => (CompressionMethod.Xz, "xz -dc"),
            "zstd" => (CompressionMethod.Zstd, "zstd -dc"),
            _ => throw new ArgumentException(codec),
        };
        var cache = CorpusCache.Prepare(data.NarPath, method);
        using var server = new BinaryCacheServer(cache.Directory);
        var url = new Uri(server.BaseUri, cache.Info.Url);
        var state = Path.Combine(Path.GetDirectoryName(data.NarPath)!, "fetch-state");
        var (ours, baseline) = Measure.Interleaved(rounds,
            () =>
            {
                if (Directory.Exists(state))
                    Directory.Delete(state, recursive: true);
                using var engine = cache.OpenEngine(server.BaseUri, state);
                var lazy = engine.GetPathAsync(cache.Info.StorePath, register: false, CancellationToken.None).GetAwaiter().GetResult();
                engine.EnsureFetchedAsync(lazy, CancellationToken.None).GetAwaiter().GetResult();
            },
            () => Measure.Shell($"curl -sf '{url}' | {tool} | sha256sum > /dev/null"));
        Directory.Delete(state, recursive: true);
        var result = new ScenarioResult(Name,
            $"fetch, verify (FileHash, NarHash), store and index a {cache.Info.FileSize / 1e6:F0} MB {codec} file of a {cache.Info.NarSize / 1e6:F0} MB NAR over loopback HTTP",
            (long)cache.Info.NarSize, ours, $"curl | {tool} | sha256sum", baseline, "≥ 0.9×", false);
        return result with { MeetsTarget = result.Ratio >= 0.9 };
    }
}

/// <summary>
/// Peak RSS of a <c>lazystore fetch</c> process fetching a NAR of at least 500 MB: memory must not grow
/// with NAR size. Target &lt; 150 MB.
/// </summary>
internal sealed class FetchMemoryScenario(BenchOptions options) : IScenario
{
    private const long TargetBytes = 150L * 1024 * 1024;

    public string Name => "fetch-rss";

    public ScenarioResult Run(BenchData data, int rounds)
    {
        // The corpus and a NAR several times larger: the peak must not follow the size.
        var big = BenchData.Prepare(options with { MinNarBytes = Math.Max(options.MinNarBytes, 520L * 1024 * 1024) });
        var small = PeakRss(data);
        var (peak, seconds, info) = PeakRss(big);
        return new ScenarioResult(Name,
            $"peak RSS of `lazystore fetch` over loopback HTTP (zstd): {small.Info.NarSize / 1e6:F0} MB NAR vs {info.NarSize / 1e6:F0} MB NAR",
            (long)info.NarSize, seconds, null, null, "peak RSS < 150 MB", Math.Max(small.Peak, peak) < TargetBytes)
        {
            Figure = $"{small.Peak / 1e6:F0} MB / {peak / 1e6:F0} MB peak RSS",
        };
    }

    private static (long Peak, double Seconds, NarInfo Info) PeakRss(BenchData data)
    {
        var cache = CorpusCache.Prepare(data.NarPath, CompressionMethod.Zstd);
        using var server = new BinaryCacheServer(cache.Directory);
        var state = Path.Combine(Path.GetDirectoryName(data.NarPath)!, "rss-state");
        if (Directory.Exists(state))
            Directory.Delete(state, recursive: true);
        var cli = Path.Combine(AppContext.BaseDirectory, "lazystore.dll");
        var psi = new ProcessStartInfo("dotnet")
        {
            ArgumentList = { cli, "fetch", "--substituter", server.BaseUri.ToString(), "--trusted-public-key", cache.Key.ToString(), "--state-dir", state, cache.Info.StorePath.ToFullPath() },
            RedirectStandardError = true,
        };
        var clock = Stopwatch.StartNew();
        long peak = 0;
        using (var process = Process.Start(psi)!)
        {
            var stderr = process.StandardError.ReadToEndAsync();
            // VmHWM is the process's own high-water mark, so sampling it until exit misses nothing but
            // growth in the last interval. (getrusage's children maxrss would count the bench process
            // itself: a forked child inherits its parent's high-water mark until exec.)
            while (!process.WaitForExit(TimeSpan.FromMilliseconds(10)))
                peak = Math.Max(peak, HighWaterMark(process.Id));
            if (process.ExitCode != 0)
                throw new InvalidOperationException($"lazystore fetch failed: {stderr.Result}");
        }
        var seconds = clock.Elapsed.TotalSeconds;
        Directory.Delete(state, recursive: true);
        return (peak, seconds, cache.Info);
    }

    /// <summary>VmHWM of a running process in bytes; 0 once it is gone.</summary>
    internal static long HighWaterMark(int pid)
    {
        try
        {
            foreach (var line in File.ReadLines($"/proc/{pid}/status"))
            {
                if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                    return long.Parse(line["VmHWM:".Length..].Trim().Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture) * 1024;
            }
        }
        catch (IOException)
        {
            // The process exited between the check and the read.
        }
        return 0;
    }
}
