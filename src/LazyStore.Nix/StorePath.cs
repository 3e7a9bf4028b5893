using System.Text;

namespace LazyStore.Nix;

/// <summary>
/// A store path's base name <c>&lt;hash&gt;-&lt;name&gt;</c>: 32 nix32 characters (a 20-byte digest),
/// a dash, and a name. Like Nix's <c>StorePath</c> it does not carry the store directory; a
/// <see cref="StoreDirectory"/> prints and parses full paths. Equality and ordering are by base name
/// (ordinal), as in Nix.
/// </summary>
public sealed class StorePath : IEquatable<StorePath>, IComparable<StorePath>
{
    /// <summary>Characters in the hash part (Nix <c>StorePath::HashLen</c>).</summary>
    public const int HashPartLength = 32;

    /// <summary>Bytes in the digest the hash part encodes.</summary>
    public const int DigestLength = 20;

    /// <summary>Longest allowed name (Nix <c>StorePath::MaxPathLen</c>, 211).</summary>
    public const int MaxNameLength = 211;

    private StorePath(string baseName)
    {
        BaseName = baseName;
    }

    /// <summary><c>&lt;hash&gt;-&lt;name&gt;</c>.</summary>
    public string BaseName { get; }

    public string HashPart => BaseName[..HashPartLength];

    public string Name => BaseName[(HashPartLength + 1)..];

    /// <summary>The 20 bytes the hash part encodes.</summary>
    public byte[] Digest => Nix32.Decode(BaseName.AsSpan(0, HashPartLength));

    /// <summary>Parses a base name <c>&lt;hash&gt;-&lt;name&gt;</c> (Nix's <c>StorePath(std::string_view)</c>).</summary>
    public static StorePath FromBaseName(string baseName)
    {
        ArgumentNullException.ThrowIfNull(baseName);
        Validate(baseName, baseName);
        return new StorePath(baseName);
    }

    public static bool TryFromBaseName(string baseName, out StorePath? path)
    {
        path = baseName is not null && Check(baseName, baseName) is null ? new StorePath(baseName) : null;
        return path is not null;
    }

    /// <summary>Builds a path from its digest and name.</summary>
    public static StorePath FromParts(ReadOnlySpan<byte> digest, string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (digest.Length != DigestLength)
            throw new ArgumentException($"a store path digest is {DigestLength} bytes, not {digest.Length}", nameof(digest));
        return FromBaseName(Nix32.Encode(digest) + "-" + name);
    }

    /// <summary>
    /// The path Nix gives a tree added to the store by content (<c>nix-store --add</c>, <c>builtins.path</c>):
    /// NAR-hashed with SHA-256 and named by Nix's <c>makeFixedOutputPath</c> for recursive ingestion
    /// (libstore/store-api.cc: <c>makeStorePath(makeType("source", references), hash, name)</c>).
    /// </summary>
    public static StorePath MakeSourcePath(NixHash narHash, string name, IEnumerable<StorePath> references, StoreDirectory? storeDirectory = null)
    {
        ArgumentNullException.ThrowIfNull(narHash);
        if (narHash.Algorithm != NixHashAlgorithm.Sha256)
            throw new ArgumentException("source paths are named by a SHA-256 NAR hash", nameof(narHash));
        ValidateName(name);
        var directory = storeDirectory ?? StoreDirectory.Default;
        var type = new StringBuilder("source");
        foreach (var reference in references.Order())
            type.Append(':').Append(directory.Print(reference));
        var fingerprint = $"{type}:sha256:{narHash.ToBase16()}:{directory.Path}:{name}";
        var full = System.Security.Cryptography.SHA256.HashData(Encoding.UTF8.GetBytes(fingerprint));
        // compressHash: fold the digest into 20 bytes by XOR (libutil/hash.cc).
        Span<byte> digest = stackalloc byte[DigestLength];
        for (var i = 0; i < full.Length; i++)
            digest[i % DigestLength] ^= full[i];
        return FromParts(digest, name);
    }

    /// <summary>Checks a name against Nix 2.8's <c>checkName</c>; throws <see cref="StorePathFormatException"/>.</summary>
    public static void ValidateName(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        var failure = CheckName(name, name);
        if (failure is not null)
            throw failure;
    }

    public static bool IsValidName(string name) => name is not null && CheckName(name, name) is null;

    /// <summary>The full path in <paramref name="storeDirectory"/> (default <c>/nix/store</c>).</summary>
    public string ToFullPath(StoreDirectory? storeDirectory = null) => (storeDirectory ?? StoreDirectory.Default).Print(this);

    public override string ToString() => BaseName;

    public bool Equals(StorePath? other) => other is not null && string.Equals(BaseName, other.BaseName, StringComparison.Ordinal);

    public override bool Equals(object? obj) => Equals(obj as StorePath);

    public override int GetHashCode() => StringComparer.Ordinal.GetHashCode(BaseName);

    public int CompareTo(StorePath? other) => other is null ? 1 : string.CompareOrdinal(BaseName, other.BaseName);

    public static bool operator ==(StorePath? left, StorePath? right) => left is null ? right is null : left.Equals(right);

    public static bool operator !=(StorePath? left, StorePath? right) => !(left == right);

    public static bool operator <(StorePath left, StorePath right) => Compare(left, right) < 0;

    public static bool operator >(StorePath left, StorePath right) => Compare(left, right) > 0;

    public static bool operator <=(StorePath left, StorePath right) => Compare(left, right) <= 0;

    public static bool operator >=(StorePath left, StorePath right) => Compare(left, right) >= 0;

    private static int Compare(StorePath? left, StorePath? right) =>
        left is null ? (right is null ? 0 : -1) : left.CompareTo(right);

    internal static void Validate(string shownPath, string baseName)
    {
        var failure = Check(shownPath, baseName);
        if (failure is not null)
            throw failure;
    }

    private static StorePathFormatException? Check(string shownPath, string baseName)
    {
        if (baseName.Length < HashPartLength + 1)
            return new(shownPath, StorePathRule.TooShort, $"is shorter than the {HashPartLength}-character hash part and a dash");
        for (var i = 0; i < HashPartLength; i++)
        {
            if (!Nix32.IsDigit(baseName[i]))
                return new(shownPath, StorePathRule.InvalidHashCharacter, $"has '{baseName[i]}' at offset {i} of its hash part, which is not a nix32 digit");
        }
        // Nix 2.8 skips this character unchecked; every store path Nix creates has a dash here.
        if (baseName[HashPartLength] != '-')
            return new(shownPath, StorePathRule.MissingDash, $"has '{baseName[HashPartLength]}' after its hash part instead of '-'");
        return CheckName(shownPath, baseName.AsSpan(HashPartLength + 1));
    }

    // Nix 2.8 libstore/path.cc checkName: non-empty, at most 211 characters, [A-Za-z0-9+-._?=].
    // A leading '.' is allowed in 2.8 (Nix 2.4 dropped the check; builtins.toFile "." works there).
    private static StorePathFormatException? CheckName(string shownPath, ReadOnlySpan<char> name)
    {
        if (name.IsEmpty)
            return new(shownPath, StorePathRule.EmptyName, "has an empty name");
        if (name.Length > MaxNameLength)
            return new(shownPath, StorePathRule.NameTooLong, $"has a name of {name.Length} characters, longer than {MaxNameLength}");
        for (var i = 0; i < name.Length; i++)
        {
            var c = name[i];
            if (!(char.IsAsciiLetterOrDigit(c) || c is '+' or '-' or '.' or '_' or '?' or '='))
                return new(shownPath, StorePathRule.InvalidNameCharacter, $"has illegal character '{c}' in its name");
        }
        return null;
    }
}

/// <summary>
/// The directory holding store paths, <c>/nix/store</c> by default: absolute, without a trailing
/// slash, and canonical (Nix's <c>storeDir</c> setting is canonicalised the same way).
/// </summary>
public sealed class StoreDirectory : IEquatable<StoreDirectory>
{
    public static StoreDirectory Default { get; } = new("/nix/store");

    public StoreDirectory(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (path.Length < 2 || path[0] != '/' || path[^1] == '/'
            || path.Contains("//", StringComparison.Ordinal) || path.Contains('\0', StringComparison.Ordinal)
            || path.Split('/').Any(segment => segment is "." or ".."))
        {
            throw new StorePathFormatException(path, StorePathRule.InvalidStoreDirectory,
                "is not a canonical absolute directory (no trailing slash, no '.', '..' or empty segments, not '/')");
        }
        Path = path;
    }

    public string Path { get; }

    /// <summary>Parses <c>&lt;storeDir&gt;/&lt;hash&gt;-&lt;name&gt;</c>; anything below the store path is rejected.</summary>
    public StorePath ParsePath(string fullPath)
    {
        ArgumentNullException.ThrowIfNull(fullPath);
        if (!IsDirectChild(fullPath))
            throw new StorePathFormatException(fullPath, StorePathRule.NotInStoreDirectory, $"is not directly inside the store directory {Path}");
        var baseName = fullPath[(Path.Length + 1)..];
        StorePath.Validate(fullPath, baseName);
        return StorePath.FromBaseName(baseName);
    }

    public bool TryParsePath(string fullPath, out StorePath? path)
    {
        path = null;
        return fullPath is not null && IsDirectChild(fullPath)
            && StorePath.TryFromBaseName(fullPath[(Path.Length + 1)..], out path);
    }

    public string Print(StorePath path)
    {
        ArgumentNullException.ThrowIfNull(path);
        return Path + "/" + path.BaseName;
    }

    public override string ToString() => Path;

    public bool Equals(StoreDirectory? other) => other is not null && string.Equals(Path, other.Path, StringComparison.Ordinal);

    public override bool Equals(object? obj) => Equals(obj as StoreDirectory);

    public override int GetHashCode() => StringComparer.Ordinal.GetHashCode(Path);

    private bool IsDirectChild(string fullPath) =>
        fullPath.Length > Path.Length + 1
        && fullPath.StartsWith(Path, StringComparison.Ordinal)
        && fullPath[Path.Length] == '/'
        && fullPath.IndexOf('/', Path.Length + 1) < 0;
}

/// <summary>Which store path rule a path broke.</summary>
public enum StorePathRule
{
    TooShort,
    InvalidHashCharacter,
    MissingDash,
    EmptyName,
    NameTooLong,
    InvalidNameCharacter,
    NotInStoreDirectory,
    InvalidStoreDirectory,
}

/// <summary>A store path (or store directory) that breaks one of Nix's rules; names the path and the rule.</summary>
public sealed class StorePathFormatException(string path, StorePathRule rule, string reason)
    : FormatException($"{(rule == StorePathRule.InvalidStoreDirectory ? "store directory" : "store path")} '{path}' {reason} ({rule})")
{
    public string Path { get; } = path;

    public StorePathRule Rule { get; } = rule;
}
