using System.Text;

namespace LazyStore.Tests.Support;

/// <summary>File trees for cross-checks: every NAR feature, and real data from the machine.</summary>
public static class FixtureTrees
{
    /// <summary>Symlinks (relative, absolute, dangling), executables, empty files and directories, deep nesting, odd names.</summary>
    public static void WriteEdgeCases(string root)
    {
        Directory.CreateDirectory(root);
        File.WriteAllText(Path.Combine(root, "plain.txt"), "hello\n");
        File.WriteAllBytes(Path.Combine(root, "empty"), []);
        var tool = Path.Combine(root, "tool.sh");
        File.WriteAllText(tool, "#!/bin/sh\necho tool\n");
        File.SetUnixFileMode(tool, File.GetUnixFileMode(tool) | UnixFileMode.UserExecute);
        var emptyExe = Path.Combine(root, "empty-exe");
        File.WriteAllBytes(emptyExe, []);
        File.SetUnixFileMode(emptyExe, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        Directory.CreateDirectory(Path.Combine(root, "empty-dir"));
        File.CreateSymbolicLink(Path.Combine(root, "rel-link"), "plain.txt");
        File.CreateSymbolicLink(Path.Combine(root, "abs-link"), "/nix/store/00000000000000000000000000000000-x/bin/sh");
        File.CreateSymbolicLink(Path.Combine(root, "dangling"), "no/such/file");
        File.CreateSymbolicLink(Path.Combine(root, "dir-link"), "empty-dir");
        var names = Path.Combine(root, "names");
        Directory.CreateDirectory(names);
        foreach (var name in new[] { "é", "日本語", "😀", "\uFF21", "with space", "tab\there", "new\nline", "quote\"back\\slash", ".hidden", "-dash", "Z", "a", "\u00ff" })
            File.WriteAllText(Path.Combine(names, name), name);
        var deep = root;
        for (int i = 0; i < 60; i++)
            deep = Path.Combine(deep, i % 2 == 0 ? "d" : "ü");
        Directory.CreateDirectory(deep);
        File.WriteAllText(Path.Combine(deep, "bottom"), "deep\n");
        var sizes = Path.Combine(root, "sizes");
        Directory.CreateDirectory(sizes);
        foreach (var size in new[] { 1, 7, 8, 9, 15, 16, 17, 4095, 4096, 65536, 65537, 300_001 })
            File.WriteAllBytes(Path.Combine(sizes, $"f{size}"), RealBytes(size));
    }

    /// <summary>A tree holding one file of at least <paramref name="minBytes"/> built from real libraries.</summary>
    public static void WriteLargeFile(string root, long minBytes)
    {
        Directory.CreateDirectory(root);
        File.WriteAllText(Path.Combine(root, "README"), "large\n");
        using var output = File.Create(Path.Combine(root, "large.bin"));
        while (output.Length < minBytes)
        {
            foreach (var file in RealFiles())
            {
                using var input = File.OpenRead(file);
                input.CopyTo(output);
                if (output.Length >= minBytes)
                    break;
            }
        }
    }

    /// <summary>The first <paramref name="size"/> bytes of the real files on this machine, in order (never random).</summary>
    public static byte[] RealBytes(int size)
    {
        var result = new byte[size];
        int filled = 0;
        foreach (var file in RealFiles())
        {
            if (filled == size)
                break;
            using var input = File.OpenRead(file);
            filled += input.ReadAtLeast(result.AsSpan(filled), size - filled, throwOnEndOfStream: false);
        }
        return result;
    }

    private static readonly Lazy<IReadOnlyList<string>> RealFileList = new(() =>
        new[] { Path.GetDirectoryName(typeof(object).Assembly.Location)!, "/usr/lib/x86_64-linux-gnu", "/usr/share/doc" }
            .Where(Directory.Exists)
            .SelectMany(r => Directory.EnumerateFiles(r, "*", new EnumerationOptions { RecurseSubdirectories = true, IgnoreInaccessible = true }))
            .Where(f => new FileInfo(f) is { LinkTarget: null, Length: > 0 })
            .Order(StringComparer.Ordinal)
            .ToList());

    /// <summary>Regular files of shared libraries and documentation, in a stable order; listed once per test run.</summary>
    public static IReadOnlyList<string> RealFiles() => RealFileList.Value;

    /// <summary>
    /// Directories of this machine chosen at run time with <paramref name="seed"/>, so the cross-checks
    /// meet trees nobody picked in advance: subdirectories of /usr/share, /usr/lib and the .NET runtime.
    /// </summary>
    public static IReadOnlyList<string> PickRealTrees(int seed, int count)
    {
        var random = new Random(seed);
        var runtime = Path.GetDirectoryName(typeof(object).Assembly.Location)!;
        var dotnetRoot = Path.GetFullPath(Path.Combine(runtime, "..", "..", ".."));
        var candidates = new[] { "/usr/share", "/usr/lib", "/usr/share/doc", "/usr/share/locale", Path.Combine(dotnetRoot, "sdk"), Path.Combine(dotnetRoot, "packs") }
            .Where(Directory.Exists)
            .SelectMany(d => Directory.EnumerateDirectories(d).Where(IsPlainTree))
            .Order(StringComparer.Ordinal)
            .ToList();
        return candidates.OrderBy(_ => random.Next()).Take(count).ToList();
    }

    private static bool IsPlainTree(string dir)
    {
        if (new DirectoryInfo(dir).LinkTarget is not null)
            return false;
        long bytes = 0;
        int files = 0;
        foreach (var f in Directory.EnumerateFileSystemEntries(dir, "*", new EnumerationOptions { RecurseSubdirectories = true, IgnoreInaccessible = false, AttributesToSkip = 0 }))
        {
            var info = new FileInfo(f);
            if (info.LinkTarget is null && info.Exists)
                bytes += info.Length;
            if (++files > 20_000 || bytes > 300_000_000)
                return false;
        }
        return files > 0;
    }

    public static string Utf8(byte[] bytes) => Encoding.UTF8.GetString(bytes);
}
