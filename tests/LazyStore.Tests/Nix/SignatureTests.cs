using System.Text;
using LazyStore.Nix.Signatures;

namespace LazyStore.Tests.Nix;

public sealed class SignatureTests
{
    // RFC 8032 section 7.1, TEST 1 (empty message) and TEST 2 (one byte 0x72).
    public static TheoryData<string, string, string, string> Rfc8032 => new()
    {
        {
            "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
            "",
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
        },
        {
            "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
            "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
            "72",
            "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"
        },
    };

    [Theory]
    [MemberData(nameof(Rfc8032))]
    public void Signs_and_verifies_RFC_8032_vectors(string seedHex, string publicHex, string messageHex, string signatureHex)
    {
        var seed = Convert.FromHexString(seedHex);
        var publicKey = Convert.FromHexString(publicHex);
        var keyText = "rfc:" + Convert.ToBase64String([.. seed, .. publicKey]);
        using var secret = SecretKey.Parse(keyText);
        Assert.Equal(publicKey, secret.PublicKey.Key.ToArray());
        var message = Convert.FromHexString(messageHex);
        var signature = secret.Sign(message);
        Assert.Equal(signatureHex, Convert.ToHexStringLower(signature.Bytes));
        Assert.Equal("rfc", signature.KeyName);
        Assert.True(secret.PublicKey.Verify(message, signature));
        Assert.Equal(keyText, secret.Export());
    }

    [Fact]
    public void Verification_fails_for_other_data_keys_and_names()
    {
        using var key = SecretKey.Generate("cache-1");
        using var other = SecretKey.Generate("cache-1");
        var signature = key.Sign("1;/nix/store/x;sha256:y;1;");
        Assert.True(key.PublicKey.Verify("1;/nix/store/x;sha256:y;1;", signature));
        Assert.False(key.PublicKey.Verify("1;/nix/store/x;sha256:y;2;", signature));
        Assert.False(other.PublicKey.Verify("1;/nix/store/x;sha256:y;1;", signature));
        var renamed = new PublicKey("cache-2", key.PublicKey.Key);
        Assert.False(renamed.Verify("1;/nix/store/x;sha256:y;1;", signature));
        var flipped = signature.Bytes.ToArray();
        flipped[10] ^= 1;
        Assert.False(key.PublicKey.Verify("1;/nix/store/x;sha256:y;1;", new Signature("cache-1", flipped)));
    }

    [Fact]
    public void Keys_and_signatures_round_trip_through_text()
    {
        using var key = SecretKey.Generate("cache.example.org-1");
        var publicText = key.PublicKey.ToString();
        Assert.StartsWith("cache.example.org-1:", publicText);
        Assert.Equal(key.PublicKey, PublicKey.Parse(publicText));
        using var again = SecretKey.Parse(key.Export());
        Assert.Equal(key.PublicKey, again.PublicKey);
        var signature = key.Sign(Encoding.UTF8.GetBytes("data"));
        Assert.Equal(signature, Signature.Parse(signature.ToString()));
        Assert.Equal(signature.ToString(), again.Sign("data").ToString());
        Assert.DoesNotContain(key.Export().Split(':')[1], key.ToString());
    }

    [Fact]
    public void Parses_the_cache_nixos_org_key()
    {
        var key = PublicKey.Parse("cache.nixos.org-1:6NCHdD59X431o0gWypbMrAURkbJ16ZPMQFGspcDShjY=");
        Assert.Equal("cache.nixos.org-1", key.Name);
        Assert.Equal(32, key.Key.Length);
    }

    [Theory]
    [InlineData("no-colon", SignatureFormatError.MissingName)]
    [InlineData(":6NCHdD59X431o0gWypbMrAURkbJ16ZPMQFGspcDShjY=", SignatureFormatError.MissingName)]
    [InlineData("k:", SignatureFormatError.WrongLength)]
    [InlineData("k:6NCHdD59X431o0gWypbMrAURkbJ16ZPMQFGspcDShj==", SignatureFormatError.WrongLength)]
    [InlineData("k:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", SignatureFormatError.WrongLength)]
    [InlineData("k:6NCHdD59X431o0gWypbMrAURkbJ16ZPMQFGspcDShjY=AAAA", SignatureFormatError.InvalidBase64)]
    [InlineData("k:6NCHdD59X431o0gWypbMrAURkbJ16ZPMQFGspcDShj!=", SignatureFormatError.InvalidBase64)]
    [InlineData("k:6NCHdD59X431o0gWypbMrAURkbJ16ZPMQFGspcDShjY=\n", SignatureFormatError.InvalidBase64)]
    [InlineData("k:6NCHdD59X431o0gWypbMrAURkbJ16ZPMQFGspcDShjZ=", SignatureFormatError.InvalidBase64)]
    public void Rejects_malformed_public_keys(string text, SignatureFormatError error)
    {
        var e = Assert.Throws<SignatureFormatException>(() => PublicKey.Parse(text));
        Assert.Equal(error, e.Error);
        Assert.Equal(SigningSubject.PublicKey, e.Subject);
        Assert.StartsWith("public key", e.Message);
        Assert.False(PublicKey.TryParse(text, out _));
    }

    [Theory]
    [InlineData("nosig", SignatureFormatError.MissingName)]
    [InlineData("k:6NCHdD59X431o0gWypbMrAURkbJ16ZPMQFGspcDShjY=", SignatureFormatError.WrongLength)]
    [InlineData("k:uwHKCwL9oSqZ8wGIAzybGYj8yvOxuh2pSmwFEN4QUO7hlKtuIiR/BMdr1R/P2KwZAQZXaNQ9OddHjBS05S8vAQ=%", SignatureFormatError.InvalidBase64)]
    public void Rejects_malformed_signatures(string text, SignatureFormatError error)
    {
        var e = Assert.Throws<SignatureFormatException>(() => Signature.Parse(text));
        Assert.Equal(error, e.Error);
        Assert.Equal(SigningSubject.Signature, e.Subject);
        Assert.False(Signature.TryParse(text, out _));
    }

    [Fact]
    public void Rejects_malformed_secret_keys_without_echoing_them()
    {
        using var key = SecretKey.Generate("k");
        var text = key.Export();
        var secret = text[2..];

        var wrongLength = Assert.Throws<SignatureFormatException>(() => SecretKey.Parse(key.PublicKey.ToString()));
        Assert.Equal(SignatureFormatError.WrongLength, wrongLength.Error);
        Assert.Equal(SigningSubject.SecretKey, wrongLength.Subject);

        var missingName = Assert.Throws<SignatureFormatException>(() => SecretKey.Parse(":" + secret));
        Assert.Equal(SignatureFormatError.MissingName, missingName.Error);
        Assert.DoesNotContain(secret, missingName.Message);

        var badBase64 = Assert.Throws<SignatureFormatException>(() => SecretKey.Parse("k:" + secret[..^3] + "*=="));
        Assert.Equal(SignatureFormatError.InvalidBase64, badBase64.Error);
        Assert.DoesNotContain(secret[..20], badBase64.Message);

        // Seed of one key with the public half of another.
        using var other = SecretKey.Generate("k");
        var raw = Convert.FromBase64String(secret);
        other.PublicKey.Key.CopyTo(raw.AsSpan(32));
        var mismatched = Assert.Throws<SignatureFormatException>(() => SecretKey.Parse("k:" + Convert.ToBase64String(raw)));
        Assert.Equal(SignatureFormatError.MismatchedPublicKey, mismatched.Error);
    }

    [Fact]
    public void A_disposed_secret_key_no_longer_signs()
    {
        var key = SecretKey.Generate("k");
        key.Dispose();
        Assert.Throws<ObjectDisposedException>(() => key.Sign("x"));
    }
}
