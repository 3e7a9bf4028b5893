using LazyStore.Nix;
using LazyStore.Nix.Compression;
using LazyStore.Nix.Signatures;
using LazyStore.Store;
using LazyStore.Store.Catalog;
using LazyStore.Store.Configuration;
using LazyStore.Store.Mount;
using LazyStore.Store.Substituters;
using LazyStore.Tests.Support;

namespace LazyStore.Tests.Integration;

/// <summary><c>lazystore register</c> with real Nix on a chroot store covered by a LazyStore mount.</summary>
public sealed class RegisterTests : IDisposable
{
    private readonly TempDir _dir = new("lazystore-register-");
    private readonly SecretKey _key = SecretKey.Generate("register-1");
    private readonly NarInfo _leaf;
    private readonly NarInfo _top;

    public RegisterTests()
    {
        var writer = new BinaryCacheWriter(_dir.Sub("cache"), CompressionMethod.Xz, _key);
        FixtureTrees.WriteEdgeCases(_dir.Sub("src/leaf"));
        _leaf = writer.AddTree(_dir.Sub("src/leaf"), "leaf");
        Directory.CreateDirectory(_dir.Sub("src/top"));
        File.WriteAllText(_dir.Sub("src/top/refs"), _leaf.StorePath.ToFullPath() + "\n");
        _top = writer.AddTree(_dir.Sub("src/top"), "top", [_leaf.StorePath]);
    }

    private string[] Common(string state) =>
        ["--substituter", "file://" + _dir.Sub("cache"), "--trusted-public-key", _key.PublicKey.ToString(), "--state-dir", state];

    private LazyStoreEngine Engine(string state) => LazyStoreEngine.Open(new LazyStoreOptions
    {
        StateDirectory = state,
        Substituters = new SubstituterSettings { Substituters = [new Uri("file://" + _dir.Sub("cache"))], TrustedPublicKeys = [_key.PublicKey] },
    });

    [RealNixFuseFact]
    public void RegistersAClosureThatNixThenVerifiesThroughTheMount()
    {
        var root = _dir.Sub("root");
        var store = Path.Combine(root, "nix", "store");
        Directory.CreateDirectory(store);
        var state = _dir.Sub("state");
        using var engine = Engine(state);
        using var mount = StoreMount.Mount(engine, store, new StoreMountOptions { Log = TextWriter.Null });

        var result = CliProcess.Run(["register", "--store-root", root, "--closure", _top.StorePath.ToFullPath(), .. Common(state)]);
        Assert.True(result.ExitCode == 0, result.Stderr);
        Assert.Equal(
            new[] { $"{_leaf.StorePath.ToFullPath()}\t{_leaf.NarSize}", $"{_top.StorePath.ToFullPath()}\t{_top.NarSize}" }.Order(StringComparer.Ordinal),
            result.StdoutText.Split('\n', StringSplitOptions.RemoveEmptyEntries).Order(StringComparer.Ordinal));
        Assert.Contains($"registered 2 paths (2 new), {_leaf.NarSize + _top.NarSize} bytes of NAR advertised; 0 NAR bytes downloaded", result.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("warning", result.Stderr, StringComparison.Ordinal);
        Assert.Equal(0, mount.Statistics.NarsFetched);

        var references = RealNix.Run("nix-store", "--store", root, "-q", "--references", _top.StorePath.ToFullPath()).EnsureSuccess("nix-store -q --references");
        Assert.Equal(_leaf.StorePath.ToFullPath(), references.StdoutText.Trim());
        Assert.Equal(0, mount.Statistics.NarsFetched);
        // Nix reads every file of both paths through the mount and checks their NarHash.
        RealNix.Run("nix", "store", "verify", "--no-trust", "--store", root, "--all").EnsureSuccess("nix store verify --all");
        Assert.Equal(2, mount.Statistics.NarsFetched);

        var again = CliProcess.Run(["register", "--store-root", root, "--closure", _top.StorePath.ToFullPath(), .. Common(state)]);
        Assert.True(again.ExitCode == 0, again.Stderr);
        Assert.Contains("registered 2 paths (0 new)", again.Stderr, StringComparison.Ordinal);
    }

    [RealNixFuseFact]
    public void APathNoCacheHasRegistersNothing()
    {
        var root = _dir.Sub("root");
        Directory.CreateDirectory(Path.Combine(root, "nix", "store"));
        var state = _dir.Sub("state");
        var missing = "/nix/store/" + new string('0', 32) + "-missing";
        var result = CliProcess.Run(["register", "--store-root", root, _top.StorePath.ToFullPath(), missing, .. Common(state)]);
        Assert.Equal(1, result.ExitCode);
        Assert.Contains("register: nothing registered: " + missing + " is not available from any substituter", result.Stderr, StringComparison.Ordinal);
        Assert.Empty(new StoreCatalog(StateDirectory.Open(state)).ListRegisteredRoots());
        Assert.NotEqual(0, RealNix.Run("nix-store", "--store", root, "--check-validity", _top.StorePath.ToFullPath()).ExitCode);
    }

    [RealNixFuseFact]
    public void WithoutAMountNixIsNotToldAndTheRegistrationIsTakenBack()
    {
        var root = _dir.Sub("root");
        Directory.CreateDirectory(Path.Combine(root, "nix", "store"));
        var state = _dir.Sub("state");
        var result = CliProcess.Run(["register", "--store-root", root, _leaf.StorePath.ToFullPath(), .. Common(state)]);
        Assert.Equal(1, result.ExitCode);
        Assert.Contains($"warning: no LazyStore mount serves {Path.Combine(root, "nix", "store")}", result.Stderr, StringComparison.Ordinal);
        Assert.Contains($"{_leaf.StorePath.BaseName} does not exist in", result.Stderr, StringComparison.Ordinal);
        Assert.Empty(new StoreCatalog(StateDirectory.Open(state)).ListRegisteredRoots());
        Assert.NotEqual(0, RealNix.Run("nix-store", "--store", root, "--check-validity", _leaf.StorePath.ToFullPath()).ExitCode);
    }

    public void Dispose() => _dir.Dispose();
}
