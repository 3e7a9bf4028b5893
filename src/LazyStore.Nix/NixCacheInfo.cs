using System.Globalization;
using System.Text;

namespace LazyStore.Nix;

/// <summary>
/// A binary cache's <c>nix-cache-info</c>: its store directory, whether it welcomes mass queries, and
/// its priority (lower is preferred). Nix reads it in <c>BinaryCacheStore::init</c>.
/// </summary>
/// <remarks>
/// Nix trims each value and skips lines without a colon; unknown keys are ignored here as there.
/// Stricter than Nix: a non-empty line without a colon, a repeated known key, WantMassQuery other than
/// 0/1 (Nix reads anything but "1" as false) and a Priority that is not a plain integer (Nix's
/// <c>std::stoi</c> takes "40abc" as 40) are errors, so a mistyped or non-cache file is not taken for
/// an empty configuration.
/// </remarks>
public sealed class NixCacheInfo
{
    public const string FileName = "nix-cache-info";

    /// <summary>The cache's store directory; Nix refuses a cache whose StoreDir differs from its own.</summary>
    public StoreDirectory? StoreDirectory { get; init; }

    public bool? WantMassQuery { get; init; }

    public int? Priority { get; init; }

    public static NixCacheInfo Parse(string text, string? source = null)
    {
        ArgumentNullException.ThrowIfNull(text);
        source ??= FileName;
        StoreDirectory? storeDirectory = null;
        bool? wantMassQuery = null;
        int? priority = null;
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var lines = text.Split('\n');
        for (var i = 0; i < lines.Length; i++)
        {
            var lineNumber = i + 1;
            var line = lines[i];
            if (line.Length == 0)
                continue;
            var colon = line.IndexOf(':', StringComparison.Ordinal);
            if (colon <= 0)
                throw new NixCacheInfoFormatException(source, MetadataErrorKind.MalformedLine, null, lineNumber, $"'{line}' is not 'Key: value'");
            var key = line[..colon];
            var value = line[(colon + 1)..].Trim(' ', '\t', '\r');
            if (key is "StoreDir" or "WantMassQuery" or "Priority" && !seen.Add(key))
                throw new NixCacheInfoFormatException(source, MetadataErrorKind.DuplicateField, key, lineNumber, "appears more than once");
            switch (key)
            {
                case "StoreDir":
                    try
                    {
                        storeDirectory = new StoreDirectory(value);
                    }
                    catch (StorePathFormatException e)
                    {
                        throw new NixCacheInfoFormatException(source, MetadataErrorKind.InvalidValue, key, lineNumber, e.Message, e);
                    }
                    break;
                case "WantMassQuery":
                    wantMassQuery = value switch
                    {
                        "1" => true,
                        "0" => false,
                        _ => throw new NixCacheInfoFormatException(source, MetadataErrorKind.InvalidValue, key, lineNumber, $"'{value}' is not 0 or 1"),
                    };
                    break;
                case "Priority":
                    if (value.Length == 0 || !int.TryParse(value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var p))
                        throw new NixCacheInfoFormatException(source, MetadataErrorKind.InvalidValue, key, lineNumber, $"'{value}' is not a 32-bit integer");
                    priority = p;
                    break;
                default:
                    break;
            }
        }
        return new NixCacheInfo { StoreDirectory = storeDirectory, WantMassQuery = wantMassQuery, Priority = priority };
    }

    /// <summary>The file text: StoreDir, WantMassQuery, Priority, each only when set (the order cache.nixos.org serves).</summary>
    public override string ToString()
    {
        var s = new StringBuilder();
        if (StoreDirectory is not null)
            s.Append("StoreDir: ").Append(StoreDirectory.Path).Append('\n');
        if (WantMassQuery is { } wantMassQuery)
            s.Append("WantMassQuery: ").Append(wantMassQuery ? '1' : '0').Append('\n');
        if (Priority is { } priority)
            s.Append("Priority: ").Append(priority.ToString(CultureInfo.InvariantCulture)).Append('\n');
        return s.ToString();
    }
}

/// <summary>A malformed nix-cache-info.</summary>
public sealed class NixCacheInfoFormatException : MetadataFormatException
{
    public NixCacheInfoFormatException(string source, MetadataErrorKind kind, string? field, int? line, string reason, Exception? inner = null)
        : base(source, kind, field, line, reason, inner)
    {
    }
}
