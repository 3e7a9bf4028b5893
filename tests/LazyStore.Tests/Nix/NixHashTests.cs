using System.Text;
using LazyStore.Nix;
using LazyStore.Tests.Support;

namespace LazyStore.Tests.Nix;

public sealed class NixHashTests
{
    private const string AbcSha256Hex = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    private const string AbcSha256Nix32 = "1b8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5s";
    private const string AbcSha256Base64 = "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=";

    // The digest of "abc" in every encoding, as printed by `nix-hash --to-base32` and `nix hash to-sri` (Nix 2.8).
    public static TheoryData<NixHashAlgorithm, string, string, string> AbcVectors => new()
    {
        { NixHashAlgorithm.Md5, "900150983cd24fb0d6963f7d28e17f72", "3jgzhjhz9zjvbb0kyj7jc500ch", "md5-kAFQmDzST7DWlj99KOF/cg==" },
        { NixHashAlgorithm.Sha1, "a9993e364706816aba3e25717850c26c9cd0d89d", "kpcd173cq987hw957sx6m0868wv3x6d9", "sha1-qZk+NkcGgWq6PiVxeFDCbJzQ2J0=" },
        { NixHashAlgorithm.Sha256, AbcSha256Hex, AbcSha256Nix32, "sha256-" + AbcSha256Base64 },
        {
            NixHashAlgorithm.Sha512,
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
            "2gs8k559z4rlahfx0y688s49m2vvszylcikrfinm30ly9rak69236nkam5ydvly1ai7xac99vxfc4ii84hawjbk876blyk1jfhkbbyx",
            "sha512-3a81oZNherrMQXNJriBBMRLm+k6JqX6iCp7u5ktV05ohkpkqJ0/BqDa6PCOj/uu9RU1EI2Q86A4qmslPpUyknw=="
        },
    };

    [Theory]
    [MemberData(nameof(AbcVectors))]
    public void Computes_and_prints_every_encoding(NixHashAlgorithm algorithm, string hex, string nix32, string sri)
    {
        var hash = NixHash.Compute(algorithm, "abc"u8);
        var name = NixHash.GetName(algorithm);
        Assert.Equal(hex, hash.ToBase16());
        Assert.Equal(nix32, hash.ToNix32());
        Assert.Equal(sri, hash.ToSri());
        Assert.Equal($"{name}:{nix32}", hash.ToString());
        Assert.Equal($"{name}:{hex}", hash.ToString(NixHashEncoding.Base16));
        Assert.Equal(hex, hash.ToString(NixHashEncoding.Base16, includeAlgorithm: false));
        Assert.Equal($"{name}:{sri[(name.Length + 1)..]}", hash.ToString(NixHashEncoding.Base64));
        Assert.Equal(sri, hash.ToString(NixHashEncoding.Sri, includeAlgorithm: false));
    }

    [Theory]
    [MemberData(nameof(AbcVectors))]
    public void Parses_every_encoding(NixHashAlgorithm algorithm, string hex, string nix32, string sri)
    {
        var expected = NixHash.Compute(algorithm, "abc"u8);
        var name = NixHash.GetName(algorithm);
        var base64 = sri[(name.Length + 1)..];
        Assert.Equal(expected, NixHash.Parse($"{name}:{hex}"));
        Assert.Equal(expected, NixHash.Parse($"{name}:{hex.ToUpperInvariant()}"));
        Assert.Equal(expected, NixHash.Parse($"{name}:{nix32}"));
        Assert.Equal(expected, NixHash.Parse($"{name}:{base64}"));
        Assert.Equal(expected, NixHash.Parse(sri));
        Assert.Equal(expected, NixHash.ParseSri(sri));
        Assert.Equal(expected, NixHash.Parse(hex, algorithm));
        Assert.Equal(expected, NixHash.Parse(nix32, algorithm));
        Assert.Equal(expected, NixHash.Parse(base64, algorithm));
        Assert.Equal(expected, NixHash.Parse(sri, algorithm));
        Assert.Equal(expected, NixHash.Parse($"{name}:{nix32}", algorithm));
    }

    [Theory]
    [InlineData("sha256", "does not name its algorithm")]
    [InlineData("blake3:" + AbcSha256Nix32, "names unknown hash algorithm")]
    [InlineData("SHA256:" + AbcSha256Nix32, "names unknown hash algorithm")]
    [InlineData("blake3-" + AbcSha256Base64, "names unknown hash algorithm")]
    [InlineData(AbcSha256Nix32, "does not name its algorithm")]
    [InlineData("sha256:" + AbcSha256Nix32 + "0", "wrong length")]
    [InlineData("sha256:", "wrong length")]
    [InlineData("sha256:1b8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5e", "invalid nix32")]
    [InlineData("sha256:zb8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5s", "invalid nix32")]
    [InlineData("sha256:ga7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", "invalid base16")]
    [InlineData("sha256:ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa!=", "invalid base64")]
    [InlineData("sha256:ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa1=", "invalid base64")]
    [InlineData("sha256-" + AbcSha256Hex, "invalid SRI")]
    [InlineData("sha256-" + AbcSha256Nix32, "invalid SRI")]
    [InlineData("sha256-ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0", "invalid SRI")]
    [InlineData("sha512-" + AbcSha256Base64, "invalid SRI")]
    public void Rejects_malformed_hashes(string text, string reason)
    {
        var e = Assert.Throws<NixHashFormatException>(() => NixHash.Parse(text));
        Assert.Contains(reason, e.Message);
        Assert.Contains(text, e.Message);
        Assert.Equal(text, e.Text);
        Assert.False(NixHash.TryParse(text, out var none));
        Assert.Null(none);
    }

    [Fact]
    public void Rejects_an_algorithm_other_than_the_expected_one()
    {
        var e = Assert.Throws<NixHashFormatException>(() => NixHash.Parse("sha256:" + AbcSha256Nix32, NixHashAlgorithm.Sha1));
        Assert.Contains("is a sha256 hash where sha1 was expected", e.Message);
    }

    [Fact]
    public void Rejects_a_bare_digest_of_the_wrong_length()
    {
        var e = Assert.Throws<NixHashFormatException>(() => NixHash.Parse(AbcSha256Hex, NixHashAlgorithm.Sha1));
        Assert.Contains("wrong length for a sha1 digest", e.Message);
    }

    [Fact]
    public void ParseSri_rejects_the_colon_form()
    {
        Assert.Throws<NixHashFormatException>(() => NixHash.ParseSri("sha256:" + AbcSha256Base64));
    }

    [Fact]
    public void Constructor_checks_the_digest_length()
    {
        Assert.Throws<ArgumentException>(() => new NixHash(NixHashAlgorithm.Sha256, new byte[20]));
    }

    [Fact]
    public void Equality_is_by_algorithm_and_digest()
    {
        var a = NixHash.Parse("sha256:" + AbcSha256Nix32);
        var b = NixHash.Parse("sha256-" + AbcSha256Base64);
        Assert.Equal(a, b);
        Assert.True(a == b);
        Assert.Equal(a.GetHashCode(), b.GetHashCode());
        Assert.NotEqual(a, NixHash.Compute(NixHashAlgorithm.Sha256, "abd"u8));
        Assert.NotEqual(new NixHash(NixHashAlgorithm.Sha1, new byte[20]), (object)new NixHash(NixHashAlgorithm.Sha256, new byte[32]));
    }

    [Fact]
    public void Hasher_hashes_pieces_like_the_whole_and_counts_bytes()
    {
        var data = Encoding.ASCII.GetBytes(string.Concat(Enumerable.Repeat("lazy store ", 1000)));
        using var hasher = new NixHasher(NixHashAlgorithm.Sha256);
        foreach (var chunk in data.Chunk(777))
            hasher.Append(chunk);
        Assert.Equal(data.Length, hasher.BytesHashed);
        Assert.Equal(NixHash.Compute(NixHashAlgorithm.Sha256, data), hasher.Finish());
        Assert.Equal(0, hasher.BytesHashed);
        Assert.Equal(NixHash.Compute(NixHashAlgorithm.Sha256, []), hasher.Finish());
    }

    [Fact]
    public async Task Hashes_a_stream()
    {
        var data = new byte[300_000];
        new Random(7).NextBytes(data);
        using var stream = new MemoryStream(data);
        var hash = await NixHash.ComputeAsync(NixHashAlgorithm.Sha512, stream);
        Assert.Equal(NixHash.Compute(NixHashAlgorithm.Sha512, data), hash);
    }

    [RealNixFact]
    public void Prints_like_real_Nix()
    {
        foreach (var algorithm in Enum.GetValues<NixHashAlgorithm>())
        {
            var hash = new NixHash(algorithm, System.Security.Cryptography.RandomNumberGenerator.GetBytes(NixHash.GetDigestLength(algorithm)));
            var name = NixHash.GetName(algorithm);
            var sri = RealNix.Run("nix", "hash", "to-sri", "--type", name, hash.ToBase16()).EnsureSuccess("nix hash to-sri").StdoutText.Trim();
            Assert.Equal(sri, hash.ToSri());
            var nix32 = RealNix.Run("nix", "hash", "to-base32", sri).EnsureSuccess("nix hash to-base32").StdoutText.Trim();
            Assert.Equal(nix32, hash.ToNix32());
            var base16 = RealNix.Run("nix", "hash", "to-base16", $"{name}:{nix32}").EnsureSuccess("nix hash to-base16").StdoutText.Trim();
            Assert.Equal(base16, hash.ToBase16());
        }
    }

    [RealNixFact]
    public void Hashes_a_file_like_real_Nix()
    {
        using var dir = new TempDir();
        var file = dir.Sub("f");
        File.WriteAllBytes(file, Encoding.UTF8.GetBytes("a file for nix-hash --flat\n"));
        var nix = RealNix.Run("nix-hash", "--type", "sha256", "--flat", "--base32", file).EnsureSuccess("nix-hash --flat").StdoutText.Trim();
        Assert.Equal(nix, NixHash.Compute(NixHashAlgorithm.Sha256, File.ReadAllBytes(file)).ToNix32());
    }
}
