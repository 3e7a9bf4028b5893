using System.Globalization;
using LazyStore.Nix;
using LazyStore.Nix.Compression;
using LazyStore.Nix.Signatures;
using LazyStore.Store;
using LazyStore.Store.Catalog;
using LazyStore.Store.Configuration;
using LazyStore.Store.Mount;
using Errno = LazyStore.Tests.Mount.Errno;
using LazyStore.Store.Substituters;
using LazyStore.Tests.Support;

namespace LazyStore.Tests.Store;

/// <summary>
/// A cache for running the state directory out of space: a path of many small files, whose index rows need
/// far more room than the free space left beyond its NAR, and a path holding one 3 MiB file.
/// </summary>
public sealed class DiskFullCaches : IDisposable
{
    public const int ManyEntries = 20_000;

    private readonly TempDir _dir = new("lazystore-disk-full-caches-");

    public DiskFullCaches()
    {
        Key = SecretKey.Generate("disk-full-1");
        if (SmallFileSystem.SkipReason is not null)
        {
            Many = Large = null!;
            return;
        }
        Directory.CreateDirectory(SourceMany);
        for (int i = 0; i < ManyEntries; i++)
            File.WriteAllText(Path.Combine(SourceMany, $"entry-{i:D5}"), i.ToString(CultureInfo.InvariantCulture));
        FixtureTrees.WriteLargeFile(SourceLarge, 3L * 1024 * 1024);
        var writer = new BinaryCacheWriter(CacheDir, CompressionMethod.None, Key);
        Many = writer.AddTree(SourceMany, "many");
        Large = writer.AddTree(SourceLarge, "large");
    }

    public SecretKey Key { get; }

    public string CacheDir => _dir.Sub("cache");

    public string SourceMany => _dir.Sub("src/many");

    public string SourceLarge => _dir.Sub("src/large");

    public NarInfo Many { get; }

    public NarInfo Large { get; }

    public void Dispose()
    {
        Key.Dispose();
        _dir.Dispose();
    }
}

/// <summary>
/// The state directory on a small tmpfs that runs full: where the catalog cannot take a write, where a NAR's
/// index rows do not fit after its blob did, and where the blob itself does not fit. Each fails with one line
/// naming the state directory and the full disk, leaves nothing behind, and the catalog answers again once
/// there is room.
/// </summary>
public sealed class DiskFullTests(DiskFullCaches caches) : IClassFixture<DiskFullCaches>, IDisposable
{
    private const long Room = 512 * 1024;

    private readonly TempDir _dir = new("lazystore-disk-full-");

    private string[] Common(string state) =>
        ["--substituter", "file://" + caches.CacheDir, "--trusted-public-key", caches.Key.PublicKey.ToString(), "--state-dir", state];

    private ProcessResult Run(string state, params string[] args) => CliProcess.Run([.. args, .. Common(state)]);

    [SmallFileSystemFact]
    public void Info_on_a_full_disk_fails_with_one_line_and_answers_again_once_there_is_room()
    {
        using var fs = new SmallFileSystem(16L << 20);
        var state = fs.Sub("state");
        Assert.Equal(0, Run(state, "info", caches.Many.StorePath.ToFullPath()).ExitCode);
        fs.Fill(0);

        var full = Run(state, "info", caches.Large.StorePath.ToFullPath());
        Assert.Equal(1, full.ExitCode);
        var line = Assert.Single(full.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith($"error: state directory {state}", line, StringComparison.Ordinal);
        Assert.Contains("index.sqlite", line, StringComparison.Ordinal);
        Assert.Contains("no space left on device", line, StringComparison.Ordinal);

        fs.Unfill();
        var again = Run(state, "info", caches.Large.StorePath.ToFullPath());
        Assert.True(again.ExitCode == 0, again.Stderr);
        Assert.Contains("State: advertised", again.StdoutText, StringComparison.Ordinal);
        Assert.Contains("State: advertised", Run(state, "info", caches.Many.StorePath.ToFullPath()).StdoutText, StringComparison.Ordinal);
    }

    [SmallFileSystemFact]
    public void A_fetch_whose_index_does_not_fit_fails_with_one_line_and_leaves_no_blob()
    {
        using var fs = new SmallFileSystem(32L << 20);
        var state = fs.Sub("state");
        fs.Fill((long)caches.Many.NarSize + Room);

        var full = Run(state, "fetch", caches.Many.StorePath.ToFullPath());
        Assert.Equal(1, full.ExitCode);
        var line = Assert.Single(full.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith($"error: state directory {state}: index.sqlite: cannot record the verified NAR {caches.Many.NarHash}: ", line, StringComparison.Ordinal);
        Assert.Contains("no space left on device", line, StringComparison.Ordinal);
        AssertNothingLeft(state);

        fs.Unfill();
        Assert.Contains("State: advertised", Run(state, "info", caches.Many.StorePath.ToFullPath()).StdoutText, StringComparison.Ordinal);
        var cat = Run(state, "cat", caches.Many.StorePath.ToFullPath() + "/entry-01234");
        Assert.True(cat.ExitCode == 0, cat.Stderr);
        Assert.Equal("1234", cat.StdoutText);
    }

    [SmallFileSystemFact]
    public void A_NAR_that_does_not_fit_fails_with_one_line_that_blames_no_cache()
    {
        using var fs = new SmallFileSystem(16L << 20);
        var state = fs.Sub("state");
        fs.Fill(1L << 20);
        var file = caches.Large.StorePath.ToFullPath() + "/large.bin";

        var full = Run(state, "cat", file);
        Assert.Equal(1, full.ExitCode);
        Assert.Empty(full.Stdout);
        var line = Assert.Single(full.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith($"error: state directory {state}: tmp/", line, StringComparison.Ordinal);
        Assert.Contains(".partial: cannot write the NAR being downloaded: No space left on device", line, StringComparison.Ordinal);
        AssertNothingLeft(state);

        fs.Unfill();
        var info = Run(state, "info", caches.Large.StorePath.ToFullPath());
        Assert.DoesNotContain("FetchFailure", info.StdoutText, StringComparison.Ordinal);
        var cat = Run(state, "cat", file);
        Assert.True(cat.ExitCode == 0, cat.Stderr);
        Assert.Equal(File.ReadAllBytes(Path.Combine(caches.SourceLarge, "large.bin")), cat.Stdout);
    }

    [SmallFileSystemFact]
    public async Task A_commit_that_fails_after_the_blob_was_written_deletes_the_blob_and_keeps_the_catalog_consistent()
    {
        using var fs = new SmallFileSystem(32L << 20);
        using var engine = OpenEngine(fs.Sub("state"));
        var path = await engine.GetPathAsync(caches.Many.StorePath, register: false, CancellationToken.None);
        fs.Fill((long)caches.Many.NarSize + Room);

        var error = await Assert.ThrowsAsync<StateStorageException>(() => engine.EnsureFetchedAsync(path, CancellationToken.None));
        Assert.StartsWith($"state directory {engine.Catalog.State.Path}: index.sqlite: cannot record the verified NAR", error.Message, StringComparison.Ordinal);
        Assert.Contains("database or disk is full", error.Message, StringComparison.Ordinal);
        AssertNothingLeft(engine.Catalog.State.Path);
        Assert.Equal(1, engine.Nars.DownloadsStarted);
        Assert.Equal(0, engine.Nars.NarsFetched);

        fs.Unfill();
        var nar = engine.Catalog.GetNar(caches.Many.NarHash.ToString())!;
        Assert.False(nar.IsFetched);
        Assert.Equal(NarTree.None, nar.Tree);
        Assert.Empty(engine.Catalog.GetTree(nar.Id));
        Assert.Empty(engine.Catalog.GetFailures(nar.NarHash));

        var fetched = await engine.EnsureFetchedAsync(path, CancellationToken.None);
        Assert.True(fetched.IsFetched);
        Assert.Equal(DiskFullCaches.ManyEntries + 1, engine.Catalog.GetTree(fetched.Id).Count);
        var buffer = new byte[16];
        var n = await engine.ReadAsync(caches.Many.StorePath, ["entry-19999"], 0, buffer, CancellationToken.None);
        Assert.Equal("19999", System.Text.Encoding.ASCII.GetString(buffer, 0, n));
    }

    [SmallFileSystemFuseFact]
    public void Through_the_mount_a_failed_commit_is_EIO_for_that_open_and_the_mount_keeps_serving()
    {
        using var fs = new SmallFileSystem(32L << 20);
        using var engine = OpenEngine(fs.Sub("state"));
        engine.GetPathAsync(caches.Many.StorePath, register: true, CancellationToken.None).GetAwaiter().GetResult();
        var mountPoint = _dir.Sub("mnt");
        Directory.CreateDirectory(mountPoint);
        Directory.CreateDirectory(_dir.Sub("lower"));
        var log = new StringWriter();
        var file = Path.Combine(mountPoint, caches.Many.StorePath.BaseName, "entry-00042");
        using (var mount = StoreMount.Mount(engine, mountPoint, new StoreMountOptions
        {
            LowerDirectory = _dir.Sub("lower"),
            Log = TextWriter.Synchronized(log),
            FailureBackoff = TimeSpan.Zero,
        }))
        {
            // The tree comes first, from the cache's listing: only the NAR's commit meets the full disk.
            Assert.Equal(2, new FileInfo(file).Length);
            fs.Fill((long)caches.Many.NarSize + Room);
            Assert.Equal(Errno.EIO, Errno.OfOpenAndRead(file));
            Assert.True(log.ToString().Contains($"state directory {engine.Catalog.State.Path}: index.sqlite: cannot record the verified NAR", StringComparison.Ordinal), log.ToString());
            AssertNothingLeft(engine.Catalog.State.Path);

            fs.Unfill();
            Assert.Equal("42", File.ReadAllText(file));
            Assert.Equal(1, mount.Statistics.NarsFetched);
        }
    }

    private LazyStoreEngine OpenEngine(string state) => LazyStoreEngine.Open(new LazyStoreOptions
    {
        StateDirectory = state,
        Substituters = new SubstituterSettings
        {
            Substituters = [new Uri("file://" + caches.CacheDir)],
            TrustedPublicKeys = [caches.Key.PublicKey],
        },
        Transport = StoreHarness.FastTransport,
    });

    /// <summary>No blob without its rows and no temporary file.</summary>
    private static void AssertNothingLeft(string state)
    {
        Assert.Empty(Directory.EnumerateFileSystemEntries(Path.Combine(state, "nars")));
        Assert.Empty(Directory.EnumerateFileSystemEntries(Path.Combine(state, "tmp")));
    }

    public void Dispose() => _dir.Dispose();
}
