using LazyStore.Nix.IO;
using System.Security.Cryptography;
using System.Text;
using LazyStore.Nix;
using LazyStore.Nix.Compression;
using LazyStore.Nix.Nar;
using LazyStore.Nix.Signatures;
using LazyStore.Tests.Support;

namespace LazyStore.Tests.Nix;

/// <summary>
/// Binary caches written by the real Nix (<c>nix copy --to file://…</c>) in every compression it offers,
/// signed with a key from <c>nix-store --generate-binary-cache-key</c>, with NAR listings. One set of
/// store paths, copied once per compression.
/// </summary>
public sealed class RealNixCaches : IDisposable
{
    public static readonly string[] Compressions = ["none", "xz", "zstd", "bzip2", "br", "gzip"];

    private readonly TempDir _dir = new("lazystore-caches-");

    public RealNixCaches()
    {
        RealNix.Require();
        var root = _dir.Sub("root");
        RealNix.Run("nix-store", "--generate-binary-cache-key", "cache-test-1", _dir.Sub("sk"), _dir.Sub("pk")).EnsureSuccess("generate key");
        RealNix.Run("nix-store", "--generate-binary-cache-key", "cache-test-1", _dir.Sub("sk-other"), _dir.Sub("pk-other")).EnsureSuccess("generate key");
        FixtureTrees.WriteEdgeCases(_dir.Sub("src/tree"));
        FixtureTrees.WriteLargeFile(_dir.Sub("src/large"), 3L * 1024 * 1024);
        var tree = RealNix.Run("nix-store", "--store", root, "--add", _dir.Sub("src/tree")).EnsureSuccess("nix-store --add").StdoutText.Trim();
        var large = RealNix.Run("nix-store", "--store", root, "--add", _dir.Sub("src/large")).EnsureSuccess("nix-store --add").StdoutText.Trim();
        var referrer = RealNix.Run("nix", "eval", "--impure", "--store", root, "--raw", "--expr",
            $"builtins.toFile \"referrer\" \"${{builtins.storePath {tree}}} ${{builtins.storePath {large}}}\"").EnsureSuccess("builtins.toFile").StdoutText.Trim();
        Paths = [tree, large, referrer];
        foreach (var compression in Compressions)
        {
            RealNix.Run("nix", "copy", "--store", root, "--to",
                $"file://{CacheDir(compression)}?compression={compression}&write-nar-listing=true&secret-key={_dir.Sub("sk")}", referrer)
                .EnsureSuccess($"nix copy (compression={compression})");
        }
        TrustedKey = PublicKey.Parse(File.ReadAllText(_dir.Sub("pk")).Trim());
        OtherKey = PublicKey.Parse(File.ReadAllText(_dir.Sub("pk-other")).Trim());
    }

    public IReadOnlyList<string> Paths { get; }

    /// <summary>The edge-case tree added as <c>Paths[0]</c>.</summary>
    public string SourceTree => _dir.Sub("src/tree");

    /// <summary>The tree with one multi-megabyte file added as <c>Paths[1]</c>.</summary>
    public string SourceLarge => _dir.Sub("src/large");

    public PublicKey TrustedKey { get; }

    public PublicKey OtherKey { get; }

    public string CacheDir(string compression) => _dir.Sub("cache-" + compression);

    public void Dispose() => _dir.Dispose();
}

public class BinaryCacheCrossCheckTests(RealNixCaches caches) : IClassFixture<RealNixCaches>
{
    public static TheoryData<string> Compressions => new(RealNixCaches.Compressions);

    private static IEnumerable<(string File, NarInfo Info)> NarInfos(string cache) =>
        Directory.EnumerateFiles(cache, "*.narinfo").Order(StringComparer.Ordinal)
            .Select(f => (f, NarInfo.Parse(File.ReadAllText(f), source: f)));

    [RealNixTheory]
    [MemberData(nameof(Compressions))]
    public void Every_nar_decompresses_to_its_signed_hash_and_size(string compression)
    {
        var cache = caches.CacheDir(compression);
        var cacheInfo = NixCacheInfo.Parse(File.ReadAllText(Path.Combine(cache, "nix-cache-info")));
        Assert.Equal("/nix/store", cacheInfo.StoreDirectory?.Path);
        var infos = NarInfos(cache).ToList();
        Assert.Equal(caches.Paths.Order(StringComparer.Ordinal), infos.Select(i => i.Info.StorePath.ToFullPath()).Order(StringComparer.Ordinal));
        foreach (var (file, info) in infos)
        {
            Assert.Equal(compression, info.Compression);
            var method = NarCompression.Parse(info.Compression);
            var narFile = Path.Combine(cache, info.Url);
            Assert.EndsWith(NarCompression.NarFileExtension(method), info.Url);

            Assert.Equal(info.FileSize, (ulong)new FileInfo(narFile).Length);
            using (var compressed = File.OpenRead(narFile))
                Assert.Equal(info.FileHash!.ToBase16(), Convert.ToHexStringLower(SHA256.HashData(compressed)));

            using var input = File.OpenRead(narFile);
            using var nar = NarCompression.Decompress(method, input);
            using var hashing = new HashingReadStream(nar, NixHashAlgorithm.Sha256);
            var listing = NarListing.FromNar(hashing);
            // NarListing.FromNar stops at the end of the NAR; nothing may follow it.
            Assert.Equal(0, hashing.Read(new byte[1]));
            Assert.Equal(info.NarSize, (ulong)hashing.BytesRead);
            Assert.Equal(info.NarHash, hashing.FinishHash());

            // Nix 2.8 still writes narOffset into its listings: ours, computed while streaming, must agree.
            var lsFile = Path.Combine(cache, info.StorePath.HashPart + ".ls");
            var nixListing = NarListing.ParseListingFile(File.ReadAllBytes(lsFile));
            Assert.Equal(NarListing.ToJson(nixListing), NarListing.ToJson(listing));
            Assert.Equal(File.ReadAllText(lsFile), NarListing.ToListingFile(listing));
        }
    }

    [RealNixTheory]
    [MemberData(nameof(Compressions))]
    public void Every_signature_verifies_with_the_cache_key_only(string compression)
    {
        foreach (var (_, info) in NarInfos(caches.CacheDir(compression)))
        {
            Assert.True(info.HasValidSignature([caches.TrustedKey]), $"{info.StorePath} should verify");
            Assert.False(info.HasValidSignature([caches.OtherKey]), $"{info.StorePath} must not verify with another key of the same name");
            var tampered = NarInfo.Parse(info.ToString().Replace($"NarSize: {info.NarSize}", $"NarSize: {info.NarSize + 1}", StringComparison.Ordinal));
            Assert.False(tampered.HasValidSignature([caches.TrustedKey]), "a modified narinfo must not verify");
        }
    }

    [RealNixFact]
    public void Nars_of_all_compressions_are_the_same_nar()
    {
        var byPath = RealNixCaches.Compressions
            .SelectMany(c => NarInfos(caches.CacheDir(c)).Select(n => (c, n.Info)))
            .GroupBy(x => x.Info.StorePath.BaseName);
        foreach (var group in byPath)
        {
            Assert.Equal(RealNixCaches.Compressions.Length, group.Count());
            Assert.Single(group.Select(x => x.Info.NarHash.ToString()).Distinct());
        }
    }
}
