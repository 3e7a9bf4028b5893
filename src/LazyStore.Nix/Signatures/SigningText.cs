namespace LazyStore.Nix.Signatures;

/// <summary>
/// The shared text form of keys and signatures, <c>name:base64</c> (Nix <c>libutil/crypto.cc</c>
/// <c>split</c>: the name is everything before the first colon and must not be empty).
/// </summary>
internal static class SigningText
{
    public static (string Name, byte[] Value) Split(string text, SigningSubject subject, int length, bool echoText)
    {
        ArgumentNullException.ThrowIfNull(text);
        var shown = echoText ? $"'{text}'" : "text";
        var colon = text.IndexOf(':', StringComparison.Ordinal);
        if (colon <= 0)
            throw new SignatureFormatException(subject, SignatureFormatError.MissingName, $"{shown} is not 'name:base64' with a non-empty name");
        var name = text[..colon];
        var value = new byte[length];
        if (!Base64.TryDecodeExact(text.AsSpan(colon + 1), value))
        {
            var error = Base64.DecodedLength(text.AsSpan(colon + 1)) is { } decoded && decoded != length
                ? SignatureFormatError.WrongLength
                : SignatureFormatError.InvalidBase64;
            throw new SignatureFormatException(subject, error,
                $"{shown} named '{name}' does not hold canonical base64 of exactly {length} bytes");
        }
        return (name, value);
    }

    public static string Join(string name, ReadOnlySpan<byte> value) => name + ":" + Convert.ToBase64String(value);
}

/// <summary>What was being parsed.</summary>
public enum SigningSubject
{
    PublicKey,
    SecretKey,
    Signature,
}

/// <summary>How a key or signature text is malformed.</summary>
public enum SignatureFormatError
{
    /// <summary>No colon, or nothing before it.</summary>
    MissingName,

    /// <summary>The part after the colon has the right length for the value but is not canonical base64.</summary>
    InvalidBase64,

    /// <summary>The part after the colon does not encode the required number of bytes.</summary>
    WrongLength,

    /// <summary>A secret key's second half is not the public key of its first half.</summary>
    MismatchedPublicKey,
}

/// <summary>A malformed public key, secret key or signature. Never echoes secret key material.</summary>
public sealed class SignatureFormatException(SigningSubject subject, SignatureFormatError error, string reason)
    : FormatException($"{Describe(subject)}: {reason} ({error})")
{
    public SigningSubject Subject { get; } = subject;

    public SignatureFormatError Error { get; } = error;

    private static string Describe(SigningSubject subject) => subject switch
    {
        SigningSubject.PublicKey => "public key",
        SigningSubject.SecretKey => "secret key",
        _ => "signature",
    };
}
