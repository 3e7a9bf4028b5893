using LazyStore.Nix;
using LazyStore.Nix.Compression;
using LazyStore.Tests.Support;

namespace LazyStore.Tests.Cli;

/// <summary><c>lazystore info / ls / cat / fetch / stats</c> over caches written by LazyStore's writer.</summary>
public sealed class StoreCommandTests(OwnCaches caches) : IClassFixture<OwnCaches>, IDisposable
{
    private readonly TempDir _dir = new("lazystore-cli-");

    private string[] Common(string cache) =>
        ["--substituter", "file://" + cache, "--trusted-public-key", caches.Key.PublicKey.ToString(), "--state-dir", _dir.Sub("state")];

    private CliResult Run(string cache, params string[] args) => CliRunner.Run([.. args, .. Common(cache)]);

    private NarInfo Tree => caches.Infos(CompressionMethod.Xz)[0];

    private string XzCache => caches.CacheDir(CompressionMethod.Xz);

    private string SourceNar()
    {
        var nar = _dir.Sub("source.nar");
        using var output = File.Create(nar);
        LazyStore.Nix.Nar.NarWriter.Dump(caches.SourceTree, output);
        return nar;
    }

    [Fact]
    public void Info_shows_the_narinfo_the_cache_and_the_state()
    {
        var result = Run(XzCache, "info", Tree.StorePath.ToFullPath());
        Assert.Equal(0, result.ExitCode);
        Assert.Contains($"StorePath: {Tree.StorePath.ToFullPath()}\n", result.StdoutText);
        Assert.Contains($"NarHash: {Tree.NarHash}\n", result.StdoutText);
        Assert.Contains($"Cache: file://{XzCache}\n", result.StdoutText);
        Assert.Contains("State: advertised", result.StdoutText);
    }

    [Theory]
    [InlineData("-R")]
    [InlineData("-lR")]
    [InlineData("--json")]
    [InlineData("-R --json")]
    public void Ls_of_a_listed_path_matches_nar_ls_of_its_source_without_fetching(string flags)
    {
        var split = flags.Split(' ');
        var expected = CliRunner.Run(["nar", "ls", .. split, SourceNar(), "/"]);
        var actual = Run(XzCache, ["ls", .. split, Tree.StorePath.ToFullPath()]);
        Assert.Equal(0, actual.ExitCode);
        // Offsets are known only once the NAR itself was read; a listing's are never trusted.
        Assert.Equal(System.Text.RegularExpressions.Regex.Replace(expected.StdoutText, ",\"narOffset\":[0-9]+", ""), actual.StdoutText);
        Assert.Empty(Directory.EnumerateFiles(_dir.Sub("state/nars")));
        Assert.Contains("State: listed", Run(XzCache, "info", Tree.StorePath.ToFullPath()).StdoutText);
    }

    [Fact]
    public void Ls_of_a_subdirectory()
    {
        var expected = CliRunner.Run("nar", "ls", "-l", SourceNar(), "/names");
        var actual = Run(XzCache, "ls", "-l", Tree.StorePath.ToFullPath() + "/names");
        Assert.Equal(expected.StdoutText, actual.StdoutText);
    }

    [Fact]
    public void Cat_prints_exactly_the_file_and_fetches_the_nar_once()
    {
        var large = caches.Infos(CompressionMethod.Zstd)[1];
        var result = Run(caches.CacheDir(CompressionMethod.Zstd), "cat", large.StorePath.ToFullPath() + "/large.bin");
        Assert.Equal(0, result.ExitCode);
        Assert.Equal(File.ReadAllBytes(Path.Combine(caches.SourceLarge, "large.bin")), result.Stdout);
        Assert.Single(Directory.EnumerateFiles(_dir.Sub("state/nars")));
        Assert.Contains("State: fetched", Run(caches.CacheDir(CompressionMethod.Zstd), "info", large.StorePath.ToFullPath()).StdoutText);
    }

    [Fact]
    public void Cat_of_a_directory_or_missing_file_fails_with_one_line()
    {
        var directory = Run(XzCache, "cat", Tree.StorePath.ToFullPath() + "/names");
        Assert.Equal(1, directory.ExitCode);
        Assert.Equal($"error: cat: '{Tree.StorePath.ToFullPath()}/names' is a directory, not a regular file\n", directory.Stderr);
        var missing = Run(XzCache, "cat", Tree.StorePath.ToFullPath() + "/nope");
        Assert.Equal(1, missing.ExitCode);
        Assert.Contains("does not exist", missing.Stderr);
    }

    [Fact]
    public void Fetch_closure_then_stats()
    {
        var referrer = caches.Infos(CompressionMethod.Xz)[2];
        var fetch = Run(XzCache, "fetch", "--closure", referrer.StorePath.ToFullPath());
        Assert.Equal(0, fetch.ExitCode);
        foreach (var info in caches.Infos(CompressionMethod.Xz))
            Assert.Contains($"fetched {info.StorePath.ToFullPath()}", fetch.Stderr);
        Assert.Contains("3 of 3 paths fetched", fetch.Stderr);
        Assert.Equal(3, Directory.EnumerateFiles(_dir.Sub("state/nars")).Count());

        var stats = CliRunner.Run("stats", "--state-dir", _dir.Sub("state"));
        Assert.Equal(0, stats.ExitCode);
        Assert.Contains("NARs stored:                3\n", stats.StdoutText);
        var downloaded = caches.Infos(CompressionMethod.Xz).Sum(i => (long)i.FileSize!.Value);
        Assert.Contains($"bytes downloaded:           {downloaded} ", stats.StdoutText);
        Assert.Contains("fetched / advertised:       100.0%", stats.StdoutText);
    }

    [Fact]
    public void A_failed_fetch_prints_one_line_naming_the_path_the_cache_and_the_cause()
    {
        var cache = caches.Copy(CompressionMethod.Xz, _dir.Sub("bad-cache"));
        CacheDamage.FlipByte(CacheDamage.NarFile(cache, Tree), 200);
        var result = Run(cache, "cat", Tree.StorePath.ToFullPath() + "/plain.txt");
        Assert.Equal(1, result.ExitCode);
        Assert.Empty(result.Stdout);
        var line = Assert.Single(result.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith($"error: cannot fetch the NAR of {Tree.StorePath.ToFullPath()}: file://{cache}/nar/", line);
        Assert.Contains("FileHash mismatch", line);
    }

    [Fact]
    public void A_path_no_cache_has_is_reported_with_each_cache_answer()
    {
        var missing = "/nix/store/" + new string('0', 32) + "-missing";
        var result = Run(XzCache, "info", missing);
        Assert.Equal(1, result.ExitCode);
        Assert.Equal($"error: {missing} is not available from any substituter (file://{XzCache}: not found)\n", result.Stderr);
    }

    [Fact]
    public async Task Deadline_flags_replace_nix_conf_and_end_the_wait_for_a_cache_that_never_answers()
    {
        using var dead = new LazyStore.Store.Serving.BinaryCacheServer(_dir.Sub("."))
        {
            Faults = _ => new LazyStore.Store.Serving.ServerFault.Delay(Timeout.InfiniteTimeSpan),
        };
        string[] args =
        [
            "info", Tree.StorePath.ToFullPath(), "--substituter", dead.BaseUri.ToString(), "--trusted-public-key", caches.Key.PublicKey.ToString(),
            "--state-dir", _dir.Sub("state"), "--connect-timeout", "30", "--stalled-download-timeout", "1", "--download-attempts", "2",
        ];
        var result = await Task.Run(() => CliRunner.Run(args)).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(1, result.ExitCode);
        Assert.Contains("within 1 s (stalled-download-timeout) (gave up after 2 attempts)", result.Stderr);
        Assert.Equal(2, dead.Requests.Count);
    }

    public void Dispose() => _dir.Dispose();
}

/// <summary>The CLI over caches written by the real Nix, served on 127.0.0.1.</summary>
public sealed class RealNixCacheCliTests(LazyStore.Tests.Nix.RealNixCaches caches) : IClassFixture<LazyStore.Tests.Nix.RealNixCaches>, IDisposable
{
    private readonly TempDir _dir = new("lazystore-cli-real-");

    public static TheoryData<string> Compressions => new(LazyStore.Tests.Nix.RealNixCaches.Compressions);

    private CliResult Run(LazyStore.Store.Serving.BinaryCacheServer server, params string[] args) => CliRunner.Run(
        [.. args, "--substituter", server.BaseUri.ToString(), "--trusted-public-key", caches.TrustedKey.ToString(), "--state-dir", _dir.Sub("state")]);

    [RealNixTheory]
    [MemberData(nameof(Compressions))]
    public void Ls_downloads_no_nar_and_cat_prints_exactly_the_file(string compression)
    {
        using var server = new LazyStore.Store.Serving.BinaryCacheServer(caches.CacheDir(compression));
        var tree = caches.Paths[0];
        var sourceNar = _dir.Sub("source.nar");
        using (var output = File.Create(sourceNar))
            LazyStore.Nix.Nar.NarWriter.Dump(caches.SourceTree, output);

        var ls = Run(server, "ls", "-lR", tree);
        Assert.Equal(0, ls.ExitCode);
        Assert.Equal(CliRunner.Run("nar", "ls", "-lR", sourceNar, "/").StdoutText, ls.StdoutText);
        Assert.Equal(0, server.CountRequests(p => p.StartsWith("nar/", StringComparison.Ordinal) || p.Contains("/nar/", StringComparison.Ordinal)));
        Assert.Equal(1, server.CountRequests(p => p.EndsWith(".ls", StringComparison.Ordinal)));

        var large = caches.Paths[1];
        var cat = Run(server, "cat", large + "/large.bin");
        Assert.Equal(0, cat.ExitCode);
        Assert.Equal(File.ReadAllBytes(Path.Combine(caches.SourceLarge, "large.bin")), cat.Stdout);
        Assert.Equal(1, server.CountRequests(p => p.Contains("nar/", StringComparison.Ordinal)));
    }

    public void Dispose() => _dir.Dispose();
}

/// <summary>Separate <c>lazystore</c> processes sharing one state directory.</summary>
public sealed class SharedStateDirectoryTests(OwnCaches caches) : IClassFixture<OwnCaches>, IDisposable
{
    private readonly TempDir _dir = new("lazystore-shared-");

    [Fact]
    public async Task Concurrent_processes_fetch_into_one_state_directory_and_see_each_others_work()
    {
        using var server = new LazyStore.Store.Serving.BinaryCacheServer(caches.CacheDir(CompressionMethod.Zstd));
        var infos = caches.Infos(CompressionMethod.Zstd);
        string[] Common() => ["--substituter", server.BaseUri.ToString(), "--trusted-public-key", caches.Key.PublicKey.ToString(), "--state-dir", _dir.Sub("state")];
        var runs = infos.Select(info => Task.Run(() => CliProcess.Run(["fetch", info.StorePath.ToFullPath(), .. Common()]))).ToArray();
        foreach (var run in await Task.WhenAll(runs))
            Assert.True(run.ExitCode == 0, run.Stderr);
        Assert.Equal(infos.Count, Directory.EnumerateFiles(_dir.Sub("state/nars")).Count());
        Assert.Empty(Directory.EnumerateFiles(_dir.Sub("state/tmp")));

        // A third process reads what the others fetched without downloading anything.
        var before = server.CountRequests(p => p.StartsWith("nar/", StringComparison.Ordinal));
        var cat = CliProcess.Run(["cat", infos[0].StorePath.ToFullPath() + "/plain.txt", .. Common()]);
        Assert.Equal("hello\n", cat.StdoutText);
        Assert.Equal(before, server.CountRequests(p => p.StartsWith("nar/", StringComparison.Ordinal)));
        Assert.Equal(infos.Count, server.CountRequests(p => p.StartsWith("nar/", StringComparison.Ordinal)));
    }

    public void Dispose() => _dir.Dispose();
}
