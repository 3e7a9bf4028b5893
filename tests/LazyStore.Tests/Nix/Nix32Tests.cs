using FsCheck;
using FsCheck.Fluent;
using LazyStore.Nix;
using LazyStore.Tests.Support;

namespace LazyStore.Tests.Nix;

public sealed class Nix32Tests
{
    // Digests of "abc" and their nix32 forms, printed by `nix-hash --type <algo> --to-base32 <hex>` (Nix 2.8).
    public static TheoryData<string, string> Vectors => new()
    {
        { "900150983cd24fb0d6963f7d28e17f72", "3jgzhjhz9zjvbb0kyj7jc500ch" },
        { "a9993e364706816aba3e25717850c26c9cd0d89d", "kpcd173cq987hw957sx6m0868wv3x6d9" },
        { "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", "1b8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5s" },
        { "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f", "2gs8k559z4rlahfx0y688s49m2vvszylcikrfinm30ly9rak69236nkam5ydvly1ai7xac99vxfc4ii84hawjbk876blyk1jfhkbbyx" },
        { "0000000000000000000000000000000000000000000000000000000000000001", "0080000000000000000000000000000000000000000000000000" },
        { "0000000000000000000000000000000000000001", "04000000000000000000000000000000" },
    };

    [Theory]
    [MemberData(nameof(Vectors))]
    public void Encodes_and_decodes_Nix_vectors(string hex, string nix32)
    {
        var bytes = Convert.FromHexString(hex);
        Assert.Equal(nix32, Nix32.Encode(bytes));
        Assert.Equal(bytes, Nix32.Decode(nix32));
    }

    [Fact]
    public void Empty_round_trips()
    {
        Assert.Equal("", Nix32.Encode([]));
        Assert.Empty(Nix32.Decode(""));
    }

    [Theory]
    [InlineData(1, 2)]
    [InlineData(16, 26)]
    [InlineData(20, 32)]
    [InlineData(32, 52)]
    [InlineData(64, 103)]
    public void Encoded_length_is_ceiling_of_8n_over_5(int bytes, int chars)
    {
        Assert.Equal(chars, Nix32.GetEncodedLength(bytes));
        Assert.Equal(bytes, Nix32.GetDecodedLength(chars));
    }

    [Fact]
    public void Round_trips_arbitrary_bytes() =>
        Prop.ForAll(ArbMap.Default.ArbFor<byte[]>(), bytes => Nix32.Decode(Nix32.Encode(bytes)).AsSpan().SequenceEqual(bytes))
            .QuickCheckThrowOnFailure();

    [Fact]
    public void Encoding_uses_only_the_alphabet() =>
        Prop.ForAll(ArbMap.Default.ArbFor<byte[]>(), bytes => Nix32.Encode(bytes).All(c => Nix32.Alphabet.Contains(c)))
            .QuickCheckThrowOnFailure();

    [Theory]
    [InlineData("0e")]
    [InlineData("0o")]
    [InlineData("0t")]
    [InlineData("0u")]
    [InlineData("0A")]
    [InlineData("0-")]
    [InlineData("0é")]
    public void Rejects_characters_outside_the_alphabet(string text)
    {
        var e = Assert.Throws<Nix32FormatException>(() => Nix32.Decode(text));
        Assert.Contains("invalid nix32 character", e.Message);
    }

    [Fact]
    public void Rejects_non_zero_excess_bits()
    {
        // One byte takes two digits = 10 bits; the leading digit's top two bits lie beyond the byte.
        Assert.Equal([0xE0], Nix32.Decode("70"));
        var e = Assert.Throws<Nix32FormatException>(() => Nix32.Decode("80"));
        Assert.Contains("beyond the last byte", e.Message);
        Assert.Throws<Nix32FormatException>(() => Nix32.Decode("zb8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5s"));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(6)]
    public void Rejects_lengths_no_byte_count_encodes_to(int length)
    {
        Assert.Equal(-1, Nix32.GetDecodedLength(length));
        Assert.Throws<Nix32FormatException>(() => Nix32.Decode(new string('0', length)));
    }

    [Fact]
    public void Span_decode_requires_the_exact_destination_length()
    {
        Assert.Throws<Nix32FormatException>(() => Nix32.Decode("70", new byte[2]));
        Assert.False(Nix32.TryDecode("70", new byte[2]));
        var one = new byte[1];
        Assert.True(Nix32.TryDecode("70", one));
        Assert.Equal(0xE0, one[0]);
    }

    [RealNixFact]
    public void Matches_real_Nix_on_random_digests()
    {
        foreach (var (type, size) in new[] { ("sha1", 20), ("sha256", 32), ("sha512", 64) })
        {
            var bytes = System.Security.Cryptography.RandomNumberGenerator.GetBytes(size);
            var result = RealNix.Run("nix-hash", "--type", type, "--to-base32", Convert.ToHexStringLower(bytes)).EnsureSuccess("nix-hash --to-base32");
            Assert.Equal(result.StdoutText.Trim(), Nix32.Encode(bytes));
        }
    }
}
