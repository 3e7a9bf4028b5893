namespace LazyStore.Nix;

/// <summary>What is wrong with a metadata file (narinfo, nix-cache-info, a derivation).</summary>
public enum MetadataErrorKind
{
    /// <summary>A required field is absent.</summary>
    MissingField,

    /// <summary>A field that may appear once appears again.</summary>
    DuplicateField,

    /// <summary>A field's value does not parse or breaks a rule.</summary>
    InvalidValue,

    /// <summary>A line is not <c>Key: value</c>.</summary>
    MalformedLine,

    /// <summary>The text breaks the format's grammar: something else was expected at an offset.</summary>
    Syntax,
}

/// <summary>A malformed metadata file: says which kind of error, which field and which line (1-based).</summary>
public abstract class MetadataFormatException : FormatException
{
    private protected MetadataFormatException(string document, MetadataErrorKind kind, string? field, int? line, string reason, Exception? inner)
        : base(Describe(document, kind, field, line, reason), inner)
    {
        Kind = kind;
        Field = field;
        Line = line;
    }

    public MetadataErrorKind Kind { get; }

    /// <summary>The field concerned, when the error is about one.</summary>
    public string? Field { get; }

    /// <summary>The 1-based line, when the error is about one.</summary>
    public int? Line { get; }

    private static string Describe(string document, MetadataErrorKind kind, string? field, int? line, string reason)
    {
        var where = line is { } l ? $" line {l}" : "";
        var what = field is not null ? $" field {field}" : "";
        return $"{document}{where}{what}: {reason} ({kind})";
    }
}
