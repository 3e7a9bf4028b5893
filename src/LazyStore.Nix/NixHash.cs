using System.Security.Cryptography;

namespace LazyStore.Nix;

/// <summary>The hash algorithms Nix names in hash strings (<c>md5</c>, <c>sha1</c>, <c>sha256</c>, <c>sha512</c>).</summary>
public enum NixHashAlgorithm
{
    Md5,
    Sha1,
    Sha256,
    Sha512,
}

/// <summary>The text encodings of a digest Nix reads and prints (<c>Base</c> in Nix's <c>hash.hh</c>).</summary>
public enum NixHashEncoding
{
    Base16,
    Nix32,
    Base64,
    Sri,
}

/// <summary>A digest together with its algorithm, as Nix writes it in narinfo files, derivations and flags.</summary>
public sealed class NixHash : IEquatable<NixHash>
{
    private readonly byte[] _digest;

    public NixHash(NixHashAlgorithm algorithm, ReadOnlySpan<byte> digest)
    {
        var expected = GetDigestLength(algorithm);
        if (digest.Length != expected)
            throw new ArgumentException($"a {GetName(algorithm)} digest is {expected} bytes, not {digest.Length}", nameof(digest));
        Algorithm = algorithm;
        _digest = digest.ToArray();
    }

    public NixHashAlgorithm Algorithm { get; }

    public ReadOnlySpan<byte> Digest => _digest;

    public static int GetDigestLength(NixHashAlgorithm algorithm) => algorithm switch
    {
        NixHashAlgorithm.Md5 => 16,
        NixHashAlgorithm.Sha1 => 20,
        NixHashAlgorithm.Sha256 => 32,
        NixHashAlgorithm.Sha512 => 64,
        _ => throw new ArgumentOutOfRangeException(nameof(algorithm), algorithm, null),
    };

    public static string GetName(NixHashAlgorithm algorithm) => algorithm switch
    {
        NixHashAlgorithm.Md5 => "md5",
        NixHashAlgorithm.Sha1 => "sha1",
        NixHashAlgorithm.Sha256 => "sha256",
        NixHashAlgorithm.Sha512 => "sha512",
        _ => throw new ArgumentOutOfRangeException(nameof(algorithm), algorithm, null),
    };

    public static bool TryParseAlgorithm(ReadOnlySpan<char> name, out NixHashAlgorithm algorithm)
    {
        switch (name)
        {
            case "md5": algorithm = NixHashAlgorithm.Md5; return true;
            case "sha1": algorithm = NixHashAlgorithm.Sha1; return true;
            case "sha256": algorithm = NixHashAlgorithm.Sha256; return true;
            case "sha512": algorithm = NixHashAlgorithm.Sha512; return true;
            default: algorithm = default; return false;
        }
    }

    /// <summary>
    /// Parses a hash that names its algorithm: <c>algo:digest</c> with the digest in base16, nix32 or
    /// base64 (told apart by length), or SRI <c>algo-base64</c> (Nix <c>Hash::parseAnyPrefixed</c>).
    /// </summary>
    public static NixHash Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var (algorithm, digest, isSri) = SplitPrefix(text);
        return ParseDigest(text, digest, algorithm, isSri);
    }

    /// <summary>
    /// Parses a hash of a known algorithm: bare (encoding told apart by length), or prefixed/SRI with a
    /// matching algorithm (Nix <c>Hash::parseAny</c> with a type).
    /// </summary>
    public static NixHash Parse(string text, NixHashAlgorithm algorithm)
    {
        ArgumentNullException.ThrowIfNull(text);
        var colon = text.IndexOf(':', StringComparison.Ordinal);
        var dash = text.IndexOf('-', StringComparison.Ordinal);
        if (colon < 0 && dash < 0)
            return ParseDigest(text, text, algorithm, isSri: false);
        var (named, digest, isSri) = SplitPrefix(text);
        if (named != algorithm)
            throw new NixHashFormatException(text, $"is a {GetName(named)} hash where {GetName(algorithm)} was expected");
        return ParseDigest(text, digest, algorithm, isSri);
    }

    /// <summary>Parses only the SRI form <c>algo-base64</c>.</summary>
    public static NixHash ParseSri(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var dash = text.IndexOf('-', StringComparison.Ordinal);
        if (dash < 0 || !TryParseAlgorithm(text.AsSpan(0, dash), out var algorithm))
            throw new NixHashFormatException(text, "is not an SRI hash 'algo-base64'");
        return ParseDigest(text, text.AsSpan(dash + 1), algorithm, isSri: true);
    }

    public static bool TryParse(string text, out NixHash? hash)
    {
        try
        {
            hash = Parse(text);
            return true;
        }
        catch (NixHashFormatException)
        {
            hash = null;
            return false;
        }
    }

    private static (NixHashAlgorithm Algorithm, ReadOnlyMemory<char> Digest, bool IsSri) SplitPrefix(string text)
    {
        // Nix tries "algo:" first and falls back to SRI "algo-".
        var colon = text.IndexOf(':', StringComparison.Ordinal);
        if (colon >= 0)
        {
            if (!TryParseAlgorithm(text.AsSpan(0, colon), out var algorithm))
                throw new NixHashFormatException(text, $"names unknown hash algorithm '{text[..colon]}'");
            return (algorithm, text.AsMemory(colon + 1), false);
        }
        var dash = text.IndexOf('-', StringComparison.Ordinal);
        if (dash >= 0)
        {
            if (!TryParseAlgorithm(text.AsSpan(0, dash), out var algorithm))
                throw new NixHashFormatException(text, $"names unknown hash algorithm '{text[..dash]}'");
            return (algorithm, text.AsMemory(dash + 1), true);
        }
        throw new NixHashFormatException(text, "does not name its algorithm ('algo:digest' or 'algo-base64')");
    }

    private static NixHash ParseDigest(string whole, ReadOnlyMemory<char> digestText, NixHashAlgorithm algorithm, bool isSri)
        => ParseDigest(whole, digestText.Span, algorithm, isSri);

    private static NixHash ParseDigest(string whole, ReadOnlySpan<char> text, NixHashAlgorithm algorithm, bool isSri)
    {
        var size = GetDigestLength(algorithm);
        Span<byte> digest = stackalloc byte[size];
        if (!isSri && text.Length == size * 2)
        {
            // Nix accepts either case of hex digit.
            if (System.Buffers.OperationStatus.Done != Convert.FromHexString(text, digest, out _, out var written) || written != size)
                throw new NixHashFormatException(whole, "has an invalid base16 digest");
        }
        else if (!isSri && text.Length == Nix32.GetEncodedLength(size))
        {
            if (!Nix32.TryDecode(text, digest))
                throw new NixHashFormatException(whole, "has an invalid nix32 digest");
        }
        else if (isSri || text.Length == Base64.GetEncodedLength(size))
        {
            if (!Base64.TryDecodeExact(text, digest))
                throw new NixHashFormatException(whole, $"has an invalid {(isSri ? "SRI" : "base64")} digest for {GetName(algorithm)}");
        }
        else
        {
            throw new NixHashFormatException(whole, $"has wrong length for a {GetName(algorithm)} digest");
        }
        return new NixHash(algorithm, digest);
    }

    public string ToBase16() => Convert.ToHexStringLower(_digest);

    public string ToNix32() => Nix32.Encode(_digest);

    public string ToBase64() => Convert.ToBase64String(_digest);

    public string ToSri() => GetName(Algorithm) + "-" + ToBase64();

    /// <summary>Prints the digest, with an <c>algo:</c> prefix unless bare; SRI always names its algorithm.</summary>
    public string ToString(NixHashEncoding encoding, bool includeAlgorithm = true)
    {
        if (encoding == NixHashEncoding.Sri)
            return ToSri();
        var digest = encoding switch
        {
            NixHashEncoding.Base16 => ToBase16(),
            NixHashEncoding.Nix32 => ToNix32(),
            NixHashEncoding.Base64 => ToBase64(),
            _ => throw new ArgumentOutOfRangeException(nameof(encoding), encoding, null),
        };
        return includeAlgorithm ? GetName(Algorithm) + ":" + digest : digest;
    }

    /// <summary><c>algo:nix32</c>, the form narinfo files use (Nix <c>to_string(Base32, true)</c>).</summary>
    public override string ToString() => ToString(NixHashEncoding.Nix32);

    public static NixHash Compute(NixHashAlgorithm algorithm, ReadOnlySpan<byte> data)
    {
        using var hasher = new NixHasher(algorithm);
        hasher.Append(data);
        return hasher.Finish();
    }

    public static async Task<NixHash> ComputeAsync(NixHashAlgorithm algorithm, Stream stream, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(stream);
        using var hasher = new NixHasher(algorithm);
        var buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(81920);
        try
        {
            int read;
            while ((read = await stream.ReadAsync(buffer, cancellationToken).ConfigureAwait(false)) > 0)
                hasher.Append(buffer.AsSpan(0, read));
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
        }
        return hasher.Finish();
    }

    public bool Equals(NixHash? other) =>
        other is not null && Algorithm == other.Algorithm && _digest.AsSpan().SequenceEqual(other._digest);

    public override bool Equals(object? obj) => Equals(obj as NixHash);

    public override int GetHashCode()
    {
        var h = new HashCode();
        h.Add(Algorithm);
        h.AddBytes(_digest);
        return h.ToHashCode();
    }

    public static bool operator ==(NixHash? left, NixHash? right) => left is null ? right is null : left.Equals(right);

    public static bool operator !=(NixHash? left, NixHash? right) => !(left == right);
}

/// <summary>Hashes data fed in pieces, counting the bytes, for checking a stream against a NarHash/NarSize.</summary>
public sealed class NixHasher : IDisposable
{
    private readonly IncrementalHash _hash;

    public NixHasher(NixHashAlgorithm algorithm)
    {
        Algorithm = algorithm;
        _hash = IncrementalHash.CreateHash(algorithm switch
        {
            NixHashAlgorithm.Md5 => HashAlgorithmName.MD5,
            NixHashAlgorithm.Sha1 => HashAlgorithmName.SHA1,
            NixHashAlgorithm.Sha256 => HashAlgorithmName.SHA256,
            NixHashAlgorithm.Sha512 => HashAlgorithmName.SHA512,
            _ => throw new ArgumentOutOfRangeException(nameof(algorithm), algorithm, null),
        });
    }

    public NixHashAlgorithm Algorithm { get; }

    public long BytesHashed { get; private set; }

    public void Append(ReadOnlySpan<byte> data)
    {
        _hash.AppendData(data);
        BytesHashed += data.Length;
    }

    /// <summary>Returns the hash of everything appended and starts over.</summary>
    public NixHash Finish()
    {
        Span<byte> digest = stackalloc byte[NixHash.GetDigestLength(Algorithm)];
        _hash.GetHashAndReset(digest);
        BytesHashed = 0;
        return new NixHash(Algorithm, digest);
    }

    public void Dispose() => _hash.Dispose();
}

/// <summary>A hash string that Nix would reject; the message names the text and the reason.</summary>
public sealed class NixHashFormatException(string text, string reason)
    : FormatException($"hash '{text}' {reason}")
{
    public string Text { get; } = text;
}
