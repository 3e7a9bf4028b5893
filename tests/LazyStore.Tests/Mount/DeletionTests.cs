using LazyStore.Nix.Interop;
using LazyStore.Store.Fetch;
using LazyStore.Tests.Fuse;
using LazyStore.Tests.Support;

namespace LazyStore.Tests.Mount;

/// <summary>
/// Deleting lazy paths through the mount, the way Nix's deletePath (and rm -rf) does it: directories made
/// writable, entries unlinked bottom up, the root removed last.
/// </summary>
[Collection(MountCollection.Name)]
public sealed class DeletionTests(MountCaches caches)
{
    [FuseFact]
    public async Task A_deleted_lazy_path_leaves_the_catalog_and_its_blob_goes_with_the_last_path_sharing_its_NAR()
    {
        using var mount = new StoreMountHarness(caches.OwnCacheDir, [caches.Key.PublicKey]);
        await mount.RegisterAsync(caches.Tree, caches.TreeTwin, caches.Late);
        var lowerFile = Path.Combine(mount.LowerDirectory, "lower-file");
        File.WriteAllText(lowerFile, "stays\n");
        mount.Mount();
        Assert.Equal("hello\n", File.ReadAllText(mount.In(caches.Tree, "plain.txt")));
        var blob = mount.Engine.Catalog.State.BlobPath(NarFetcher.BlobKey(caches.Tree.NarHash));
        Assert.True(File.Exists(blob));

        // deletePath's first step: the directory made writable by its owner; nothing else may change.
        Assert.Equal(0, Errno.Of(() => Posix.ChmodAt(Posix.AtFdCwd, mount.In(caches.Tree), 0b111_101_101)));
        Assert.Equal(0b111_101_101u, Posix.StatAt(Posix.AtFdCwd, mount.In(caches.Tree)).Mode & 0xFFF);
        Assert.Equal(Errno.EROFS, Errno.Of(() => Posix.ChmodAt(Posix.AtFdCwd, mount.In(caches.Tree, "plain.txt"), 0b110_100_100)));
        Assert.Equal(Errno.ENOTEMPTY, Errno.Of(() => Posix.UnlinkAt(Posix.AtFdCwd, mount.In(caches.Tree, "names"), directory: true)));
        Assert.Equal(Errno.ENOTDIR, Errno.Of(() => Posix.UnlinkAt(Posix.AtFdCwd, mount.In(caches.Tree, "plain.txt"), directory: true)));
        Assert.Equal(Errno.EISDIR, Errno.Of(() => Posix.UnlinkAt(Posix.AtFdCwd, mount.In(caches.Tree, "empty-dir"), directory: false)));

        // One file unlinked: gone from lookups and listings, its siblings still served.
        Assert.Equal(0, Errno.Of(() => Posix.UnlinkAt(Posix.AtFdCwd, mount.In(caches.Tree, "plain.txt"), directory: false)));
        Assert.Equal(Errno.ENOENT, Syscalls.StatErrno(mount.In(caches.Tree, "plain.txt")));
        Assert.DoesNotContain("plain.txt", Directory.GetFileSystemEntries(mount.In(caches.Tree)).Select(Path.GetFileName));
        Assert.Equal("#!/bin/sh\necho tool\n", File.ReadAllText(mount.In(caches.Tree, "tool.sh")));

        var rm = TestMount.Tool("rm", "-rf", mount.In(caches.Tree));
        Assert.True(rm.ExitCode == 0, rm.Stderr);
        Assert.Equal(Errno.ENOENT, Syscalls.StatErrno(mount.In(caches.Tree)));
        Assert.DoesNotContain(caches.Tree.StorePath.BaseName, LazyTreeTests.RootNames(mount));
        Assert.Null(mount.Engine.Catalog.GetStorePath(caches.Tree.StorePath.HashPart));
        // The twin shares the NAR: the blob stays, and the twin is whole.
        Assert.True(File.Exists(blob));
        LazyTreeTests.AssertSameTree(caches.SourceTree, mount.In(caches.TreeTwin));

        rm = TestMount.Tool("rm", "-rf", mount.In(caches.TreeTwin));
        Assert.True(rm.ExitCode == 0, rm.Stderr);
        Assert.False(File.Exists(blob));
        var statistics = mount.Engine.Catalog.GetStatistics();
        Assert.Equal(1, statistics.RegisteredPaths);
        Assert.Equal(0, statistics.StoredNars);
        Assert.Equal(0, statistics.BytesOnDisk);

        // Nothing else was touched: the other lazy path, and the lower directory.
        Assert.Equal("registered while mounted\n", File.ReadAllText(mount.In(caches.Late, "greeting")));
        Assert.Equal("stays\n", File.ReadAllText(Path.Combine(mount.MountPoint, "lower-file")));
        Assert.Equal(["lower-file"], Directory.GetFileSystemEntries(mount.LowerDirectory).Select(Path.GetFileName));
    }

    [FuseFact]
    public async Task A_path_registered_again_after_its_deletion_is_whole_again()
    {
        using var mount = new StoreMountHarness(caches.OwnCacheDir, [caches.Key.PublicKey]);
        await mount.RegisterAsync(caches.Tree);
        mount.Mount();
        Assert.Equal(0, TestMount.Tool("rm", "-rf", mount.In(caches.Tree)).ExitCode);
        Assert.Equal(Errno.ENOENT, Syscalls.StatErrno(mount.In(caches.Tree)));

        await mount.RegisterAsync(caches.Tree);
        LazyTreeTests.AssertSameTree(caches.SourceTree, mount.In(caches.Tree));
    }
}
