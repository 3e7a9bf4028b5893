using LazyStore.Store.Mount;
using LazyStore.Tests.Support;

namespace LazyStore.Tests.Integration;

/// <summary>
/// Real Nix working on a chroot store whose store directory is covered by a LazyStore mount of
/// itself: everything Nix does to its store (add, lock, canonicalise, hard-link, verify, delete,
/// collect garbage) passes through to the directory underneath.
/// </summary>
public sealed class NixOnMountTests
{
    [RealNixFuseFact]
    public void NixAddsVerifiesOptimisesAndDeletesThroughTheMount()
    {
        using var dir = new TempDir("lazystore-nixmount-");
        var root = dir.Sub("root");
        var store = Path.Combine(root, "nix", "store");
        Directory.CreateDirectory(store);
        var earlier = dir.Sub("earlier");
        FixtureTrees.WriteEdgeCases(earlier);
        var before = NixStore(root, "--add", earlier).Trim();
        var source = dir.Sub("source");
        Directory.CreateDirectory(Path.Combine(source, "sub"));
        File.WriteAllText(Path.Combine(source, "a"), "same bytes\n");
        File.WriteAllText(Path.Combine(source, "sub", "b"), "same bytes\n");
        File.CreateSymbolicLink(Path.Combine(source, "link"), "a");

        using var harness = new StoreHarness([], []);
        string added;
        using (var mount = StoreMount.Mount(harness.Engine, store, new StoreMountOptions { Log = TextWriter.Null }))
        {
            Assert.True(Fuse.TestMount.IsMounted(store));
            Assert.Contains(Path.GetFileName(before.Replace("/nix/store/", "", StringComparison.Ordinal)), Directory.GetFileSystemEntries(store).Select(Path.GetFileName));
            added = NixStore(root, "--add", source).Trim();
            var physical = Path.Combine(store, Path.GetFileName(added));
            // Nix canonicalised it through the mount: read-only, mtime 1.
            Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(1), File.GetLastWriteTimeUtc(Path.Combine(physical, "a")));
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.GroupRead | UnixFileMode.OtherRead, File.GetUnixFileMode(Path.Combine(physical, "a")));
            RealNix.Run("nix", "store", "verify", "--store", root, "--all").EnsureSuccess("nix store verify --all");
            // Two files with the same contents become one inode in .links.
            NixStore(root, "--optimise");
            Assert.Equal(Inode(Path.Combine(physical, "a")), Inode(Path.Combine(physical, "sub", "b")));
            NixStore(root, "--delete", before);
            Assert.False(Directory.Exists(Path.Combine(store, Path.GetFileName(before))));
            RealNix.Run("nix", "store", "verify", "--store", root, "--all").EnsureSuccess("nix store verify --all after a delete");
        }
        Assert.False(Fuse.TestMount.IsMounted(store));
        // What Nix wrote is in the directory itself once the mount is gone.
        var underneath = Path.Combine(store, Path.GetFileName(added));
        Assert.Equal("same bytes\n", File.ReadAllText(Path.Combine(underneath, "sub", "b")));
        Assert.Equal("a", new FileInfo(Path.Combine(underneath, "link")).LinkTarget);
        Assert.False(Directory.Exists(Path.Combine(store, Path.GetFileName(before))));
        RealNix.Run("nix", "store", "verify", "--store", root, "--all").EnsureSuccess("nix store verify --all after unmounting");
        NixStore(root, "--delete", added);
        RealNix.Run("nix-collect-garbage", "--store", root).EnsureSuccess("nix-collect-garbage");
        Assert.Equal([".links"], Directory.GetFileSystemEntries(store).Select(Path.GetFileName));
    }

    private static string NixStore(string root, params string[] args) =>
        RealNix.Run("nix-store", ["--store", root, .. args]).EnsureSuccess("nix-store " + string.Join(' ', args)).StdoutText;

    private static ulong Inode(string path) => LazyStore.Nix.Interop.Posix.StatAt(LazyStore.Nix.Interop.Posix.AtFdCwd, path).Inode;
}
