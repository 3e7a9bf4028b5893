using LazyStore.Nix;
using LazyStore.Store;
using LazyStore.Store.Configuration;
using LazyStore.Store.Fetch;
using LazyStore.Store.Mount;
using LazyStore.Store.Serving;
using LazyStore.Tests.Support;

namespace LazyStore.Tests.Integration;

/// <summary>
/// Real Nix on lazily registered paths, end to end: each test has a fresh chroot store ROOT with a
/// LazyStore mount over ROOT/nix/store and the <see cref="NixClosureCache"/> served on 127.0.0.1.
/// </summary>
public sealed class LazyNixTests(NixClosureCache cache) : IClassFixture<NixClosureCache>
{
    [RealNixFuseFact]
    public void Nix_verifies_every_file_of_a_registered_closure_through_the_mount()
    {
        using var store = new LazyNixStore(cache);
        store.RegisterClosure(cache.Top);
        Assert.True(cache.Closure.Count >= 10, $"the closure has {cache.Closure.Count} paths");
        Assert.True(store.AdvertisedNarSize >= NixClosureCache.LargeBytes);
        Assert.Equal(0, store.NarRequests);

        // Trusted: the caches' signatures were copied into Nix's database with the registration.
        store.Nix("nix", "store", "verify", "--store", store.Root, "--all", "--option", "trusted-public-keys", cache.TrustedKey.ToString())
            .EnsureSuccess("nix store verify --all");
        Assert.Equal(cache.Closure.Count, store.Mount.Statistics.NarsFetched);
        Assert.All(cache.Closure, path => Assert.Equal(1, store.NarRequestsFor(path)));
    }

    [RealNixFuseFact]
    public void Nix_builds_with_a_lazy_builder_on_lazy_inputs_and_only_opened_NARs_are_downloaded()
    {
        using var store = new LazyNixStore(cache);
        store.RegisterClosure(cache.Top);
        var added = store.Nix("nix-store", "--store", store.Root, "--add", NixClosureCache.BusyboxBinary).EnsureSuccess("nix-store --add").StdoutText.Trim();
        var expression = store.Write("uses-readme.nix", cache.Derivation("uses-readme",
            $"{cache.Shell} mkdir $out; {cache.Shell} cat {cache.Large}/README > $out/readme; {cache.Shell} cat {cache.Note} > $out/note; echo {cache.Top} > $out/top",
            [cache.Top]));

        var output = store.Nix("nix-build", "--store", store.Root, "--no-out-link", expression).EnsureSuccess("nix-build").StdoutText.Trim();

        Assert.Equal("large\n", File.ReadAllText(store.Physical(output, "readme")));
        store.Nix("nix-store", "--store", store.Root, "--check-validity", output).EnsureSuccess("the output is valid");
        // The single-file input reached the build chroot (Nix copies it when a hard link is refused).
        Assert.Equal("a store path that is a single file\n", File.ReadAllText(store.Physical(output, "note")));
        // Busybox ran, README and the note were read: those three NARs and no other.
        var fetched = cache.Closure.Where(p => store.NarRequestsFor(p) > 0).ToList();
        Assert.Equal(new[] { cache.Busybox, cache.Large, cache.Note }.Order(StringComparer.Ordinal), fetched);
        Assert.All(fetched, p => Assert.Equal(1, store.NarRequestsFor(p)));
        Assert.Equal(fetched.Sum(store.FileSizeOf), store.Server.BodyBytesSent - store.MetadataBytes);

        // What Nix wrote through the overlay is in the lower directory once the mount is gone, and intact.
        store.Unmount();
        Assert.Equal("large\n", File.ReadAllText(store.Physical(output, "readme")));
        Assert.Equal(cache.Top + "\n", File.ReadAllText(store.Physical(output, "top")));
        store.Nix("nix", "store", "verify", "--store", store.Root, "--no-trust", output, added).EnsureSuccess("nix store verify after unmounting");
    }

    [RealNixFuseFact]
    public void Nix_collects_unreferenced_lazy_paths_and_their_blobs_and_keeps_rooted_ones()
    {
        using var store = new LazyNixStore(cache);
        store.RegisterClosure(cache.Top);
        var kept = cache.Docs[0];
        var lowerPath = store.Nix("nix-store", "--store", store.Root, "--add", NixClosureCache.BusyboxBinary).EnsureSuccess("nix-store --add").StdoutText.Trim();
        store.AddGcRoot("kept", kept);
        store.AddGcRoot("lower", lowerPath);
        // Fetch two NARs so there are blobs to free and to keep.
        Assert.Equal("large\n", File.ReadAllText(store.Physical(cache.Large, "README")));
        Assert.NotEmpty(File.ReadAllText(store.Physical(kept, "copyright")));
        var largeBlob = store.BlobOf(cache.Large);
        var keptBlob = store.BlobOf(kept);
        Assert.True(File.Exists(largeBlob) && File.Exists(keptBlob));

        store.Nix("nix-collect-garbage", "--store", store.Root).EnsureSuccess("nix-collect-garbage");

        foreach (var path in cache.Closure.Where(p => p != kept))
        {
            Assert.False(Path.Exists(store.Physical(path)), $"{path} was collected");
            Assert.NotEqual(0, store.Nix("nix-store", "--store", store.Root, "--check-validity", path).ExitCode);
        }
        Assert.False(File.Exists(largeBlob));
        Assert.True(File.Exists(keptBlob));
        Assert.NotEmpty(File.ReadAllText(store.Physical(kept, "copyright")));
        store.Nix("nix", "store", "verify", "--store", store.Root, "--no-trust", kept, lowerPath).EnsureSuccess("nix store verify of what is kept");

        var stats = CliProcess.Run(["stats", "--state-dir", store.StateDirectory]);
        Assert.True(stats.ExitCode == 0, stats.Stderr);
        Assert.Contains("store paths known:          1 (1 registered)", stats.StdoutText, StringComparison.Ordinal);
        Assert.Contains("NARs stored:                1", stats.StdoutText, StringComparison.Ordinal);

        // The lower store lost nothing it should keep: the rooted path Nix added is there after unmount.
        store.Unmount();
        Assert.True(File.Exists(store.Physical(lowerPath)));
        Assert.False(Path.Exists(store.Physical(kept)));
    }
}

/// <summary>A fresh chroot store with a LazyStore mount over its store directory and the closure cache served on loopback.</summary>
internal sealed class LazyNixStore : IDisposable
{
    private readonly TempDir _dir = new("lazystore-nix-e2e-");
    private readonly NixClosureCache _cache;
    private readonly LazyStoreEngine _engine;
    private StoreMount? _mount;

    public LazyNixStore(NixClosureCache cache)
    {
        RealNix.Require();
        _cache = cache;
        Directory.CreateDirectory(StoreDirectory);
        Server = new BinaryCacheServer(cache.CacheDir);
        _engine = LazyStoreEngine.Open(new LazyStoreOptions
        {
            StateDirectory = StateDirectory,
            Substituters = new SubstituterSettings { Substituters = [Server.BaseUri], TrustedPublicKeys = [cache.TrustedKey] },
            Transport = StoreHarness.FastTransport,
        });
        // Nix builds as its build users (nixbld), who must reach the store through the mount.
        _mount = StoreMount.Mount(_engine, StoreDirectory, new StoreMountOptions { Log = TextWriter.Null, AllowOther = true });
    }

    public string Root => _dir.Sub("root");

    public string StoreDirectory => Path.Combine(Root, "nix", "store");

    public string StateDirectory => _dir.Sub("state");

    public BinaryCacheServer Server { get; }

    public StoreMount Mount => _mount ?? throw new InvalidOperationException("unmounted");

    public long AdvertisedNarSize { get; private set; }

    /// <summary>Bytes the server sent that were not NAR files (narinfos, listings, nix-cache-info).</summary>
    public long MetadataBytes => Server.Requests.Where(r => !r.Path.StartsWith("nar/", StringComparison.Ordinal)).Sum(r => r.BodyBytesSent);

    public int NarRequests => Server.CountRequests(p => p.StartsWith("nar/", StringComparison.Ordinal));

    public int NarRequestsFor(string path) => Server.CountRequests(p => p == NarInfoOf(path).Url);

    public long FileSizeOf(string path) => (long)(NarInfoOf(path).FileSize ?? throw new InvalidOperationException("no FileSize"));

    public NarInfo NarInfoOf(string path)
    {
        var file = Path.Combine(_cache.CacheDir, NixClosureCache.ToStorePath(path).HashPart + ".narinfo");
        return NarInfo.Parse(File.ReadAllText(file), source: file);
    }

    public string BlobOf(string path) => _engine.Catalog.State.BlobPath(NarFetcher.BlobKey(NarInfoOf(path).NarHash));

    /// <summary>Where a store path (given as /nix/store/…) is on disk in this store, through the mount while it is mounted.</summary>
    public string Physical(string path, string relative = "") =>
        Path.Combine(StoreDirectory, Path.GetFileName(path), relative);

    public string Write(string name, string text)
    {
        File.WriteAllText(_dir.Sub(name), text);
        return _dir.Sub(name);
    }

    /// <summary><c>lazystore register --store-root ROOT --closure PATH</c>, checked.</summary>
    public void RegisterClosure(string path)
    {
        var result = CliProcess.Run(["register", "--store-root", Root, "--closure", path,
            "--substituter", Server.BaseUri.ToString(), "--trusted-public-key", _cache.TrustedKey.ToString(), "--state-dir", StateDirectory]);
        Assert.True(result.ExitCode == 0, result.Stderr);
        var lines = result.StdoutText.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(_cache.Closure, lines.Select(l => l.Split('\t')[0]).Order(StringComparer.Ordinal));
        AdvertisedNarSize = lines.Sum(l => long.Parse(l.Split('\t')[1], System.Globalization.CultureInfo.InvariantCulture));
        Assert.Contains("; 0 NAR bytes downloaded", result.Stderr, StringComparison.Ordinal);
    }

    public ProcessResult Nix(string tool, params string[] args) => RealNix.Run(tool, args);

    /// <summary>A GC root of this store: a symlink in ROOT/nix/var/nix/gcroots to the store path.</summary>
    public void AddGcRoot(string name, string path)
    {
        var roots = Path.Combine(Root, "nix", "var", "nix", "gcroots");
        Directory.CreateDirectory(roots);
        File.CreateSymbolicLink(Path.Combine(roots, name), path);
    }

    public void Unmount()
    {
        if (_mount is null)
            return;
        _mount.Unmount();
        _mount.Completion.Wait(TimeSpan.FromSeconds(30));
        _mount.Dispose();
        _mount = null;
    }

    public void Dispose()
    {
        try
        {
            _mount?.Dispose();
        }
        finally
        {
            if (LazyStore.Fuse.MountTable.At(StoreDirectory) is not null)
                LazyStore.Fuse.Interop.Libc.umount2(StoreDirectory, LazyStore.Fuse.Interop.Libc.MntDetach);
            _engine.Dispose();
            Server.Dispose();
            _dir.Dispose();
        }
    }
}
