using System.Security.Cryptography;
using LazyStore.Nix;
using LazyStore.Nix.Compression;
using LazyStore.Nix.Signatures;
using LazyStore.Store.Registration;
using LazyStore.Store.Substituters;
using LazyStore.Tests.Support;

namespace LazyStore.Tests.Store;

/// <summary>The realise plan over a cache written by <see cref="BinaryCacheWriter"/>, with derivation files written here and a stand-in for Nix's database.</summary>
public sealed class RealisationTests : IDisposable
{
    private readonly TempDir _dir = new("lazystore-realisation-");
    private readonly SecretKey _key = SecretKey.Generate("realisation-1");
    private readonly NarInfo _lib;
    private readonly NarInfo _app;
    private readonly NarInfo _source;
    private readonly StoreHarness _store;
    private readonly HashSet<StorePath> _valid = [];
    private readonly List<IReadOnlyCollection<StorePath>> _validityQueries = [];

    public RealisationTests()
    {
        var writer = new BinaryCacheWriter(_dir.Sub("cache"), CompressionMethod.None, _key);
        _lib = writer.AddTree(Tree("lib", "library\n"), "lib");
        _app = writer.AddTree(Tree("app", _lib.StorePath.ToFullPath() + "\n"), "app", [_lib.StorePath]);
        _source = writer.AddTree(Tree("source", "source\n"), "source");
        Directory.CreateDirectory(_dir.Sub("store"));
        _store = new StoreHarness([_dir.Sub("cache")], [_key.PublicKey]);
    }

    private string Tree(string name, string contents)
    {
        Directory.CreateDirectory(_dir.Sub("src/" + name));
        File.WriteAllText(_dir.Sub($"src/{name}/file"), contents);
        return _dir.Sub("src/" + name);
    }

    private Realisation Realisation() => new(_store.Engine.Substituters, _dir.Sub("store"), (paths, _) =>
    {
        lock (_validityQueries)
            _validityQueries.Add(paths.ToList());
        return Task.FromResult<IReadOnlySet<StorePath>>(paths.Where(_valid.Contains).ToHashSet());
    }, parallelism: 4);

    private static StorePath NewPath(string name) => StorePath.FromParts(RandomNumberGenerator.GetBytes(StorePath.DigestLength), name);

    /// <summary>Writes a derivation into the store directory; returns its path.</summary>
    private StorePath WriteDerivation(string name, IReadOnlyDictionary<string, StorePath?> outputs,
        IReadOnlyDictionary<StorePath, IReadOnlyList<string>>? inputDrvs = null, IReadOnlyList<StorePath>? inputSrcs = null)
    {
        var derivation = new Derivation
        {
            Outputs = outputs.ToDictionary(o => o.Key, o => new DerivationOutput(o.Value, o.Value is null ? "sha256" : "", null)),
            InputDrvs = inputDrvs ?? new Dictionary<StorePath, IReadOnlyList<string>>(),
            InputSrcs = inputSrcs ?? [],
            Platform = "x86_64-linux",
            Builder = "/bin/sh",
            Args = [],
            Env = new Dictionary<string, string> { ["name"] = name },
        };
        var path = NewPath(name + Derivation.Extension);
        File.WriteAllText(Path.Combine(_dir.Sub("store"), path.BaseName), derivation.Unparse(StoreDirectory.Default));
        return path;
    }

    private Task<RealisationPlan> PlanAsync(params StorePath[] targets) => Realisation().PlanAsync(targets, CancellationToken.None);

    [Fact]
    public async Task ACachedOutputIsWantedWithItsClosureAndItsInputsAreNotRead()
    {
        // The input derivation is not in the store: reading it would fail the plan.
        var app = WriteDerivation("app", new Dictionary<string, StorePath?> { ["out"] = _app.StorePath },
            new Dictionary<StorePath, IReadOnlyList<string>> { [NewPath("absent.drv")] = ["out"] }, [NewPath("absent-source")]);
        var plan = await PlanAsync(app);
        Assert.Equal(new[] { _app.StorePath, _lib.StorePath }.Order(), plan.Paths.Select(p => p.Path).Order());
        Assert.Empty(plan.ToBuild);
    }

    [Fact]
    public async Task AnOutputNoCacheHasWantsItsInputsAndIsLeftToBuild()
    {
        var app = WriteDerivation("app", new Dictionary<string, StorePath?> { ["out"] = _app.StorePath });
        var topOut = NewPath("top");
        var top = WriteDerivation("top", new Dictionary<string, StorePath?> { ["out"] = topOut },
            new Dictionary<StorePath, IReadOnlyList<string>> { [app] = ["out"] }, [_source.StorePath]);
        var plan = await PlanAsync(top);
        Assert.Equal(new[] { _app.StorePath, _lib.StorePath, _source.StorePath }.Order(), plan.Paths.Select(p => p.Path).Order());
        var build = Assert.Single(plan.ToBuild);
        Assert.Equal((top, "out", topOut), (build.Derivation, build.Output, build.Path));
        Assert.Equal($"no cache has it (file://{_dir.Sub("cache")}: not found)", build.Reason);
    }

    [Fact]
    public async Task ChainsOfUncachedOutputsAreFollowedToWhatTheCachesHave()
    {
        var app = WriteDerivation("app", new Dictionary<string, StorePath?> { ["out"] = _app.StorePath });
        var middle = WriteDerivation("middle", new Dictionary<string, StorePath?> { ["out"] = NewPath("middle"), ["dev"] = NewPath("middle-dev") },
            new Dictionary<StorePath, IReadOnlyList<string>> { [app] = ["out"] });
        var floating = WriteDerivation("floating", new Dictionary<string, StorePath?> { ["out"] = null },
            new Dictionary<StorePath, IReadOnlyList<string>> { [middle] = ["dev"] }, [_source.StorePath]);
        var plan = await PlanAsync(floating);
        Assert.Equal(new[] { _app.StorePath, _lib.StorePath, _source.StorePath }.Order(), plan.Paths.Select(p => p.Path).Order());
        Assert.Equal([(floating, "out"), (middle, "dev")], plan.ToBuild.Select(b => (b.Derivation, b.Output)));
        Assert.Null(plan.ToBuild[0].Path);
        Assert.Contains("known only once it is built", plan.ToBuild[0].Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ValidPathsAreNeitherLookedUpNorFollowed()
    {
        // Valid in Nix's database, in no cache: a lookup would fail the plan.
        var elsewhere = NewPath("elsewhere");
        _valid.Add(elsewhere);
        _valid.Add(_lib.StorePath);
        var done = WriteDerivation("done", new Dictionary<string, StorePath?> { ["out"] = elsewhere },
            new Dictionary<StorePath, IReadOnlyList<string>> { [NewPath("absent.drv")] = ["out"] });
        var app = WriteDerivation("app", new Dictionary<string, StorePath?> { ["out"] = _app.StorePath });
        var plan = await PlanAsync(done, app, elsewhere);
        Assert.Equal([_app.StorePath], plan.Paths.Select(p => p.Path));
        Assert.Empty(plan.ToBuild);
        // One question for the derivations' outputs, then one per batch the closure walk discovered (the roots, then the reference).
        Assert.Equal(3, _validityQueries.Count);
        Assert.Equal(new[] { elsewhere, _app.StorePath }.Order(), _validityQueries[0].Order());
        Assert.Equal([_lib.StorePath], _validityQueries[2]);
    }

    [Fact]
    public async Task APlainStorePathIsWantedWithItsClosure()
    {
        var plan = await PlanAsync(_app.StorePath);
        Assert.Equal(new[] { _app.StorePath, _lib.StorePath }.Order(), plan.Paths.Select(p => p.Path).Order());
        Assert.Empty(plan.ToBuild);
    }

    [Fact]
    public async Task EveryNeededPathThatIsNeitherValidNorCachedIsNamed()
    {
        var missingSource = NewPath("missing-source");
        var missingPlain = NewPath("missing-plain");
        var top = WriteDerivation("top", new Dictionary<string, StorePath?> { ["out"] = NewPath("top") }, inputSrcs: [missingSource, _source.StorePath]);
        var error = await Assert.ThrowsAsync<PathNotSubstitutableException>(() => PlanAsync(top, missingPlain));
        Assert.Contains(missingSource.ToFullPath(), error.Message, StringComparison.Ordinal);
        Assert.Contains(missingPlain.ToFullPath(), error.Message, StringComparison.Ordinal);
        Assert.Contains("is not available from any substituter", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ADerivationMissingFromTheStoreOrAMissingOutputIsAnError()
    {
        var absent = NewPath("absent.drv");
        var error = await Assert.ThrowsAsync<RealisationException>(() => PlanAsync(absent));
        Assert.Equal($"{absent.ToFullPath()} is not in the store ({Path.Combine(_dir.Sub("store"), absent.BaseName)} does not exist; instantiate it there first)", error.Message);

        var app = WriteDerivation("app", new Dictionary<string, StorePath?> { ["out"] = NewPath("app") });
        var top = WriteDerivation("top", new Dictionary<string, StorePath?> { ["out"] = NewPath("top") },
            new Dictionary<StorePath, IReadOnlyList<string>> { [app] = ["dev"] });
        error = await Assert.ThrowsAsync<RealisationException>(() => PlanAsync(top));
        Assert.Equal($"{app.ToFullPath()} has no output 'dev' (it has: out)", error.Message);
    }

    [Fact]
    public async Task AMalformedDerivationIsNamed()
    {
        var broken = NewPath("broken.drv");
        var file = Path.Combine(_dir.Sub("store"), broken.BaseName);
        File.WriteAllText(file, "Derive([(\"out\"");
        var error = await Assert.ThrowsAsync<DerivationFormatException>(() => PlanAsync(broken));
        Assert.StartsWith(file + " field outputs: at offset 14: expected ','", error.Message, StringComparison.Ordinal);
    }

    public void Dispose()
    {
        _store.Dispose();
        _key.Dispose();
        _dir.Dispose();
    }
}
