using System.Text;
using FsCheck;
using FsCheck.Fluent;
using LazyStore.Nix.Nar;

namespace LazyStore.Tests.Support;

/// <summary>An in-memory file tree used to generate NARs and check what readers report.</summary>
public abstract record TreeNode;

public sealed record TreeFile(byte[] Contents, bool Executable) : TreeNode;

public sealed record TreeLink(string Target) : TreeNode;

public sealed record TreeDirectory(SortedDictionary<string, TreeNode> Entries) : TreeNode;

public static class TreeModel
{
    private static readonly string[] NameParts = ["a", "b", "Z", "-", "_", ".", "é", "日本", "😀", "x y", "\u00ff", "\uFF21", "0"];

    public static Gen<string> Names =>
        Gen.Choose(1, 4).SelectMany(n => Gen.Elements(NameParts).ListOf(n))
            .Select(l => string.Concat(l))
            .Where(n => n != "." && n != "..");

    public static Gen<TreeNode> Nodes(int depth)
    {
        var file =
            from size in Gen.Choose(0, 300)
            from seed in Gen.Choose(0, 255)
            from executable in Gen.Elements(true, false)
            select (TreeNode)new TreeFile(Enumerable.Range(0, size).Select(i => (byte)((i * 31 + seed) % 256)).ToArray(), executable);
        var link = Gen.Elements("a", "../x", "/nix/store/abc", "日本/😀", "dangling target").Select(t => (TreeNode)new TreeLink(t));
        if (depth <= 0)
            return Gen.Frequency((3, file), (1, link), (1, Gen.Constant((TreeNode)new TreeDirectory(new(NarGrammar.NameComparer)))));
        var entry = from name in Names from child in Nodes(depth - 1) select (name, child);
        var dir = Gen.Choose(0, 5).SelectMany(n => entry.ListOf(n)).Select(entries =>
        {
            var d = new SortedDictionary<string, TreeNode>(NarGrammar.NameComparer);
            foreach (var (name, node) in entries)
                d.TryAdd(name, node);
            return (TreeNode)new TreeDirectory(d);
        });
        return Gen.Frequency((2, file), (1, link), (3, dir));
    }

    public static Arbitrary<TreeNode> Trees => Gen.Sized(s => Nodes(Math.Min(4, s / 20 + 1))).ToArbitrary();

    public static byte[] ToNar(TreeNode node)
    {
        using var ms = new MemoryStream();
        using (var writer = new NarWriter(ms, leaveOpen: true))
            Write(writer, node);
        return ms.ToArray();
    }

    public static void Write(NarWriter writer, TreeNode node)
    {
        switch (node)
        {
            case TreeFile f:
                writer.WriteRegular(f.Contents, f.Executable);
                break;
            case TreeLink l:
                writer.WriteSymlink(l.Target);
                break;
            case TreeDirectory d:
                writer.BeginDirectory();
                foreach (var (name, child) in d.Entries)
                {
                    writer.BeginEntry(name);
                    Write(writer, child);
                }
                writer.EndDirectory();
                break;
        }
    }

    /// <summary>A flat description: one line per node in NAR order, for comparisons.</summary>
    public static List<string> Describe(TreeNode node)
    {
        var lines = new List<string>();
        Describe(node, "", lines);
        return lines;
    }

    private static void Describe(TreeNode node, string path, List<string> lines)
    {
        switch (node)
        {
            case TreeFile f:
                lines.Add($"regular {path} {(f.Executable ? "x" : "-")} {Convert.ToHexString(f.Contents)}");
                break;
            case TreeLink l:
                lines.Add($"symlink {path} {l.Target}");
                break;
            case TreeDirectory d:
                lines.Add($"directory {path}");
                foreach (var (name, child) in d.Entries)
                    Describe(child, path.Length == 0 ? name : path + "/" + name, lines);
                break;
        }
    }

    /// <summary>The same description, read back from a NAR.</summary>
    public static List<string> DescribeNar(byte[] nar)
    {
        var lines = new List<string>();
        using var reader = new NarReader(new MemoryStream(nar));
        while (reader.GetNextEntry() is { } e)
        {
            switch (e.Type)
            {
                case NarEntryType.Regular:
                    using (var payload = e.OpenPayload())
                    using (var ms = new MemoryStream())
                    {
                        payload.CopyTo(ms);
                        lines.Add($"regular {e.Path} {(e.IsExecutable ? "x" : "-")} {Convert.ToHexString(ms.ToArray())}");
                    }
                    break;
                case NarEntryType.Symlink:
                    lines.Add($"symlink {e.Path} {e.LinkTarget}");
                    break;
                default:
                    lines.Add($"directory {e.Path}");
                    break;
            }
        }
        return lines;
    }

    public static string Utf8(byte[] b) => Encoding.UTF8.GetString(b);
}
