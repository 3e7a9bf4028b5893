using System.Text;

namespace LazyStore.Nix.Nar;

/// <summary>
/// The NAR grammar, written down once; <see cref="NarReader"/> and <see cref="NarWriter"/> both enforce it.
/// <code>
/// nar       = str("nix-archive-1") node
/// node      = str("(") str("type") body str(")")
/// body      = str("regular") [str("executable") str("")] str("contents") str(bytes)
///           | str("symlink") str("target") str(target)
///           | str("directory") { str("entry") str("(") str("name") str(name) str("node") node str(")") }
/// str(s)    = u64le(len(s)) s zero-padding-to-8
/// </code>
/// Directory entries are strictly ascending by the bytes of their names (Nix dumps a sorted map);
/// names are non-empty, contain neither '/' nor NUL, are not "." or "..", and fit NAME_MAX.
/// </summary>
public static class NarGrammar
{
    public const string Magic = "nix-archive-1";

    /// <summary>Linux NAME_MAX: no file system Nix restores to accepts a longer name.</summary>
    public const int MaxNameLength = 255;

    /// <summary>Linux PATH_MAX less the terminating NUL: readlink(2) cannot return more.</summary>
    public const int MaxTargetLength = 4095;

    /// <summary>Default bound on directory nesting; keeps a hostile NAR from exhausting memory.</summary>
    public const int DefaultMaxDepth = 1024;

    internal static ReadOnlySpan<byte> MagicBytes => "nix-archive-1"u8;
    internal static ReadOnlySpan<byte> Open => "("u8;
    internal static ReadOnlySpan<byte> Close => ")"u8;
    internal static ReadOnlySpan<byte> Type => "type"u8;
    internal static ReadOnlySpan<byte> Regular => "regular"u8;
    internal static ReadOnlySpan<byte> Executable => "executable"u8;
    internal static ReadOnlySpan<byte> Contents => "contents"u8;
    internal static ReadOnlySpan<byte> Symlink => "symlink"u8;
    internal static ReadOnlySpan<byte> Target => "target"u8;
    internal static ReadOnlySpan<byte> Directory => "directory"u8;
    internal static ReadOnlySpan<byte> Entry => "entry"u8;
    internal static ReadOnlySpan<byte> Name => "name"u8;
    internal static ReadOnlySpan<byte> Node => "node"u8;

    /// <summary>Bytes of zero padding that follow a string of <paramref name="length"/> bytes.</summary>
    public static int Padding(ulong length) => (int)((8 - (length & 7)) & 7);

    /// <summary>Returns null when <paramref name="name"/> is a valid entry name, else the rule it breaks.</summary>
    public static string? CheckName(ReadOnlySpan<byte> name)
    {
        if (name.IsEmpty)
            return "a non-empty entry name";
        if (name.Length > MaxNameLength)
            return $"an entry name of at most {MaxNameLength} bytes";
        if (name.IndexOfAny((byte)'/', (byte)0) >= 0)
            return "an entry name without '/' or NUL";
        if (name.SequenceEqual("."u8) || name.SequenceEqual(".."u8))
            return "an entry name other than '.' and '..'";
        return null;
    }

    /// <summary>Returns null when <paramref name="target"/> is a valid symlink target, else the rule it breaks.</summary>
    public static string? CheckTarget(ReadOnlySpan<byte> target)
    {
        if (target.IsEmpty)
            return "a non-empty symlink target";
        if (target.Length > MaxTargetLength)
            return $"a symlink target of at most {MaxTargetLength} bytes";
        if (target.Contains((byte)0))
            return "a symlink target without NUL";
        return null;
    }

    /// <summary>Nix's entry order: the names' bytes, compared as unsigned.</summary>
    public static int CompareNames(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b) => a.SequenceCompareTo(b);

    /// <summary>
    /// Nix's entry order for .NET strings, without encoding them: UTF-8 preserves the order of Unicode
    /// scalar values, so comparing runes gives the byte order of the encoded names (a lone surrogate
    /// counts as U+FFFD, as the UTF-8 encoder writes it).
    /// </summary>
    public static int CompareNames(string a, string b)
    {
        var left = a.EnumerateRunes();
        var right = b.EnumerateRunes();
        while (true)
        {
            bool hasLeft = left.MoveNext();
            bool hasRight = right.MoveNext();
            if (!hasLeft || !hasRight)
                return hasLeft == hasRight ? 0 : hasLeft ? 1 : -1;
            int order = left.Current.Value.CompareTo(right.Current.Value);
            if (order != 0)
                return order;
        }
    }

    /// <summary>Orders .NET strings as Nix orders the UTF-8 names they encode.</summary>
    public static readonly IComparer<string> NameComparer = Comparer<string>.Create(static (a, b) => CompareNames(a, b));

    internal static string Show(ReadOnlySpan<byte> bytes)
    {
        const int limit = 64;
        var shown = Encoding.UTF8.GetString(bytes.Length > limit ? bytes[..limit] : bytes);
        var sb = new StringBuilder("'");
        foreach (var c in shown)
        {
            if (c < 0x20 || c == 0x7f)
                sb.Append($"\\x{(int)c:x2}");
            else
                sb.Append(c);
        }
        sb.Append('\'');
        if (bytes.Length > limit)
            sb.Append($"… ({bytes.Length} bytes)");
        return sb.ToString();
    }
}
