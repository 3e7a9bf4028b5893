using System.Text;
using LazyStore.Nix.Interop;

namespace LazyStore.Nix.Signatures;

/// <summary>
/// An ed25519 public key with its name, written <c>name:base64(32 bytes)</c> as in nix.conf's
/// <c>trusted-public-keys</c> (Nix <c>PublicKey</c>, <c>libutil/crypto.cc</c>).
/// </summary>
public sealed class PublicKey : IEquatable<PublicKey>
{
    public const int KeyLength = Ed25519.PublicKeyLength;

    private readonly byte[] _key;

    public PublicKey(string name, ReadOnlySpan<byte> key)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        if (name.Contains(':', StringComparison.Ordinal))
            throw new ArgumentException("a key name cannot contain ':'", nameof(name));
        if (key.Length != KeyLength)
            throw new ArgumentException($"an ed25519 public key is {KeyLength} bytes, not {key.Length}", nameof(key));
        Name = name;
        _key = key.ToArray();
    }

    public string Name { get; }

    public ReadOnlySpan<byte> Key => _key;

    public static PublicKey Parse(string text)
    {
        var (name, key) = SigningText.Split(text, SigningSubject.PublicKey, KeyLength, echoText: true);
        return new PublicKey(name, key);
    }

    public static bool TryParse(string text, out PublicKey? key)
    {
        try
        {
            key = Parse(text);
            return true;
        }
        catch (SignatureFormatException)
        {
            key = null;
            return false;
        }
    }

    /// <summary>
    /// True when <paramref name="signature"/> carries this key's name and is a valid ed25519 signature of
    /// <paramref name="data"/> by this key. Nix picks the key by the signature's name, so a signature
    /// under another name never verifies here.
    /// </summary>
    public bool Verify(ReadOnlySpan<byte> data, Signature signature)
    {
        ArgumentNullException.ThrowIfNull(signature);
        return string.Equals(Name, signature.KeyName, StringComparison.Ordinal)
            && Ed25519.Verify(_key, data, signature.Bytes);
    }

    /// <summary>Verifies a signature over a text fingerprint (UTF-8, as Nix signs its strings' bytes).</summary>
    public bool Verify(string fingerprint, Signature signature)
    {
        ArgumentNullException.ThrowIfNull(fingerprint);
        return Verify(Encoding.UTF8.GetBytes(fingerprint), signature);
    }

    /// <summary><c>name:base64</c>.</summary>
    public override string ToString() => SigningText.Join(Name, _key);

    public bool Equals(PublicKey? other) =>
        other is not null && string.Equals(Name, other.Name, StringComparison.Ordinal) && _key.AsSpan().SequenceEqual(other._key);

    public override bool Equals(object? obj) => Equals(obj as PublicKey);

    public override int GetHashCode() => HashCode.Combine(StringComparer.Ordinal.GetHashCode(Name), _key[0], _key[1], _key[2], _key[3]);
}
