using LazyStore.Nix;
using LazyStore.Nix.Signatures;
using LazyStore.Store;
using LazyStore.Store.Catalog;
using LazyStore.Store.Configuration;
using LazyStore.Store.Mount;
using LazyStore.Tests.Support;

namespace LazyStore.Tests.Integration;

/// <summary>
/// Derivations built by the real Nix in one chroot store, their outputs copied to a cache by <c>nix copy</c>;
/// the tests instantiate the same derivations in a fresh store and realise them lazily there.
/// </summary>
public sealed class RealiseFixture : IDisposable
{
    private readonly TempDir _dir = new("lazystore-realise-");

    public RealiseFixture()
    {
        RealNix.Require();
        var busybox = ExternalTool.Find("busybox") ?? throw new InvalidOperationException("busybox not found on PATH (Debian: busybox-static)");
        // The builder is busybox run under its own name, so that it takes its first argument as the applet.
        Directory.CreateDirectory(_dir.Sub("busybox"));
        File.Copy(busybox, _dir.Sub("busybox/busybox"));
        Expression = _dir.Sub("drvs.nix");
        File.WriteAllText(Expression, """
            let
              busybox = builtins.path { path = ./busybox; name = "busybox"; };
              build = name: script: derivation {
                inherit name;
                system = builtins.currentSystem;
                builder = "${busybox}/busybox";
                args = [ "sh" "-c" script ];
              };
            in rec {
              # A directory: Nix 2.8 bind-mounts directory inputs into the build's chroot (a file it hard-links).
              greeting = build "greeting" "mkdir $out; echo hello > $out/greeting";
              # Refers to greeting: its closure holds both.
              user = build "user" "echo ${greeting} > $out";
              # Reads greeting while it builds, but does not refer to it.
              reader = build "reader" "cat ${greeting}/greeting > $out; echo read >> $out";
            }
            """);
        RealNix.Run("nix-store", "--generate-binary-cache-key", "realise-1", _dir.Sub("sk"), _dir.Sub("pk")).EnsureSuccess("generate key");
        TrustedKey = File.ReadAllText(_dir.Sub("pk")).Trim();
        var built = _dir.Sub("built");
        GreetingOut = Build(built, "greeting");
        UserOut = Build(built, "user");
        Cache = _dir.Sub("cache");
        RealNix.Run("nix", "copy", "--store", built, "--to", $"file://{Cache}?compression=xz&write-nar-listing=true&secret-key={_dir.Sub("sk")}", UserOut)
            .EnsureSuccess("nix copy");
        // The same cache without greeting: user's closure cannot be completed from it.
        CacheWithoutGreeting = _dir.Sub("cache-without-greeting");
        ExternalTool.Run("cp", ["-a", Cache, CacheWithoutGreeting]).EnsureSuccess("cp -a");
        File.Delete(Path.Combine(CacheWithoutGreeting, StorePath.FromBaseName(Path.GetFileName(GreetingOut)).HashPart + ".narinfo"));
    }

    public string Expression { get; }

    public string TrustedKey { get; }

    public string Cache { get; }

    public string CacheWithoutGreeting { get; }

    public string GreetingOut { get; }

    public string UserOut { get; }

    public NarInfo CachedInfo(string fullPath) =>
        NarInfo.Parse(File.ReadAllText(Path.Combine(Cache, StorePath.FromBaseName(Path.GetFileName(fullPath)).HashPart + ".narinfo")));

    private string Build(string root, string attribute) =>
        RealNix.Run("nix-build", "--store", root, "--no-out-link", Expression, "-A", attribute).EnsureSuccess("nix-build -A " + attribute).StdoutText.Trim();

    public void Dispose() => _dir.Dispose();
}

/// <summary><c>lazystore realise</c> with real Nix on a chroot store covered by a LazyStore mount.</summary>
public sealed class RealiseTests(RealiseFixture fixture) : IClassFixture<RealiseFixture>, IDisposable
{
    private readonly TempDir _dir = new("lazystore-realise-store-");

    private string Root => _dir.Sub("root");

    private string Store => Path.Combine(Root, "nix", "store");

    private string State => _dir.Sub("state");

    private string[] Common(string cache) =>
        ["--store-root", Root, "--substituter", "file://" + cache, "--trusted-public-key", fixture.TrustedKey, "--state-dir", State];

    private LazyStoreEngine Engine() => LazyStoreEngine.Open(new LazyStoreOptions
    {
        StateDirectory = State,
        Substituters = new SubstituterSettings { Substituters = [new Uri("file://" + fixture.Cache)], TrustedPublicKeys = [PublicKey.Parse(fixture.TrustedKey)] },
    });

    private StoreMount Mount(LazyStoreEngine engine)
    {
        Directory.CreateDirectory(Store);
        // Nix builds as a build user (nixbld*), who must be let into the mount.
        return StoreMount.Mount(engine, Store, new StoreMountOptions { Log = TextWriter.Null, AllowOther = true });
    }

    private string Instantiate(string attribute) =>
        RealNix.Run("nix-instantiate", "--store", Root, fixture.Expression, "-A", attribute).EnsureSuccess("nix-instantiate -A " + attribute).StdoutText.Trim();

    private string Line(string fullPath) => $"{fullPath}\t{fixture.CachedInfo(fullPath).NarSize}";

    [RealNixFuseFact]
    public void ACachedOutputBecomesValidWithoutItsNarAndNixHasNothingToDo()
    {
        using var engine = Engine();
        using var mount = Mount(engine);
        var drv = Instantiate("greeting");

        var result = CliProcess.Run(["realise", drv, .. Common(fixture.Cache)]);
        Assert.True(result.ExitCode == 0, result.Stderr);
        Assert.Equal(Line(fixture.GreetingOut) + "\n", result.StdoutText);
        Assert.Equal(
            $"realised 1 derivations/paths: registered 1 paths (1 new), {fixture.CachedInfo(fixture.GreetingOut).NarSize} bytes of NAR advertised; 0 NAR bytes downloaded\n",
            result.Stderr);

        // The CI no-op: nix-build of the derivation finds its output valid and neither builds nor downloads.
        var realised = RealNix.Run("nix-build", "--store", Root, "--no-out-link", drv).EnsureSuccess("nix-build");
        Assert.Equal(fixture.GreetingOut, realised.StdoutText.Trim());
        Assert.DoesNotContain("building", realised.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("copying", realised.Stderr, StringComparison.Ordinal);
        Assert.Equal(0, mount.Statistics.NarsFetched);

        // The first read fetches and verifies the one NAR; Nix's own check of the path agrees.
        Assert.Equal("hello\n", File.ReadAllText(Path.Combine(Store, Path.GetFileName(fixture.GreetingOut), "greeting")));
        Assert.Equal(1, mount.Statistics.NarsFetched);
        RealNix.Run("nix", "store", "verify", "--no-trust", "--store", Root, fixture.GreetingOut).EnsureSuccess("nix store verify");

        var again = CliProcess.Run(["realise", drv, .. Common(fixture.Cache)]);
        Assert.True(again.ExitCode == 0, again.Stderr);
        Assert.Equal("", again.StdoutText);
        Assert.Contains("realised 1 derivations/paths: registered 0 paths (0 new), 0 bytes of NAR advertised", again.Stderr, StringComparison.Ordinal);
    }

    [RealNixFuseFact]
    public void AnOutputNoCacheHasIsBuiltByNixFromLazilyRegisteredInputs()
    {
        using var engine = Engine();
        using var mount = Mount(engine);
        var drv = Instantiate("reader");
        var readerOut = RealNix.Run("nix-store", "--store", Root, "-q", "--outputs", drv).EnsureSuccess("nix-store -q --outputs").StdoutText.Trim();

        var result = CliProcess.Run(["realise", drv, .. Common(fixture.Cache)]);
        Assert.True(result.ExitCode == 0, result.Stderr);
        Assert.Equal(Line(fixture.GreetingOut) + "\n", result.StdoutText);
        Assert.Contains($"to build by Nix: {drv}!out {readerOut}: no cache has it (file://{fixture.Cache}: not found)\n", result.Stderr, StringComparison.Ordinal);
        Assert.Contains("realised 1 derivations/paths: registered 1 paths (1 new)", result.Stderr, StringComparison.Ordinal);
        Assert.Contains("; 0 NAR bytes downloaded", result.Stderr, StringComparison.Ordinal);
        Assert.Equal(0, RealNix.Run("nix-store", "--store", Root, "--check-validity", fixture.GreetingOut).ExitCode);
        Assert.Equal(0, mount.Statistics.NarsFetched);

        // The builder reads greeting through the mount, which fetches its NAR; nothing else is fetched.
        var built = RealNix.Run("nix-store", "--store", Root, "-r", drv).EnsureSuccess("nix-store -r");
        Assert.Equal(readerOut, built.StdoutText.Trim());
        Assert.Contains($"building '{drv}'", built.Stderr, StringComparison.Ordinal);
        Assert.Equal(1, mount.Statistics.NarsFetched);
        Assert.Equal("hello\nread\n", File.ReadAllText(Path.Combine(Store, Path.GetFileName(readerOut))));
        RealNix.Run("nix", "store", "verify", "--no-trust", "--store", Root, readerOut).EnsureSuccess("nix store verify");
    }

    [RealNixFuseFact]
    public void ANeededPathNoCacheHasRegistersNothing()
    {
        using var engine = Engine();
        using var mount = Mount(engine);
        var drv = Instantiate("user");
        var validBefore = ValidPaths();

        var result = CliProcess.Run(["realise", drv, .. Common(fixture.CacheWithoutGreeting)]);
        Assert.Equal(1, result.ExitCode);
        Assert.Equal("", result.StdoutText);
        Assert.Contains(
            $"error: realise: nothing registered: {fixture.GreetingOut} is not available from any substituter (file://{fixture.CacheWithoutGreeting}: not found)",
            result.Stderr, StringComparison.Ordinal);
        Assert.Empty(new StoreCatalog(StateDirectory.Open(State)).ListRegisteredRoots());
        Assert.Equal(validBefore, ValidPaths());
        Assert.NotEqual(0, RealNix.Run("nix-store", "--store", Root, "--check-validity", fixture.UserOut).ExitCode);
    }

    [RealNixFuseFact]
    public void AStorePathIsRealisedWithItsClosure()
    {
        using var engine = Engine();
        using var mount = Mount(engine);
        var result = CliProcess.Run(["realise", fixture.UserOut, .. Common(fixture.Cache)]);
        Assert.True(result.ExitCode == 0, result.Stderr);
        Assert.Equal(
            new[] { Line(fixture.GreetingOut), Line(fixture.UserOut) }.Order(StringComparer.Ordinal),
            result.StdoutText.Split('\n', StringSplitOptions.RemoveEmptyEntries).Order(StringComparer.Ordinal));
        Assert.Contains("realised 1 derivations/paths: registered 2 paths (2 new)", result.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("to build", result.Stderr, StringComparison.Ordinal);

        var references = RealNix.Run("nix-store", "--store", Root, "-q", "--references", fixture.UserOut).EnsureSuccess("nix-store -q --references");
        Assert.Equal(fixture.GreetingOut, references.StdoutText.Trim());
        Assert.Equal(0, mount.Statistics.NarsFetched);
        RealNix.Run("nix", "store", "verify", "--no-trust", "--store", Root, "--all").EnsureSuccess("nix store verify --all");
        Assert.Equal(2, mount.Statistics.NarsFetched);
    }

    private string[] ValidPaths() =>
        RealNix.Run("nix", "path-info", "--store", Root, "--all").EnsureSuccess("nix path-info --all").StdoutText
            .Split('\n', StringSplitOptions.RemoveEmptyEntries).Order(StringComparer.Ordinal).ToArray();

    public void Dispose() => _dir.Dispose();
}
