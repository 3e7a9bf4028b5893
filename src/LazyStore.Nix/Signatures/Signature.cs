namespace LazyStore.Nix.Signatures;

/// <summary>A detached ed25519 signature with the signing key's name: <c>name:base64(64 bytes)</c>, a narinfo <c>Sig</c> value.</summary>
public sealed class Signature : IEquatable<Signature>
{
    public const int Length = Interop.Ed25519.SignatureLength;

    private readonly byte[] _bytes;

    public Signature(string keyName, ReadOnlySpan<byte> bytes)
    {
        ArgumentException.ThrowIfNullOrEmpty(keyName);
        if (keyName.Contains(':', StringComparison.Ordinal))
            throw new ArgumentException("a key name cannot contain ':'", nameof(keyName));
        if (bytes.Length != Length)
            throw new ArgumentException($"an ed25519 signature is {Length} bytes, not {bytes.Length}", nameof(bytes));
        KeyName = keyName;
        _bytes = bytes.ToArray();
    }

    public string KeyName { get; }

    public ReadOnlySpan<byte> Bytes => _bytes;

    public static Signature Parse(string text)
    {
        var (name, bytes) = SigningText.Split(text, SigningSubject.Signature, Length, echoText: true);
        return new Signature(name, bytes);
    }

    public static bool TryParse(string text, out Signature? signature)
    {
        try
        {
            signature = Parse(text);
            return true;
        }
        catch (SignatureFormatException)
        {
            signature = null;
            return false;
        }
    }

    /// <summary><c>name:base64</c>, as written on a narinfo <c>Sig</c> line.</summary>
    public override string ToString() => SigningText.Join(KeyName, _bytes);

    public bool Equals(Signature? other) =>
        other is not null && string.Equals(KeyName, other.KeyName, StringComparison.Ordinal) && _bytes.AsSpan().SequenceEqual(other._bytes);

    public override bool Equals(object? obj) => Equals(obj as Signature);

    public override int GetHashCode() => HashCode.Combine(StringComparer.Ordinal.GetHashCode(KeyName), _bytes[0], _bytes[1], _bytes[2], _bytes[3]);
}
