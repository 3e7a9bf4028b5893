using System.Globalization;
using System.Text;
using System.Text.Json;

namespace LazyStore.Nix.Nar;

/// <summary>
/// The metadata tree of a NAR: what <c>nix nar ls --json -R</c> prints and what a binary cache's
/// <c>&lt;hash&gt;.ls</c> file holds under <c>root</c>. No payloads.
/// </summary>
public abstract class NarListingNode
{
    private protected NarListingNode()
    {
    }

    public abstract NarEntryType Type { get; }
}

public sealed class NarListingDirectory : NarListingNode
{
    public override NarEntryType Type => NarEntryType.Directory;

    /// <summary>Entries in Nix's order (the bytes of their UTF-8 names).</summary>
    public SortedDictionary<string, NarListingNode> Entries { get; } = new(NarGrammar.NameComparer);
}

public sealed class NarListingRegular(long size, bool executable, long? narOffset) : NarListingNode
{
    public override NarEntryType Type => NarEntryType.Regular;

    public long Size { get; } = size;

    public bool IsExecutable { get; } = executable;

    /// <summary>
    /// Offset of the payload within the NAR. Present when computed from a NAR; a cache's listing may carry
    /// it too, but such a value is only a claim (cache.nixos.org stopped writing it) and must not be trusted.
    /// </summary>
    public long? NarOffset { get; } = narOffset;
}

public sealed class NarListingSymlink(string target) : NarListingNode
{
    public override NarEntryType Type => NarEntryType.Symlink;

    public string Target { get; } = target;
}

/// <summary>A <c>.ls</c> listing or a <c>nix nar ls</c> tree was malformed.</summary>
public sealed class NarListingFormatException(string message, Exception? inner = null) : FormatException(message, inner);

public static class NarListing
{
    /// <summary>The listing format version Nix writes (<c>"version": 1</c>).</summary>
    public const int Version = 1;

    /// <summary>Reads a whole NAR and returns its tree, with the payload offset of every regular file.</summary>
    public static NarListingNode FromNar(NarReader reader)
    {
        ArgumentNullException.ThrowIfNull(reader);
        NarListingNode? root = null;
        var directories = new List<NarListingDirectory>();
        while (reader.GetNextEntry() is { } entry)
        {
            // Entries arrive parents first, so the open directories are exactly the entry's ancestors.
            if (directories.Count > entry.Depth)
                directories.RemoveRange(entry.Depth, directories.Count - entry.Depth);
            NarListingNode node = entry.Type switch
            {
                NarEntryType.Directory => new NarListingDirectory(),
                NarEntryType.Symlink => new NarListingSymlink(entry.LinkTarget!),
                _ => new NarListingRegular(entry.Size, entry.IsExecutable, entry.PayloadOffset),
            };
            if (entry.Depth == 0)
            {
                root = node;
            }
            else
            {
                directories[entry.Depth - 1].Entries.Add(entry.Name, node);
            }
            if (node is NarListingDirectory directory)
                directories.Add(directory);
        }
        return root ?? throw new InvalidOperationException("the NAR reader yielded no root node");
    }

    public static NarListingNode FromNar(Stream nar)
    {
        using var reader = new NarReader(nar, leaveOpen: true);
        return FromNar(reader);
    }

    /// <summary>
    /// Resolves an absolute path inside the NAR ("/" or "" is the root) as Nix does: components separated
    /// by '/', empty and "." components ignored. Returns null when nothing is there; symlinks are not followed.
    /// </summary>
    public static NarListingNode? Find(NarListingNode root, string path) => Find(root, SplitPath(path));

    /// <summary>Resolves the components of a path inside the NAR, as <see cref="SplitPath"/> returns them.</summary>
    public static NarListingNode? Find(NarListingNode root, IReadOnlyList<string> components)
    {
        var node = root;
        foreach (var component in components)
        {
            if (node is not NarListingDirectory directory || !directory.Entries.TryGetValue(component, out var child))
                return null;
            node = child;
        }
        return node;
    }

    /// <summary>Components of a path within a NAR; throws for a relative or upward path.</summary>
    public static IReadOnlyList<string> SplitPath(string path)
    {
        if (path.Length > 0 && path[0] != '/')
            throw new ArgumentException($"not an absolute path: '{path}'");
        var components = new List<string>();
        foreach (var c in path.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            if (c == ".")
                continue;
            if (c == "..")
                throw new ArgumentException($"'..' is not allowed in a path inside a NAR: '{path}'");
            components.Add(c);
        }
        return components;
    }

    /// <summary>
    /// The JSON Nix prints for <c>nix nar ls --json</c>: with <paramref name="recursive"/> the whole subtree,
    /// otherwise a directory's entries are empty objects. Byte-for-byte Nix's output (key order, escaping).
    /// </summary>
    public static string ToJson(NarListingNode node, bool recursive = true)
    {
        var sb = new StringBuilder();
        WriteNode(sb, node, recursive, includeOffsets: true);
        return sb.ToString();
    }

    /// <summary>A <c>.ls</c> file as <c>nix copy ?write-nar-listing=true</c> writes it.</summary>
    public static string ToListingFile(NarListingNode root, bool includeOffsets = true)
    {
        var sb = new StringBuilder();
        sb.Append("{\"version\":").Append(Version).Append(",\"root\":");
        WriteNode(sb, root, recursive: true, includeOffsets);
        sb.Append('}');
        return sb.ToString();
    }

    /// <summary>
    /// Parses a <c>.ls</c> listing file, rejecting anything that is not a valid NAR tree or that has more than
    /// <paramref name="maxEntries"/> entries (the root counts as one).
    /// </summary>
    public static NarListingNode ParseListingFile(ReadOnlySpan<byte> json, int maxEntries = int.MaxValue)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxEntries, 1);
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(json.ToArray(), new JsonDocumentOptions { MaxDepth = NarGrammar.DefaultMaxDepth + 4 });
        }
        catch (JsonException e)
        {
            throw new NarListingFormatException($"listing is not valid JSON: {e.Message}", e);
        }
        using (document)
        {
            var top = document.RootElement;
            if (top.ValueKind != JsonValueKind.Object)
                throw new NarListingFormatException("listing: expected a JSON object at the top level");
            if (!top.TryGetProperty("version", out var version) || version.ValueKind != JsonValueKind.Number
                || !version.TryGetInt32(out var v) || v != Version)
                throw new NarListingFormatException($"listing: expected \"version\": {Version}");
            if (!top.TryGetProperty("root", out var root))
                throw new NarListingFormatException("listing: missing \"root\"");
            var budget = maxEntries;
            return ParseNode(root, "/", 0, ref budget, maxEntries);
        }
    }

    private static NarListingNode ParseNode(JsonElement element, string path, int depth, ref int budget, int maxEntries)
    {
        if (element.ValueKind != JsonValueKind.Object)
            throw new NarListingFormatException($"listing entry '{path}': expected an object");
        if (--budget < 0)
            throw new NarListingFormatException($"listing has more than {maxEntries} entries, the most accepted");
        if (depth > NarGrammar.DefaultMaxDepth)
            throw new NarListingFormatException($"listing entry '{path}': nested deeper than {NarGrammar.DefaultMaxDepth}");
        var type = RequireString(element, "type", path);
        switch (type)
        {
            case "regular":
                long size = RequireNonNegative(element, "size", path)
                    ?? throw new NarListingFormatException($"listing entry '{path}': missing \"size\"");
                bool executable = false;
                if (element.TryGetProperty("executable", out var exe))
                {
                    if (exe.ValueKind is not (JsonValueKind.True or JsonValueKind.False))
                        throw new NarListingFormatException($"listing entry '{path}': \"executable\" must be a boolean");
                    executable = exe.GetBoolean();
                }
                return new NarListingRegular(size, executable, RequireNonNegative(element, "narOffset", path));
            case "symlink":
                var target = RequireString(element, "target", path);
                if (NarGrammar.CheckTarget(Encoding.UTF8.GetBytes(target)) is { } targetRule)
                    throw new NarListingFormatException($"listing entry '{path}': expected {targetRule}");
                return new NarListingSymlink(target);
            case "directory":
                var directory = new NarListingDirectory();
                if (!element.TryGetProperty("entries", out var entries) || entries.ValueKind != JsonValueKind.Object)
                    throw new NarListingFormatException($"listing entry '{path}': a directory needs an \"entries\" object");
                foreach (var property in entries.EnumerateObject())
                {
                    var childPath = path == "/" ? "/" + property.Name : path + "/" + property.Name;
                    if (NarGrammar.CheckName(Encoding.UTF8.GetBytes(property.Name)) is { } rule)
                        throw new NarListingFormatException($"listing entry '{childPath}': expected {rule}");
                    if (!directory.Entries.TryAdd(property.Name, ParseNode(property.Value, childPath, depth + 1, ref budget, maxEntries)))
                        throw new NarListingFormatException($"listing entry '{childPath}' appears twice");
                }
                return directory;
            default:
                throw new NarListingFormatException($"listing entry '{path}': unknown type \"{type}\"");
        }
    }

    private static string RequireString(JsonElement element, string key, string path)
    {
        if (!element.TryGetProperty(key, out var value) || value.ValueKind != JsonValueKind.String)
            throw new NarListingFormatException($"listing entry '{path}': missing string \"{key}\"");
        return value.GetString()!;
    }

    private static long? RequireNonNegative(JsonElement element, string key, string path)
    {
        if (!element.TryGetProperty(key, out var value))
            return null;
        if (value.ValueKind != JsonValueKind.Number || !value.TryGetInt64(out var number) || number < 0)
            throw new NarListingFormatException($"listing entry '{path}': \"{key}\" must be a non-negative integer");
        return number;
    }

    private static void WriteNode(StringBuilder sb, NarListingNode node, bool recursive, bool includeOffsets)
    {
        switch (node)
        {
            case NarListingRegular regular:
                sb.Append("{\"type\":\"regular\",\"size\":").Append(regular.Size.ToString(CultureInfo.InvariantCulture));
                if (regular.IsExecutable)
                    sb.Append(",\"executable\":true");
                // Nix omits a zero narOffset (`if (st.narOffset)` in nix/ls.cc).
                if (includeOffsets && regular.NarOffset is > 0 and var offset)
                    sb.Append(",\"narOffset\":").Append(offset.ToString(CultureInfo.InvariantCulture));
                sb.Append('}');
                break;
            case NarListingSymlink symlink:
                sb.Append("{\"type\":\"symlink\",\"target\":");
                AppendJsonString(sb, symlink.Target);
                sb.Append('}');
                break;
            case NarListingDirectory directory:
                sb.Append("{\"type\":\"directory\",\"entries\":{");
                bool first = true;
                foreach (var (name, child) in directory.Entries)
                {
                    if (!first)
                        sb.Append(',');
                    first = false;
                    AppendJsonString(sb, name);
                    sb.Append(':');
                    if (recursive)
                        WriteNode(sb, child, recursive, includeOffsets);
                    else
                        sb.Append("{}");
                }
                sb.Append("}}");
                break;
        }
    }

    /// <summary>Nix's JSON string escaping (libutil/json.cc): quote, backslash and control characters only.</summary>
    private static void AppendJsonString(StringBuilder sb, string value)
    {
        sb.Append('"');
        foreach (var c in value)
        {
            switch (c)
            {
                case '"':
                case '\\':
                    sb.Append('\\').Append(c);
                    break;
                case '\n':
                    sb.Append("\\n");
                    break;
                case '\r':
                    sb.Append("\\r");
                    break;
                case '\t':
                    sb.Append("\\t");
                    break;
                default:
                    if (c < 0x20)
                        sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                    else
                        sb.Append(c);
                    break;
            }
        }
        sb.Append('"');
    }
}
