using System.Text.Json;
using LazyStore.Nix;
using LazyStore.Nix.Compression;
using LazyStore.Nix.Signatures;
using LazyStore.Store.Registration;
using LazyStore.Store.Substituters;
using LazyStore.Tests.Support;

namespace LazyStore.Tests.Store;

public sealed class NixValidityTests : IDisposable
{
    private readonly TempDir _dir = new("lazystore-validity-");
    private readonly NarInfo _leaf;
    private readonly NarInfo _middle;
    private readonly NarInfo _top;
    private readonly SecretKey _key = SecretKey.Generate("validity-1");

    public NixValidityTests()
    {
        var writer = new BinaryCacheWriter(_dir.Sub("cache"), CompressionMethod.None, _key);
        FixtureTrees.WriteEdgeCases(_dir.Sub("src/leaf"));
        _leaf = writer.AddTree(_dir.Sub("src/leaf"), "leaf");
        Directory.CreateDirectory(_dir.Sub("src/middle"));
        File.WriteAllText(_dir.Sub("src/middle/refs"), _leaf.StorePath.ToFullPath() + "\n");
        _middle = writer.AddTree(_dir.Sub("src/middle"), "middle", [_leaf.StorePath]);
        Directory.CreateDirectory(_dir.Sub("src/top"));
        File.WriteAllText(_dir.Sub("src/top/refs"), _middle.StorePath.ToFullPath() + " " + _leaf.StorePath.ToFullPath() + "\n");
        _top = writer.AddTree(_dir.Sub("src/top"), "top", [_middle.StorePath, _leaf.StorePath]);
    }

    [Fact]
    public void FormatPutsReferencesBeforeReferrersInNixsRegisterValidityLayout()
    {
        var text = NixValidity.Format([_top, _leaf, _middle], StoreDirectory.Default);
        var lines = text.Split('\n');
        Assert.Equal(_leaf.StorePath.ToFullPath(), lines[0]);
        Assert.Equal(_leaf.NarHash.ToString(), lines[1]);
        Assert.Equal(_leaf.NarSize.ToString(System.Globalization.CultureInfo.InvariantCulture), lines[2]);
        Assert.Equal("", lines[3]);
        Assert.Equal("0", lines[4]);
        Assert.Equal(_middle.StorePath.ToFullPath(), lines[5]);
        Assert.Equal(["1", _leaf.StorePath.ToFullPath()], lines[9..11]);
        Assert.Equal(_top.StorePath.ToFullPath(), lines[11]);
        Assert.Equal("2", lines[15]);
    }

    [Fact]
    public void OrderingSurvivesSelfReferencesAndCycles()
    {
        var self = Info(_leaf.StorePath, _leaf.StorePath);
        Assert.Equal([self.StorePath], NixValidity.ReferencesFirst([self]).Select(i => i.StorePath));
        var a = Info(_middle.StorePath, _top.StorePath);
        var b = Info(_top.StorePath, _middle.StorePath);
        Assert.Equal(2, NixValidity.ReferencesFirst([a, b]).Count);
        // A reference outside the set does not hold its referrer back.
        Assert.Equal([_top.StorePath], NixValidity.ReferencesFirst([Info(_top.StorePath, _leaf.StorePath)]).Select(i => i.StorePath));
    }

    [RealNixFact]
    public async Task RealNixAcceptsTheRegistrationAndVerifiesThePaths()
    {
        var root = _dir.Sub("root");
        var store = Path.Combine(root, "nix", "store");
        Directory.CreateDirectory(store);
        foreach (var (info, source) in new[] { (_leaf, "leaf"), (_middle, "middle"), (_top, "top") })
            ExternalTool.Run("cp", ["-a", _dir.Sub("src/" + source), Path.Combine(store, info.StorePath.BaseName)]).EnsureSuccess("cp -a");

        await NixValidity.RegisterAsync(root, [_top, _middle, _leaf], StoreDirectory.Default, CancellationToken.None);
        await NixValidity.RegisterAsync(root, [_top, _middle, _leaf], StoreDirectory.Default, CancellationToken.None);

        var references = RealNix.Run("nix-store", "--store", root, "-q", "--references", _top.StorePath.ToFullPath()).EnsureSuccess("nix-store -q --references");
        Assert.Equal(new[] { _leaf.StorePath.ToFullPath(), _middle.StorePath.ToFullPath() }.Order(), references.StdoutText.Split('\n', StringSplitOptions.RemoveEmptyEntries).Order());
        var json = RealNix.Run("nix", "path-info", "--json", "--store", root, _leaf.StorePath.ToFullPath()).EnsureSuccess("nix path-info");
        var reported = JsonDocument.Parse(json.StdoutText).RootElement[0];
        Assert.Equal((long)_leaf.NarSize, reported.GetProperty("narSize").GetInt64());
        Assert.Equal(_leaf.NarHash, NixHash.Parse(reported.GetProperty("narHash").GetString()!));
        // Nix hashes every file again: the registered NarHash is the tree's. (--no-trust: no signatures are registered.)
        RealNix.Run("nix", "store", "verify", "--no-trust", "--store", root, "--all").EnsureSuccess("nix store verify --all");
        File.AppendAllText(Path.Combine(store, _leaf.StorePath.BaseName, "plain.txt"), "changed");
        Assert.NotEqual(0, RealNix.Run("nix", "store", "verify", "--no-trust", "--store", root, _leaf.StorePath.ToFullPath()).ExitCode);
    }

    [RealNixFact]
    public async Task APathMissingFromTheStoreDirectoryIsRefusedAndNothingRegistered()
    {
        var root = _dir.Sub("root");
        Directory.CreateDirectory(Path.Combine(root, "nix", "store"));
        var error = await Assert.ThrowsAsync<NixRegistrationException>(() => NixValidity.RegisterAsync(root, [_leaf], StoreDirectory.Default, CancellationToken.None));
        Assert.Equal($"not registering: {_leaf.StorePath.BaseName} does not exist in {Path.Combine(root, "nix", "store")} (is a LazyStore mount serving it?)", error.Message);
        var valid = RealNix.Run("nix-store", "--store", root, "--check-validity", _leaf.StorePath.ToFullPath());
        Assert.NotEqual(0, valid.ExitCode);

        // One present, two missing: all are named, and none is registered.
        ExternalTool.Run("cp", ["-a", _dir.Sub("src/leaf"), Path.Combine(root, "nix", "store", _leaf.StorePath.BaseName)]).EnsureSuccess("cp -a");
        error = await Assert.ThrowsAsync<NixRegistrationException>(() => NixValidity.RegisterAsync(root, [_top, _leaf, _middle], StoreDirectory.Default, CancellationToken.None));
        var missing = new[] { _middle.StorePath.BaseName, _top.StorePath.BaseName }.Order(StringComparer.Ordinal);
        Assert.Equal($"not registering: {string.Join(", ", missing)} do not exist in {Path.Combine(root, "nix", "store")} (is a LazyStore mount serving it?)", error.Message);
        Assert.NotEqual(0, RealNix.Run("nix-store", "--store", root, "--check-validity", _leaf.StorePath.ToFullPath()).ExitCode);

        // A store directory that does not exist holds nothing.
        var bare = _dir.Sub("bare");
        error = await Assert.ThrowsAsync<NixRegistrationException>(() => NixValidity.RegisterAsync(bare, [_leaf], StoreDirectory.Default, CancellationToken.None));
        Assert.Equal($"not registering: {_leaf.StorePath.BaseName} does not exist in {Path.Combine(bare, "nix", "store")} (is a LazyStore mount serving it?)", error.Message);
    }

    [RealNixFact]
    public async Task SignaturesComeFromTheGivenNarinfosAloneAndNixChecksThemAgainstItsTrustedKeys()
    {
        var root = _dir.Sub("root");
        var store = Path.Combine(root, "nix", "store");
        Directory.CreateDirectory(store);
        foreach (var (info, source) in new[] { (_leaf, "leaf"), (_middle, "middle"), (_top, "top") })
            ExternalTool.Run("cp", ["-a", _dir.Sub("src/" + source), Path.Combine(store, info.StorePath.BaseName)]).EnsureSuccess("cp -a");
        await NixValidity.RegisterAsync(root, [_top, _middle, _leaf], StoreDirectory.Default, CancellationToken.None);
        // The cache the narinfos came from is gone: Nix has nothing else to read them from.
        Directory.Delete(_dir.Sub("cache"), recursive: true);

        await using (var narinfos = TemporaryNarInfoCache.Start([_top, _middle, _leaf], StoreDirectory.Default))
            await NixValidity.CopySignaturesAsync(root, narinfos, [_top, _middle, _leaf], StoreDirectory.Default, CancellationToken.None);

        var printed = RealNix.Run("nix", "path-info", "--store", root, "--sigs", "-r", _top.StorePath.ToFullPath()).EnsureSuccess("nix path-info --sigs");
        var signed = printed.StdoutText.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(line => line.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries)).ToDictionary(words => words[0], words => words[1..]);
        foreach (var info in new[] { _leaf, _middle, _top })
            Assert.Equal(info.Signatures, signed[info.StorePath.ToFullPath()]);
        RealNix.Run("nix", "store", "verify", "--store", root, "-r", _top.StorePath.ToFullPath(), "--option", "trusted-public-keys", _key.PublicKey.ToString())
            .EnsureSuccess("nix store verify with the signing key trusted");
        var untrusted = RealNix.Run("nix", "store", "verify", "--store", root, "--no-contents", _leaf.StorePath.ToFullPath(),
            "--option", "trusted-public-keys", SecretKey.Generate("validity-1").PublicKey.ToString());
        Assert.NotEqual(0, untrusted.ExitCode);
    }

    [Fact]
    public void ArgumentsAreSplitOnlyWhereTheyOverflowTheArgumentSpace()
    {
        var paths = Enumerable.Range(0, 3000).Select(i => StorePath.FromParts(System.Security.Cryptography.RandomNumberGenerator.GetBytes(StorePath.DigestLength),
            "data-" + i.ToString("D4", System.Globalization.CultureInfo.InvariantCulture)).ToFullPath()).ToList();
        var each = paths[0].Length + 1 + IntPtr.Size;
        Assert.All(paths, p => Assert.Equal(each, p.Length + 1 + IntPtr.Size));

        // 3,000 full paths (about 250 KB with their pointers) fit Linux's usual 2 MiB in one run.
        Assert.Equal(paths, Assert.Single(NixValidity.ArgumentBatches(paths, 2L * 1024 * 1024)));
        var batches = NixValidity.ArgumentBatches(paths, 1000L * each + each - 1).ToList();
        Assert.Equal([1000, 1000, 1000], batches.Select(b => b.Length));
        Assert.Equal(paths, batches.SelectMany(b => b));
        Assert.Equal(3000, NixValidity.ArgumentBatches(paths, 0).Count());
        Assert.Empty(NixValidity.ArgumentBatches([], 1));
        Assert.True(LazyStore.Nix.Interop.Posix.ArgumentSpace >= 128 * 1024);
    }

    [RealNixFact]
    public async Task NixSaysWhichPathsAreValidInBatches()
    {
        var root = _dir.Sub("root");
        var added = RealNix.Run("nix-store", "--store", root, "--add", _dir.Sub("src/leaf")).EnsureSuccess("nix-store --add").StdoutText.Trim();
        var valid = StoreDirectory.Default.ParsePath(added);
        // More than two batches of paths Nix has never seen, around the one it has.
        var unknown = Enumerable.Range(0, 2 * NixValidity.ValidityBatchSize + 1)
            .Select(_ => StorePath.FromParts(System.Security.Cryptography.RandomNumberGenerator.GetBytes(StorePath.DigestLength), "unknown")).ToList();
        var asked = unknown.Take(NixValidity.ValidityBatchSize).Append(valid).Concat(unknown.Skip(NixValidity.ValidityBatchSize)).ToList();
        Assert.Equal([valid], await NixValidity.QueryValidAsync(root, asked, StoreDirectory.Default, CancellationToken.None));
        Assert.Empty(await NixValidity.QueryValidAsync(root, [], StoreDirectory.Default, CancellationToken.None));
    }

    [Fact]
    public async Task AFailingNixStoreIsReportedWithWhatItSaid()
    {
        var error = await Assert.ThrowsAsync<NixRegistrationException>(() =>
            NixValidity.QueryValidAsync("/nonexistent-root", [_leaf.StorePath], StoreDirectory.Default, CancellationToken.None, nixStore: "false"));
        Assert.Equal("nix-store --store /nonexistent-root --check-validity failed (exit 1): ", error.Message);
        error = await Assert.ThrowsAsync<NixRegistrationException>(() =>
            NixValidity.QueryValidAsync(null, [_leaf.StorePath], StoreDirectory.Default, CancellationToken.None, nixStore: "/nonexistent/nix-store"));
        Assert.StartsWith("could not run /nonexistent/nix-store (is Nix installed and on PATH?)", error.Message, StringComparison.Ordinal);
    }

    private NarInfo Info(StorePath path, params StorePath[] references) =>
        new() { StorePath = path, Url = "nar/x.nar", NarHash = _leaf.NarHash, NarSize = _leaf.NarSize, References = references };

    public void Dispose() => _dir.Dispose();
}
