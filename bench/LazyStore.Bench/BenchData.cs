using LazyStore.Nix.Nar;

namespace LazyStore.Bench;

/// <summary>
/// The benchmark corpus: one NAR of real files from this machine (the .NET runtime's libraries, shared
/// libraries, documentation), never random bytes, which compressors pass through untouched. Compressed
/// copies are made once by the standard tools and reused across runs.
/// </summary>
internal sealed class BenchData
{
    private BenchData(string narPath, string description)
    {
        NarPath = narPath;
        Description = description;
    }

    public string NarPath { get; }

    public long NarBytes => new FileInfo(NarPath).Length;

    public string Description { get; }

    public static BenchData Prepare(BenchOptions options)
    {
        var runtime = Path.GetDirectoryName(typeof(object).Assembly.Location)!;
        var dotnetRoot = Path.GetFullPath(Path.Combine(runtime, "..", "..", ".."));
        var sources = new[]
        {
            ("1-dotnet-shared", Path.Combine(dotnetRoot, "shared")),
            ("2-share-doc", "/usr/share/doc"),
            ("3-share-locale", "/usr/share/locale"),
            ("4-lib", "/usr/lib/x86_64-linux-gnu"),
        }.Where(s => Directory.Exists(s.Item2)).ToList();

        var nar = Path.Combine(options.WorkDir, $"corpus-{options.MinNarBytes >> 20}M.nar");
        var manifest = nar + ".sources";
        if (!File.Exists(nar))
        {
            var used = new List<string>();
            var partial = nar + ".tmp";
            using (var output = File.Create(partial))
            using (var writer = new NarWriter(output, leaveOpen: true))
            {
                writer.BeginDirectory();
                foreach (var (name, dir) in sources.OrderBy(s => s.Item1, StringComparer.Ordinal))
                {
                    if (writer.Position >= options.MinNarBytes)
                        break;
                    writer.BeginEntry(name);
                    writer.WritePath(dir);
                    used.Add(dir);
                }
                writer.EndDirectory();
            }
            File.WriteAllLines(manifest, used);
            File.Move(partial, nar);
        }
        var trees = File.Exists(manifest) ? string.Join(", ", File.ReadAllLines(manifest)) : "unknown trees";
        return new BenchData(nar, $"{new FileInfo(nar).Length / 1e6:F0} MB NAR of real files ({trees})");
    }

    /// <summary>The NAR compressed by the standard tool, made once.</summary>
    public string Compressed(string tool, string extension, params string[] compressArgs)
    {
        var path = NarPath + extension;
        if (File.Exists(path))
            return path;
        var partial = path + ".tmp";
        Measure.Shell($"{tool} {string.Join(' ', compressArgs)} -c < '{NarPath}' > '{partial}'");
        File.Move(partial, path);
        return path;
    }
}
