using LazyStore.Nix;
using LazyStore.Nix.Compression;
using LazyStore.Nix.Signatures;
using LazyStore.Store.Substituters;
using LazyStore.Tests.Support;

namespace LazyStore.Tests.Mount;

/// <summary>
/// The caches every mount test serves, built once per run: LazyStore's own signed caches (zstd, and an
/// uncompressed one a test may damage) and, on first use, one written by the real <c>nix copy</c>.
/// </summary>
public sealed class MountCaches : IDisposable
{
    public const long LargeFileBytes = 100L * 1024 * 1024;

    private readonly TempDir _dir = new("lazystore-mount-caches-");
    private readonly Lazy<RealNixMountCache> _realNix;

    public MountCaches()
    {
        Key = SecretKey.Generate("mount-test-1");
        _realNix = new(() => new RealNixMountCache(_dir.Sub("real-nix"), SourceTree, SourceLarge));
        // Every test here mounts; where they are all skipped, 100 MB of caches would be built for nothing.
        if (FuseAvailability.SkipReason is not null)
        {
            Tree = TreeTwin = Large = Busybox = Late = Many = PlainTree = PlainLate = null!;
            return;
        }
        FixtureTrees.WriteEdgeCases(SourceTree);
        FixtureTrees.WriteLargeFile(SourceLarge, LargeFileBytes);
        WriteBusyboxTree(SourceBusybox);
        Directory.CreateDirectory(SourceLate);
        File.WriteAllText(Path.Combine(SourceLate, "greeting"), "registered while mounted\n");
        Directory.CreateDirectory(SourceMany);
        for (int i = 0; i < ManyEntries; i++)
            File.WriteAllText(Path.Combine(SourceMany, $"entry-with-a-longish-name-{i:D5}"), i.ToString(System.Globalization.CultureInfo.InvariantCulture));

        var own = new BinaryCacheWriter(OwnCacheDir, CompressionMethod.Zstd, Key);
        Tree = own.AddTree(SourceTree, "tree");
        TreeTwin = own.AddTree(SourceTree, "tree-twin");
        Large = own.AddTree(SourceLarge, "large");
        Busybox = own.AddTree(SourceBusybox, "busybox");
        Late = own.AddTree(SourceLate, "late");
        Many = own.AddTree(SourceMany, "many");

        var plain = new BinaryCacheWriter(PlainCacheDir, CompressionMethod.None, Key);
        PlainTree = plain.AddTree(SourceTree, "tree");
        PlainLate = plain.AddTree(SourceLate, "late");
    }

    public SecretKey Key { get; }

    public string SourceTree => _dir.Sub("src/tree");

    public string SourceLarge => _dir.Sub("src/large");

    public string SourceBusybox => _dir.Sub("src/busybox");

    public string SourceLate => _dir.Sub("src/late");

    /// <summary>A directory of <see cref="ManyEntries"/> files: more than one readdir reply holds.</summary>
    public string SourceMany => _dir.Sub("src/many");

    public const int ManyEntries = 2500;

    /// <summary>Our own zstd cache: <see cref="Tree"/>, <see cref="TreeTwin"/>, <see cref="Large"/>, <see cref="Busybox"/>, <see cref="Late"/>, <see cref="Many"/>.</summary>
    public string OwnCacheDir => _dir.Sub("cache-own");

    public NarInfo Tree { get; }

    /// <summary>Another store path with <see cref="Tree"/>'s contents, so the same NAR.</summary>
    public NarInfo TreeTwin { get; }

    public NarInfo Large { get; }

    public NarInfo Busybox { get; }

    public NarInfo Late { get; }

    public NarInfo Many { get; }

    /// <summary>Our own uncompressed cache (<see cref="PlainTree"/>, <see cref="PlainLate"/>), whose NARs are the bytes Nix hashes.</summary>
    public string PlainCacheDir => _dir.Sub("cache-plain");

    public NarInfo PlainTree { get; }

    public NarInfo PlainLate { get; }

    /// <summary>The cache written by the real Nix, built when a test first asks for it.</summary>
    public RealNixMountCache RealNix => _realNix.Value;

    /// <summary>A private copy of the uncompressed cache, for a test to damage.</summary>
    public string CopyPlainCache(string destination)
    {
        foreach (var file in Directory.EnumerateFiles(PlainCacheDir, "*", SearchOption.AllDirectories))
        {
            var target = Path.Combine(destination, Path.GetRelativePath(PlainCacheDir, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }
        return destination;
    }

    /// <summary>The machine's static busybox as <c>bin/busybox</c>, with a link to it as <c>bin/sh</c>.</summary>
    private static void WriteBusyboxTree(string root)
    {
        const string busybox = "/bin/busybox";
        if (!File.Exists(busybox))
            throw new InvalidOperationException($"{busybox} is missing: install Debian's busybox-static (the mount tests execute it from a lazy path)");
        Directory.CreateDirectory(Path.Combine(root, "bin"));
        var target = Path.Combine(root, "bin", "busybox");
        File.Copy(busybox, target);
        File.SetUnixFileMode(target, UnixFileMode.UserRead | UnixFileMode.UserExecute | UnixFileMode.UserWrite);
        File.CreateSymbolicLink(Path.Combine(root, "bin", "sh"), "busybox");
    }

    public void Dispose()
    {
        if (_realNix.IsValueCreated)
            _realNix.Value.Dispose();
        Key.Dispose();
        _dir.Dispose();
    }
}

/// <summary>
/// A zstd cache written by the real <c>nix copy</c> (signed, with listings) holding the edge-case tree
/// and the 100 MB tree, added with <c>nix-store --add</c> to a private store.
/// </summary>
public sealed class RealNixMountCache : IDisposable
{
    public RealNixMountCache(string dir, string sourceTree, string sourceLarge)
    {
        Support.RealNix.Require();
        Directory.CreateDirectory(dir);
        var root = Path.Combine(dir, "root");
        Support.RealNix.Run("nix-store", "--generate-binary-cache-key", "mount-nix-1", Path.Combine(dir, "sk"), Path.Combine(dir, "pk")).EnsureSuccess("generate key");
        var tree = Support.RealNix.Run("nix-store", "--store", root, "--add", sourceTree).EnsureSuccess("nix-store --add").StdoutText.Trim();
        var large = Support.RealNix.Run("nix-store", "--store", root, "--add", sourceLarge).EnsureSuccess("nix-store --add").StdoutText.Trim();
        CacheDir = Path.Combine(dir, "cache");
        Support.RealNix.Run("nix", "copy", "--store", root, "--to",
            $"file://{CacheDir}?compression=zstd&write-nar-listing=true&secret-key={Path.Combine(dir, "sk")}", tree, large)
            .EnsureSuccess("nix copy");
        TrustedKey = PublicKey.Parse(File.ReadAllText(Path.Combine(dir, "pk")).Trim());
        Tree = ReadNarInfo(tree);
        Large = ReadNarInfo(large);
        SourceTree = sourceTree;
        SourceLarge = sourceLarge;
    }

    public string CacheDir { get; }

    public PublicKey TrustedKey { get; }

    public NarInfo Tree { get; }

    public NarInfo Large { get; }

    public string SourceTree { get; }

    public string SourceLarge { get; }

    private NarInfo ReadNarInfo(string fullPath)
    {
        var hash = StorePath.FromBaseName(Path.GetFileName(fullPath)).HashPart;
        var file = Path.Combine(CacheDir, hash + ".narinfo");
        return NarInfo.Parse(File.ReadAllText(file), source: file);
    }

    public void Dispose()
    {
    }
}

[CollectionDefinition(Name)]
public sealed class MountCollection : ICollectionFixture<MountCaches>
{
    public const string Name = "store mount";
}
