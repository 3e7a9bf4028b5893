using System.Security.Cryptography;
using System.Text;
using LazyStore.Nix.Interop;

namespace LazyStore.Nix.Signatures;

/// <summary>
/// An ed25519 signing key in Nix's secret key file format, <c>name:base64(64 bytes)</c> where the 64
/// bytes are libsodium's secret key, seed followed by public key (what
/// <c>nix-store --generate-binary-cache-key</c> writes). Disposing wipes the seed.
/// </summary>
public sealed class SecretKey : IDisposable
{
    /// <summary>Bytes in Nix's (libsodium's) secret key: 32-byte seed, 32-byte public key.</summary>
    public const int KeyLength = Ed25519.SeedLength + Ed25519.PublicKeyLength;

    private readonly byte[] _seed;
    private bool _disposed;

    private SecretKey(string name, byte[] seed, PublicKey publicKey)
    {
        Name = name;
        _seed = seed;
        PublicKey = publicKey;
    }

    public string Name { get; }

    /// <summary>The matching public key (Nix <c>SecretKey::toPublicKey</c>).</summary>
    public PublicKey PublicKey { get; }

    /// <summary>
    /// Parses <c>name:base64(seed || public key)</c>. The stored public half must be the one the seed
    /// derives, so a corrupted file cannot sign under a key it does not hold. Errors never echo the key.
    /// </summary>
    public static SecretKey Parse(string text)
    {
        var (name, raw) = SigningText.Split(text, SigningSubject.SecretKey, KeyLength, echoText: false);
        try
        {
            var seed = raw.AsSpan(0, Ed25519.SeedLength).ToArray();
            var derived = Ed25519.DerivePublicKey(seed);
            if (!CryptographicOperations.FixedTimeEquals(derived, raw.AsSpan(Ed25519.SeedLength)))
            {
                CryptographicOperations.ZeroMemory(seed);
                throw new SignatureFormatException(SigningSubject.SecretKey, SignatureFormatError.MismatchedPublicKey,
                    $"key '{name}' stores a public half that its seed does not derive");
            }
            return new SecretKey(name, seed, new PublicKey(name, derived));
        }
        finally
        {
            CryptographicOperations.ZeroMemory(raw);
        }
    }

    /// <summary>Reads a secret key file; a trailing newline is ignored, as Nix's base64 decoder skips it.</summary>
    public static SecretKey ReadFile(string path) => Parse(File.ReadAllText(path).TrimEnd('\n'));

    /// <summary>A fresh key from the system's random number generator.</summary>
    public static SecretKey Generate(string name)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        if (name.Contains(':', StringComparison.Ordinal))
            throw new ArgumentException("a key name cannot contain ':'", nameof(name));
        var seed = RandomNumberGenerator.GetBytes(Ed25519.SeedLength);
        return new SecretKey(name, seed, new PublicKey(name, Ed25519.DerivePublicKey(seed)));
    }

    /// <summary>Signs <paramref name="data"/> (Nix <c>SecretKey::signDetached</c>).</summary>
    public Signature Sign(ReadOnlySpan<byte> data)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return new Signature(Name, Ed25519.Sign(_seed, data));
    }

    /// <summary>Signs a text fingerprint's UTF-8 bytes.</summary>
    public Signature Sign(string fingerprint)
    {
        ArgumentNullException.ThrowIfNull(fingerprint);
        return Sign(Encoding.UTF8.GetBytes(fingerprint));
    }

    /// <summary>The key file text, <c>name:base64(seed || public key)</c>, readable by Nix.</summary>
    public string Export()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var raw = new byte[KeyLength];
        try
        {
            _seed.CopyTo(raw, 0);
            PublicKey.Key.CopyTo(raw.AsSpan(Ed25519.SeedLength));
            return SigningText.Join(Name, raw);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(raw);
        }
    }

    /// <summary>The key's name only; the secret never appears in logs.</summary>
    public override string ToString() => $"{Name} (secret key)";

    public void Dispose()
    {
        if (!_disposed)
        {
            CryptographicOperations.ZeroMemory(_seed);
            _disposed = true;
        }
    }
}
