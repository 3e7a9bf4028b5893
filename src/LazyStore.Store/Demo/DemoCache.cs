using LazyStore.Nix;
using LazyStore.Nix.Compression;
using LazyStore.Nix.Signatures;
using LazyStore.Store.Substituters;

namespace LazyStore.Store.Demo;

/// <summary>What the demonstration cache holds: a program, a documentation tree, and a path referring to both.</summary>
public sealed record DemoCacheContents(NarInfo Program, NarInfo Documentation, NarInfo Environment, string ProgramFile, IReadOnlyList<string> ProgramArguments)
{
    public IReadOnlyList<NarInfo> All => [Program, Documentation, Environment];
}

/// <summary>
/// Builds the signed binary cache <c>lazystore demo</c> mounts, from files every Debian machine has:
/// a static busybox when installed (else coreutils' <c>ls</c>), and <c>/usr/share/doc</c>.
/// </summary>
public static class DemoCache
{
    private static readonly string[] ProgramCandidates = ["/bin/busybox", "/usr/bin/busybox", "/usr/bin/ls", "/bin/ls"];

    public static DemoCacheContents Build(string cacheDirectory, string stagingDirectory, StoreDirectory storeDirectory, SecretKey key)
    {
        var program = ProgramCandidates.FirstOrDefault(File.Exists)
            ?? throw new FileNotFoundException($"no program to demonstrate with: none of {string.Join(", ", ProgramCandidates)} exists");
        var name = Path.GetFileName(program);
        var programTree = Path.Combine(stagingDirectory, name);
        Directory.CreateDirectory(Path.Combine(programTree, "bin"));
        var copy = Path.Combine(programTree, "bin", name);
        File.Copy(program, copy, overwrite: true);
        File.SetUnixFileMode(copy, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
            | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
        IReadOnlyList<string> arguments = name == "busybox" ? ["echo", "hello from a lazy store path"] : ["--version"];

        var writer = new BinaryCacheWriter(cacheDirectory, CompressionMethod.Zstd, key, storeDirectory);
        var programInfo = writer.AddTree(programTree, name);
        var documentation = writer.AddTree(Directory.Exists("/usr/share/doc") ? "/usr/share/doc" : StageFallbackDocs(stagingDirectory), "share-doc");

        var environment = Path.Combine(stagingDirectory, "environment");
        Directory.CreateDirectory(environment);
        File.WriteAllText(Path.Combine(environment, "README"),
            $"A store path that refers to {programInfo.StorePath.ToFullPath(storeDirectory)} and {documentation.StorePath.ToFullPath(storeDirectory)}.\n");
        File.CreateSymbolicLink(Path.Combine(environment, "bin"), programInfo.StorePath.ToFullPath(storeDirectory) + "/bin");
        File.CreateSymbolicLink(Path.Combine(environment, "doc"), documentation.StorePath.ToFullPath(storeDirectory));
        var environmentInfo = writer.AddTree(environment, "demo-environment", [programInfo.StorePath, documentation.StorePath]);
        return new DemoCacheContents(programInfo, documentation, environmentInfo, "bin/" + name, arguments);
    }

    private static string StageFallbackDocs(string stagingDirectory)
    {
        var docs = Path.Combine(stagingDirectory, "doc");
        Directory.CreateDirectory(docs);
        File.WriteAllText(Path.Combine(docs, "README"), "This machine has no /usr/share/doc; this small tree stands in for it.\n");
        return docs;
    }
}
