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

/// <summary>
/// One node of a listing as <see cref="NarListing.ParseListingEntries"/> returns it: the index of its directory
/// in the same list (-1 for the root), its name there ("" for the root), and what it is.
/// </summary>
public readonly record struct NarListingEntry(int Parent, string Name, NarEntryType Type, long Size, bool IsExecutable, long? NarOffset, string? Target);

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
        var entries = ParseListingEntries(json, maxEntries);
        var nodes = new NarListingNode[entries.Count];
        for (int i = 0; i < entries.Count; i++)
        {
            var entry = entries[i];
            nodes[i] = entry.Type switch
            {
                NarEntryType.Regular => new NarListingRegular(entry.Size, entry.IsExecutable, entry.NarOffset),
                NarEntryType.Symlink => new NarListingSymlink(entry.Target!),
                _ => new NarListingDirectory(),
            };
            if (entry.Parent >= 0)
                ((NarListingDirectory)nodes[entry.Parent]).Entries.Add(entry.Name, nodes[i]);
        }
        return nodes[0];
    }

    /// <summary>
    /// Parses a <c>.ls</c> listing file into its entries in NAR order (each directory's entries in byte order of
    /// their names, parents first), as <see cref="ParseListingFile"/> checks them. The JSON is read as it comes,
    /// never held as a document: for a listing of hundreds of thousands of entries, the flat list is most of
    /// the memory it takes.
    /// </summary>
    public static List<NarListingEntry> ParseListingEntries(ReadOnlySpan<byte> json, int maxEntries = int.MaxValue)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxEntries, 1);
        // A directory is two levels of JSON (its object and its "entries" object).
        var reader = new Utf8JsonReader(json, new JsonReaderOptions { MaxDepth = (2 * NarGrammar.DefaultMaxDepth) + 8 });
        var parsed = new List<NarListingEntry>();
        try
        {
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
                throw new NarListingFormatException("listing: expected a JSON object at the top level");
            bool sawVersion = false, sawRoot = false;
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                if (reader.ValueTextEquals("version"u8))
                {
                    reader.Read();
                    if (reader.TokenType != JsonTokenType.Number || !reader.TryGetInt32(out var version) || version != Version)
                        throw new NarListingFormatException($"listing: expected \"version\": {Version}");
                    sawVersion = true;
                }
                else if (reader.ValueTextEquals("root"u8))
                {
                    reader.Read();
                    parsed.Clear();
                    ParseNode(ref reader, "/", "", -1, 0, parsed, maxEntries);
                    sawRoot = true;
                }
                else
                {
                    reader.Read();
                    reader.Skip();
                }
            }
            if (reader.Read())
                throw new NarListingFormatException("listing: something follows the top-level object");
            if (!sawVersion)
                throw new NarListingFormatException($"listing: expected \"version\": {Version}");
            if (!sawRoot)
                throw new NarListingFormatException("listing: missing \"root\"");
        }
        catch (JsonException e)
        {
            throw new NarListingFormatException($"listing is not valid JSON: {e.Message}", e);
        }
        return InNarOrder(parsed);
    }

    /// <summary>Reads one node (the reader is on its first token) and what is inside it into <paramref name="parsed"/>, in the JSON's order.</summary>
    private static void ParseNode(ref Utf8JsonReader reader, string path, string name, int parent, int depth, List<NarListingEntry> parsed, int maxEntries)
    {
        if (reader.TokenType != JsonTokenType.StartObject)
            throw new NarListingFormatException($"listing entry '{path}': expected an object");
        if (parsed.Count >= maxEntries)
            throw new NarListingFormatException($"listing has more than {maxEntries} entries, the most accepted");
        if (depth > NarGrammar.DefaultMaxDepth)
            throw new NarListingFormatException($"listing entry '{path}': nested deeper than {NarGrammar.DefaultMaxDepth}");
        var id = parsed.Count;
        parsed.Add(default);
        // Members come in any order, so each is kept (or marked malformed) and judged once the type is known.
        string? type = null, target = null;
        (bool Present, long? Value) size = default, offset = default;
        (bool Present, bool? Value) executable = default;
        (bool Present, bool Valid) entries = default;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("type"u8))
                type = ReadString(ref reader);
            else if (reader.ValueTextEquals("target"u8))
                target = ReadString(ref reader);
            else if (reader.ValueTextEquals("size"u8))
                size = (true, ReadNonNegative(ref reader));
            else if (reader.ValueTextEquals("narOffset"u8))
                offset = (true, ReadNonNegative(ref reader));
            else if (reader.ValueTextEquals("executable"u8))
            {
                reader.Read();
                executable = (true, reader.TokenType switch { JsonTokenType.True => true, JsonTokenType.False => false, _ => null });
                reader.Skip();
            }
            else if (reader.ValueTextEquals("entries"u8))
            {
                reader.Read();
                entries = (true, reader.TokenType == JsonTokenType.StartObject);
                if (!entries.Valid)
                {
                    reader.Skip();
                    continue;
                }
                while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
                {
                    var childName = reader.GetString()!;
                    var childPath = ChildPath(path, childName);
                    if (NarGrammar.CheckName(Encoding.UTF8.GetBytes(childName)) is { } rule)
                        throw new NarListingFormatException($"listing entry '{childPath}': expected {rule}");
                    reader.Read();
                    ParseNode(ref reader, childPath, childName, id, depth + 1, parsed, maxEntries);
                }
            }
            else
            {
                reader.Read();
                reader.Skip();
            }
        }
        NarListingEntry entry;
        switch (type)
        {
            case null:
                throw new NarListingFormatException($"listing entry '{path}': missing string \"type\"");
            case "regular":
                if (!size.Present)
                    throw new NarListingFormatException($"listing entry '{path}': missing \"size\"");
                if (size.Value is null)
                    throw new NarListingFormatException($"listing entry '{path}': \"size\" must be a non-negative integer");
                if (executable is (true, null))
                    throw new NarListingFormatException($"listing entry '{path}': \"executable\" must be a boolean");
                if (offset is (true, null))
                    throw new NarListingFormatException($"listing entry '{path}': \"narOffset\" must be a non-negative integer");
                entry = new NarListingEntry(parent, name, NarEntryType.Regular, size.Value.Value, executable.Value ?? false, offset.Value, null);
                break;
            case "symlink":
                if (target is null)
                    throw new NarListingFormatException($"listing entry '{path}': missing string \"target\"");
                if (NarGrammar.CheckTarget(Encoding.UTF8.GetBytes(target)) is { } targetRule)
                    throw new NarListingFormatException($"listing entry '{path}': expected {targetRule}");
                entry = new NarListingEntry(parent, name, NarEntryType.Symlink, 0, false, null, target);
                break;
            case "directory":
                if (!entries.Valid)
                    throw new NarListingFormatException($"listing entry '{path}': a directory needs an \"entries\" object");
                entry = new NarListingEntry(parent, name, NarEntryType.Directory, 0, false, null, null);
                break;
            default:
                throw new NarListingFormatException($"listing entry '{path}': unknown type \"{type}\"");
        }
        // "entries" of anything but a directory mean nothing, as in Nix's reader: what was read of them goes.
        if (entry.Type != NarEntryType.Directory && parsed.Count > id + 1)
            parsed.RemoveRange(id + 1, parsed.Count - id - 1);
        parsed[id] = entry;
    }

    private static string? ReadString(ref Utf8JsonReader reader)
    {
        reader.Read();
        var value = reader.TokenType == JsonTokenType.String ? reader.GetString() : null;
        reader.Skip();
        return value;
    }

    private static long? ReadNonNegative(ref Utf8JsonReader reader)
    {
        reader.Read();
        long? value = reader.TokenType == JsonTokenType.Number && reader.TryGetInt64(out var number) && number >= 0 ? number : null;
        reader.Skip();
        return value;
    }

    /// <summary>
    /// Reorders entries read in the JSON's order (parents before children) into NAR order: each directory's
    /// entries sorted by the bytes of their names, depth first. Two entries of one name are refused.
    /// </summary>
    private static List<NarListingEntry> InNarOrder(List<NarListingEntry> parsed)
    {
        var count = parsed.Count;
        var childStarts = new int[count + 1];
        for (int i = 1; i < count; i++)
            childStarts[parsed[i].Parent + 1]++;
        for (int i = 0; i < count; i++)
            childStarts[i + 1] += childStarts[i];
        var children = new int[Math.Max(0, count - 1)];
        var filled = new int[count];
        for (int i = 1; i < count; i++)
            children[childStarts[parsed[i].Parent] + filled[parsed[i].Parent]++] = i;
        var byName = Comparer<int>.Create((a, b) => NarGrammar.CompareNames(parsed[a].Name, parsed[b].Name));
        for (int d = 0; d < count; d++)
        {
            var (start, length) = (childStarts[d], childStarts[d + 1] - childStarts[d]);
            if (length < 2)
                continue;
            Array.Sort(children, start, length, byName);
            for (int i = start + 1; i < start + length; i++)
            {
                if (byName.Compare(children[i - 1], children[i]) == 0)
                    throw new NarListingFormatException($"listing entry '{PathOf(parsed, children[i])}' appears twice");
            }
        }
        // Depth first, each directory's entries in order: NAR order. Positions are assigned as entries are emitted.
        var result = new List<NarListingEntry>(count);
        var position = new int[count];
        var pending = new Stack<int>();
        pending.Push(0);
        while (pending.TryPop(out var old))
        {
            position[old] = result.Count;
            var e = parsed[old];
            result.Add(e with { Parent = e.Parent < 0 ? -1 : position[e.Parent] });
            for (int i = childStarts[old + 1] - 1; i >= childStarts[old]; i--)
                pending.Push(children[i]);
        }
        return result;
    }

    private static string PathOf(List<NarListingEntry> entries, int id)
    {
        var names = new List<string>();
        for (var i = id; i > 0; i = entries[i].Parent)
            names.Add(entries[i].Name);
        names.Reverse();
        return "/" + string.Join('/', names);
    }

    private static string ChildPath(string path, string name) => path == "/" ? "/" + name : path + "/" + name;

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
