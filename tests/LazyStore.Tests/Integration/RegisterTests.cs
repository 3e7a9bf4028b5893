using LazyStore.Nix;
using LazyStore.Nix.Compression;
using LazyStore.Nix.Signatures;
using LazyStore.Store;
using LazyStore.Store.Catalog;
using LazyStore.Store.Configuration;
using LazyStore.Store.Mount;
using LazyStore.Store.Serving;
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

    private LazyStoreEngine Engine(string state, Uri? cache = null) => LazyStoreEngine.Open(new LazyStoreOptions
    {
        StateDirectory = state,
        Substituters = new SubstituterSettings { Substituters = [cache ?? new Uri("file://" + _dir.Sub("cache"))], TrustedPublicKeys = [_key.PublicKey] },
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

    [RealNixFuseFact]
    public void SignaturesReachNixFromTheVerifiedNarinfosWithoutAskingTheCacheAgain()
    {
        var root = _dir.Sub("root");
        var store = Path.Combine(root, "nix", "store");
        Directory.CreateDirectory(store);
        var state = _dir.Sub("state");
        var temporary = Directory.CreateDirectory(_dir.Sub("tmp")).FullName;
        using var server = new BinaryCacheServer(_dir.Sub("cache"));
        using var engine = Engine(state, server.BaseUri);
        using var mount = StoreMount.Mount(engine, store, new StoreMountOptions { Log = TextWriter.Null });

        var result = CliProcess.Run(
            ["register", "--store-root", root, "--closure", _top.StorePath.ToFullPath(), "--substituter", server.BaseUri.ToString(),
                "--trusted-public-key", _key.PublicKey.ToString(), "--state-dir", state],
            new Dictionary<string, string?> { ["TMPDIR"] = temporary });
        Assert.True(result.ExitCode == 0, result.Stderr);
        Assert.DoesNotContain("warning", result.Stderr, StringComparison.Ordinal);

        // LazyStore looked each narinfo up once; Nix (User-Agent "… Nix/…") asked the cache for nothing.
        var narinfos = server.Requests.Where(r => r.Path.EndsWith(".narinfo", StringComparison.Ordinal)).ToList();
        Assert.Equal(new[] { _leaf.StorePath.HashPart + ".narinfo", _top.StorePath.HashPart + ".narinfo" }.Order(StringComparer.Ordinal), narinfos.Select(r => r.Path).Order(StringComparer.Ordinal));
        Assert.DoesNotContain(server.Requests, r => r.Headers.TryGetValue("User-Agent", out var agent) && agent.Contains("Nix/", StringComparison.Ordinal));
        Assert.Empty(Directory.EnumerateFileSystemEntries(temporary, "lazystore-narinfos-*"));

        var signatures = RealNix.Run("nix", "path-info", "--store", root, "--sigs", _top.StorePath.ToFullPath(), _leaf.StorePath.ToFullPath())
            .EnsureSuccess("nix path-info --sigs");
        var signed = SignaturesByPath(signatures.StdoutText);
        Assert.Equal(2, signed.Count);
        foreach (var info in new[] { _top, _leaf })
            Assert.Equal(info.Signatures, signed[info.StorePath.ToFullPath()]);
        // Nix checks the copied signatures against the one key it trusts; no --no-trust.
        RealNix.Run("nix", "store", "verify", "--store", root, "--no-contents", "-r", _top.StorePath.ToFullPath(),
            "--option", "trusted-public-keys", _key.PublicKey.ToString()).EnsureSuccess("nix store verify with the cache's key trusted");
        Assert.NotEqual(0, RealNix.Run("nix", "store", "verify", "--store", root, "--no-contents", "-r", _top.StorePath.ToFullPath(),
            "--option", "trusted-public-keys", SecretKey.Generate("register-other-1").PublicKey.ToString()).ExitCode);
    }

    [RealNixFuseFact]
    public void AClosureOfMoreThanFiveHundredPathsGetsItsSignaturesInOneNixCall()
    {
        const int leaves = 600;
        var writer = new BinaryCacheWriter(_dir.Sub("large-cache"), CompressionMethod.None, _key);
        var paths = new List<StorePath>();
        for (var i = 0; i < leaves; i++)
        {
            var tree = _dir.Sub($"large/leaf-{i}");
            Directory.CreateDirectory(tree);
            File.WriteAllText(Path.Combine(tree, "n"), i.ToString(System.Globalization.CultureInfo.InvariantCulture));
            paths.Add(writer.AddTree(tree, $"leaf-{i}").StorePath);
        }
        Directory.CreateDirectory(_dir.Sub("large/top"));
        File.WriteAllText(_dir.Sub("large/top/refs"), string.Join('\n', paths.Select(p => p.ToFullPath())));
        var top = writer.AddTree(_dir.Sub("large/top"), "top", paths).StorePath;
        paths.Add(top);

        var root = _dir.Sub("root");
        var store = Path.Combine(root, "nix", "store");
        Directory.CreateDirectory(store);
        var state = _dir.Sub("state");
        var cache = new Uri("file://" + _dir.Sub("large-cache"));
        using var engine = Engine(state, cache);
        using var mount = StoreMount.Mount(engine, store, new StoreMountOptions { Log = TextWriter.Null });
        var calls = _dir.Sub("nix-calls");
        var wrappers = NixWrapper($"printf '%s\\n' \"$*\" >> '{calls}'");

        var result = CliProcess.Run(
            ["register", "--store-root", root, "--closure", top.ToFullPath(), "--substituter", cache.ToString(),
                "--trusted-public-key", _key.PublicKey.ToString(), "--state-dir", state],
            new Dictionary<string, string?> { ["PATH"] = wrappers + ":" + Environment.GetEnvironmentVariable("PATH") });
        Assert.True(result.ExitCode == 0, result.Stderr);
        Assert.DoesNotContain("warning", result.Stderr, StringComparison.Ordinal);

        var copySigs = Assert.Single(File.ReadAllLines(calls), l => l.Contains(" store copy-sigs ", StringComparison.Ordinal));
        Assert.Equal(paths.Select(p => p.ToFullPath()).Order(StringComparer.Ordinal),
            copySigs.Split(' ').Where(a => a.StartsWith(StoreDirectory.Default.Path + "/", StringComparison.Ordinal)).Order(StringComparer.Ordinal));
        var signed = SignaturesByPath(RealNix.Run("nix", "path-info", "--store", root, "--sigs", "-r", top.ToFullPath()).EnsureSuccess("nix path-info --sigs -r").StdoutText);
        Assert.Equal(paths.Select(p => p.ToFullPath()).Order(StringComparer.Ordinal), signed.Keys.Order(StringComparer.Ordinal));
        Assert.All(signed.Values, signatures => Assert.StartsWith(_key.Name + ":", Assert.Single(signatures), StringComparison.Ordinal));
    }

    [RealNixFuseFact]
    public void TheTemporaryNarinfoCacheIsRemovedWhenCopySigsFails()
    {
        var root = _dir.Sub("root");
        var store = Path.Combine(root, "nix", "store");
        Directory.CreateDirectory(store);
        var state = _dir.Sub("state");
        var temporary = Directory.CreateDirectory(_dir.Sub("tmp")).FullName;
        using var engine = Engine(state);
        using var mount = StoreMount.Mount(engine, store, new StoreMountOptions { Log = TextWriter.Null });
        var seen = _dir.Sub("seen");
        // copy-sigs fails after noting which cache it was given and what that held.
        var wrappers = NixWrapper($$"""
            case " $* " in *" store copy-sigs "*)
                previous=
                for argument in "$@"; do
                    if [ "$previous" = --substituter ]; then echo "${argument#file://}" >> '{{seen}}'; ls "${argument#file://}" >> '{{seen}}'; fi
                    previous=$argument
                done
                echo "error: refused by the test" >&2
                exit 1;;
            esac
            """);

        var result = CliProcess.Run(["register", "--store-root", root, "--closure", _top.StorePath.ToFullPath(), .. Common(state)],
            new Dictionary<string, string?> { ["PATH"] = wrappers + ":" + Environment.GetEnvironmentVariable("PATH"), ["TMPDIR"] = temporary });
        Assert.True(result.ExitCode == 0, result.Stderr);
        Assert.Contains(
            $"warning: the caches' signatures are not in Nix's database, so `nix store verify` will call the paths untrusted: nix --store {root} store copy-sigs failed (exit 1): error: refused by the test",
            result.Stderr, StringComparison.Ordinal);
        Assert.Equal(0, RealNix.Run("nix-store", "--store", root, "--check-validity", _top.StorePath.ToFullPath(), _leaf.StorePath.ToFullPath()).ExitCode);

        var lines = File.ReadAllLines(seen);
        var given = lines[0];
        Assert.Equal(temporary, Path.GetDirectoryName(given));
        Assert.StartsWith("lazystore-narinfos-", Path.GetFileName(given), StringComparison.Ordinal);
        Assert.Equal(new[] { "nix-cache-info", _top.StorePath.HashPart + ".narinfo", _leaf.StorePath.HashPart + ".narinfo" }.Order(StringComparer.Ordinal),
            lines.Skip(1).Order(StringComparer.Ordinal));
        Assert.False(Directory.Exists(given));
        Assert.Empty(Directory.EnumerateFileSystemEntries(temporary, "lazystore-narinfos-*"));
    }

    /// <summary>What <c>nix path-info --sigs</c> printed: each path (padded to a column) and its signatures, separated by blanks.</summary>
    private static Dictionary<string, IReadOnlyList<string>> SignaturesByPath(string printed) =>
        printed.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(line => line.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries))
            .ToDictionary(words => words[0], words => (IReadOnlyList<string>)words[1..].Order(StringComparer.Ordinal).ToList(), StringComparer.Ordinal);

    /// <summary>
    /// A directory for the front of PATH with a <c>nix</c> that runs <paramref name="script"/> (sh) and then the
    /// real nix with the same arguments.
    /// </summary>
    private string NixWrapper(string script)
    {
        var directory = Directory.CreateDirectory(_dir.Sub("wrappers")).FullName;
        var nix = ExternalTool.Find("nix") ?? throw new InvalidOperationException("nix not found on PATH");
        var wrapper = Path.Combine(directory, "nix");
        File.WriteAllText(wrapper, $"#!/bin/sh\n{script}\nexec '{nix}' \"$@\"\n");
        File.SetUnixFileMode(wrapper, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return directory;
    }

    public void Dispose() => _dir.Dispose();
}
