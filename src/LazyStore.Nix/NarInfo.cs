using System.Globalization;
using System.Text;
using LazyStore.Nix.Signatures;

namespace LazyStore.Nix;

/// <summary>
/// A binary cache's <c>&lt;hash&gt;.narinfo</c>: where a store path's NAR is, how it is compressed, what it
/// hashes to, what it references, and who signed it (Nix <c>libstore/nar-info.cc</c>).
/// </summary>
/// <remarks>
/// <para>Reading follows Nix 2.8's <c>NarInfo</c> constructor: <c>Key: value</c> lines; StorePath, URL
/// (non-empty), NarHash and NarSize (non-zero) are required; an absent or empty Compression means
/// <c>bzip2</c>; <c>Deriver: unknown-deriver</c> means no deriver; References is space-separated base
/// names; hashes may be written in any encoding Nix reads (including SRI). Unknown keys are ignored, as
/// Nix ignores them, so writing never reproduces them.</para>
/// <para>Stricter than Nix: every field except Sig may appear once (Nix lets a later line win, except
/// for References and CA); a line must be <c>Key: value</c> (Nix takes the value two characters after
/// the colon without looking at the space). A missing newline after the last line is accepted.</para>
/// <para>References and signatures are sets, as in Nix (<c>StorePathSet</c>, <c>std::set</c>): kept
/// sorted (ordinal) without duplicates, which is also the order <see cref="ToString"/> writes them.</para>
/// </remarks>
public sealed class NarInfo
{
    /// <summary>What Nix assumes when a narinfo has no Compression line.</summary>
    public const string DefaultCompression = "bzip2";

    /// <summary>A Deriver value Nix reads as "no deriver" (nar-info.cc); the writer omits the line instead.</summary>
    public const string UnknownDeriver = "unknown-deriver";

    private IReadOnlyList<StorePath> _references = [];
    private IReadOnlyList<string> _signatures = [];

    public required StorePath StorePath { get; init; }

    /// <summary>The store directory the StorePath line and the fingerprint print full paths in.</summary>
    public StoreDirectory StoreDirectory { get; init; } = StoreDirectory.Default;

    /// <summary>Where the (compressed) NAR is, relative to the cache root.</summary>
    public required string Url { get; init; }

    /// <summary>The raw Compression value (<c>none</c>, <c>xz</c>, <c>bzip2</c>, <c>zstd</c>, …).</summary>
    public string Compression { get; init; } = DefaultCompression;

    /// <summary>Hash of the file at <see cref="Url"/>.</summary>
    public NixHash? FileHash { get; init; }

    /// <summary>Size of the file at <see cref="Url"/>.</summary>
    public ulong? FileSize { get; init; }

    /// <summary>Hash of the uncompressed NAR.</summary>
    public required NixHash NarHash { get; init; }

    /// <summary>Size of the uncompressed NAR.</summary>
    public required ulong NarSize { get; init; }

    /// <summary>Sorted, without duplicates.</summary>
    public IReadOnlyList<StorePath> References
    {
        get => _references;
        init => _references = [.. new SortedSet<StorePath>(value ?? throw new ArgumentNullException(nameof(value)))];
    }

    public StorePath? Deriver { get; init; }

    public string? System { get; init; }

    /// <summary>The Sig values as written (<c>name:base64</c>), sorted ordinally, without duplicates.
    /// They are parsed only when verifying, as Nix does, so an odd signature by an untrusted key does
    /// not make the whole narinfo unreadable.</summary>
    public IReadOnlyList<string> Signatures
    {
        get => _signatures;
        init => _signatures = [.. new SortedSet<string>(value ?? throw new ArgumentNullException(nameof(value)), StringComparer.Ordinal)];
    }

    /// <summary>The CA value as written (<c>text:sha256:…</c> or <c>fixed:[r:]algo:…</c>), checked on reading.</summary>
    public string? ContentAddress { get; init; }

    public static NarInfo Parse(string text, StoreDirectory? storeDirectory = null, string? source = null)
    {
        ArgumentNullException.ThrowIfNull(text);
        return new Reader(text, storeDirectory ?? StoreDirectory.Default, source ?? "narinfo").Read();
    }

    public static NarInfo Parse(ReadOnlySpan<byte> utf8, StoreDirectory? storeDirectory = null, string? source = null)
    {
        string text;
        try
        {
            text = new UTF8Encoding(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true).GetString(utf8);
        }
        catch (DecoderFallbackException e)
        {
            throw new NarInfoFormatException(source ?? "narinfo", MetadataErrorKind.MalformedLine, null, null, "is not valid UTF-8", e);
        }
        return Parse(text, storeDirectory, source);
    }

    /// <summary>
    /// The text Nix's <c>NarInfo::to_string</c> writes, in its field order: StorePath, URL, Compression,
    /// FileHash, FileSize, NarHash, NarSize, References, Deriver, System, Sig…, CA. Hashes are printed
    /// <c>algo:nix32</c>. Unlike Nix, FileHash and FileSize are left out when unknown (Nix asserts them).
    /// </summary>
    public override string ToString()
    {
        var s = new StringBuilder(512);
        Line(s, "StorePath", StoreDirectory.Print(StorePath));
        Line(s, "URL", Url);
        Line(s, "Compression", Compression);
        if (FileHash is not null)
            Line(s, "FileHash", FileHash.ToString());
        if (FileSize is { } fileSize)
            Line(s, "FileSize", fileSize.ToString(CultureInfo.InvariantCulture));
        Line(s, "NarHash", NarHash.ToString());
        Line(s, "NarSize", NarSize.ToString(CultureInfo.InvariantCulture));
        Line(s, "References", string.Join(' ', References.Select(r => r.BaseName)));
        if (Deriver is not null)
            Line(s, "Deriver", Deriver.BaseName);
        if (!string.IsNullOrEmpty(System))
            Line(s, "System", System);
        foreach (var signature in Signatures)
            Line(s, "Sig", signature);
        if (ContentAddress is not null)
            Line(s, "CA", ContentAddress);
        return s.ToString();
    }

    private static void Line(StringBuilder s, string key, string value) => s.Append(key).Append(": ").Append(value).Append('\n');

    /// <summary>
    /// What a signature signs (Nix <c>ValidPathInfo::fingerprint</c>):
    /// <c>1;&lt;store path&gt;;sha256:&lt;nix32 NarHash&gt;;&lt;NarSize&gt;;&lt;full reference paths, comma-separated&gt;</c>.
    /// NarHash must be SHA-256 (Nix's narinfo writer asserts it, and the Perl binding's
    /// <c>fingerprintPath</c> refuses others) and NarSize non-zero (Nix: "size is not known").
    /// </summary>
    public string Fingerprint()
    {
        if (NarHash.Algorithm != NixHashAlgorithm.Sha256)
            throw new NarInfoFormatException("narinfo", MetadataErrorKind.InvalidValue, "NarHash", null,
                $"signature fingerprint of {StoreDirectory.Print(StorePath)} needs a sha256 NarHash, not {NixHash.GetName(NarHash.Algorithm)}");
        if (NarSize == 0)
            throw new NarInfoFormatException("narinfo", MetadataErrorKind.InvalidValue, "NarSize", null,
                $"signature fingerprint of {StoreDirectory.Print(StorePath)} needs a known (non-zero) NarSize");
        return string.Create(CultureInfo.InvariantCulture,
            $"1;{StoreDirectory.Print(StorePath)};{NarHash};{NarSize};{string.Join(',', References.Select(StoreDirectory.Print))}");
    }

    /// <summary>
    /// How many Sig values are valid signatures by a trusted key (Nix <c>ValidPathInfo::checkSignatures</c>).
    /// A signature's key is chosen by name; when several trusted keys share a name the first is used, as
    /// Nix's name-keyed map keeps the first. Malformed Sig values count as not valid.
    /// Content-addressed paths are not exempted here (Nix trusts them without signatures after
    /// recomputing their path; that needs the NAR).
    /// </summary>
    public int CountValidSignatures(IEnumerable<PublicKey> trustedKeys)
    {
        ArgumentNullException.ThrowIfNull(trustedKeys);
        var byName = new Dictionary<string, PublicKey>(StringComparer.Ordinal);
        foreach (var key in trustedKeys)
            byName.TryAdd(key.Name, key);
        if (byName.Count == 0 || Signatures.Count == 0)
            return 0;
        var fingerprint = Encoding.UTF8.GetBytes(Fingerprint());
        var valid = 0;
        foreach (var text in Signatures)
        {
            if (Signature.TryParse(text, out var signature)
                && byName.TryGetValue(signature!.KeyName, out var key)
                && key.Verify(fingerprint, signature))
            {
                valid++;
            }
        }
        return valid;
    }

    /// <summary>True when some Sig is a valid signature by one of <paramref name="trustedKeys"/>.</summary>
    public bool HasValidSignature(IEnumerable<PublicKey> trustedKeys) => CountValidSignatures(trustedKeys) > 0;

    /// <summary>A copy with a signature by <paramref name="key"/> added (Nix <c>ValidPathInfo::sign</c>).</summary>
    public NarInfo Sign(SecretKey key)
    {
        ArgumentNullException.ThrowIfNull(key);
        var signature = key.Sign(Fingerprint());
        var copy = (NarInfo)MemberwiseClone();
        copy._signatures = [.. new SortedSet<string>(Signatures.Append(signature.ToString()), StringComparer.Ordinal)];
        return copy;
    }

    private sealed class Reader(string text, StoreDirectory storeDirectory, string source)
    {
        private readonly HashSet<string> _seen = new(StringComparer.Ordinal);
        private int _line;

        public NarInfo Read()
        {
            StorePath? storePath = null;
            string? url = null;
            string? compression = null;
            NixHash? fileHash = null;
            ulong? fileSize = null;
            NixHash? narHash = null;
            ulong? narSize = null;
            var references = new List<StorePath>();
            StorePath? deriver = null;
            string? system = null;
            var signatures = new List<string>();
            string? contentAddress = null;

            var lines = text.Split('\n');
            // The newline after the last line leaves one empty piece; a missing newline leaves none.
            var count = lines[^1].Length == 0 ? lines.Length - 1 : lines.Length;
            for (var i = 0; i < count; i++)
            {
                _line = i + 1;
                var line = lines[i];
                var colon = line.IndexOf(':', StringComparison.Ordinal);
                if (colon <= 0)
                    throw Error(MetadataErrorKind.MalformedLine, null, $"'{line}' is not 'Key: value'");
                var key = line[..colon];
                string value;
                if (colon + 1 == line.Length)
                    value = "";
                else if (line[colon + 1] == ' ')
                    value = line[(colon + 2)..];
                else
                    throw Error(MetadataErrorKind.MalformedLine, key, $"'{line}' has no space after the colon");

                if (key != "Sig" && IsKnown(key) && !_seen.Add(key))
                    throw Error(MetadataErrorKind.DuplicateField, key, "appears more than once");

                switch (key)
                {
                    case "StorePath":
                        storePath = Parse(key, () => storeDirectory.ParsePath(value));
                        break;
                    case "URL":
                        if (value.Length == 0)
                            throw Error(MetadataErrorKind.InvalidValue, key, "is empty");
                        url = value;
                        break;
                    case "Compression":
                        compression = value;
                        break;
                    case "FileHash":
                        fileHash = Parse(key, () => NixHash.Parse(value));
                        break;
                    case "FileSize":
                        fileSize = ParseSize(key, value);
                        break;
                    case "NarHash":
                        narHash = Parse(key, () => NixHash.Parse(value));
                        break;
                    case "NarSize":
                        narSize = ParseSize(key, value);
                        if (narSize == 0)
                            throw Error(MetadataErrorKind.InvalidValue, key, "is 0; a NAR is never empty");
                        break;
                    case "References":
                        foreach (var reference in value.Split(' ', StringSplitOptions.RemoveEmptyEntries))
                            references.Add(Parse(key, () => StorePath.FromBaseName(reference)));
                        break;
                    case "Deriver":
                        if (value != UnknownDeriver)
                            deriver = Parse(key, () => StorePath.FromBaseName(value));
                        break;
                    case "System":
                        system = value;
                        break;
                    case "Sig":
                        if (value.Length == 0)
                            throw Error(MetadataErrorKind.InvalidValue, key, "is empty");
                        signatures.Add(value);
                        break;
                    case "CA":
                        CheckContentAddress(key, value);
                        contentAddress = value;
                        break;
                    default:
                        break;
                }
            }

            _line = 0;
            return new NarInfo
            {
                StorePath = storePath ?? throw Missing("StorePath"),
                StoreDirectory = storeDirectory,
                Url = url ?? throw Missing("URL"),
                Compression = string.IsNullOrEmpty(compression) ? DefaultCompression : compression,
                FileHash = fileHash,
                FileSize = fileSize,
                NarHash = narHash ?? throw Missing("NarHash"),
                NarSize = narSize ?? throw Missing("NarSize"),
                References = references,
                Deriver = deriver,
                System = system,
                Signatures = signatures,
                ContentAddress = contentAddress,
            };
        }

        private static bool IsKnown(string key) => key is "StorePath" or "URL" or "Compression" or "FileHash" or "FileSize"
            or "NarHash" or "NarSize" or "References" or "Deriver" or "System" or "CA";

        private ulong ParseSize(string key, string value)
        {
            // Decimal digits only: no sign, no spaces, no exponent.
            if (value.Length == 0 || !value.All(char.IsAsciiDigit) || !ulong.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var size))
                throw Error(MetadataErrorKind.InvalidValue, key, $"'{value}' is not an unsigned 64-bit decimal number");
            return size;
        }

        // Nix 2.8 content-address.cc parseContentAddress: "text:" + a sha256 hash, or "fixed:" + optional "r:" + a hash.
        private void CheckContentAddress(string key, string value)
        {
            NixHash hash;
            if (value.StartsWith("text:", StringComparison.Ordinal))
            {
                hash = Parse(key, () => NixHash.Parse(value["text:".Length..]));
                if (hash.Algorithm != NixHashAlgorithm.Sha256)
                    throw Error(MetadataErrorKind.InvalidValue, key, $"'{value}' is a text content address whose hash is not sha256");
            }
            else if (value.StartsWith("fixed:", StringComparison.Ordinal))
            {
                var rest = value["fixed:".Length..];
                if (rest.StartsWith("r:", StringComparison.Ordinal))
                    rest = rest[2..];
                Parse(key, () => NixHash.Parse(rest));
            }
            else
            {
                throw Error(MetadataErrorKind.InvalidValue, key, $"'{value}' is not a content address ('text:…' or 'fixed:…')");
            }
        }

        private T Parse<T>(string key, Func<T> parse)
        {
            try
            {
                return parse();
            }
            catch (FormatException e)
            {
                throw Error(MetadataErrorKind.InvalidValue, key, e.Message, e);
            }
        }

        private NarInfoFormatException Missing(string key) => Error(MetadataErrorKind.MissingField, key, "is required");

        private NarInfoFormatException Error(MetadataErrorKind kind, string? field, string reason, Exception? inner = null) =>
            new(source, kind, field, _line == 0 ? null : _line, reason, inner);
    }
}

/// <summary>A malformed narinfo.</summary>
public sealed class NarInfoFormatException : MetadataFormatException
{
    public NarInfoFormatException(string source, MetadataErrorKind kind, string? field, int? line, string reason, Exception? inner = null)
        : base(source, kind, field, line, reason, inner)
    {
    }
}
