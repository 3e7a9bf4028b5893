using LazyStore.Fuse;
using LazyStore.Store.Mount;
using LazyStore.Tests.Support;

namespace LazyStore.Tests.Mount;

/// <summary>Mounting and unmounting a lazy store: nothing left behind, busy or not; no stacking.</summary>
[Collection(MountCollection.Name)]
public sealed class MountLifecycleTests(MountCaches caches)
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    private StoreMountHarness Own() => new(caches.OwnCacheDir, [caches.Key.PublicKey]);

    [FuseFact]
    public async Task Unmount_leaves_no_mount_and_the_lower_directory_untouched()
    {
        using var mount = Own();
        File.WriteAllText(Path.Combine(mount.LowerDirectory, "kept"), "kept\n");
        await mount.RegisterAsync(caches.Late);
        var store = mount.Mount();
        Assert.Equal([store.MountPoint], StoreMountHarness.MountsUnder(mount.MountPoint));
        Assert.Equal("registered while mounted\n", File.ReadAllText(mount.In(caches.Late, "greeting")));

        await mount.UnmountAsync();

        Assert.Empty(StoreMountHarness.MountsUnder(mount.MountPoint));
        Assert.True(store.Completion.IsCompletedSuccessfully);
        Assert.Empty(Directory.GetFileSystemEntries(mount.MountPoint));
        Assert.Equal(["kept"], Directory.GetFileSystemEntries(mount.LowerDirectory).Select(p => Path.GetFileName(p)));
        store.Unmount();
        store.Dispose();
    }

    [FuseFact]
    public async Task Unmount_with_files_open_in_a_lazy_path_and_the_lower_directory_leaves_no_mount()
    {
        using var mount = Own();
        File.WriteAllText(Path.Combine(mount.LowerDirectory, "open-lower"), "lower\n");
        await mount.RegisterAsync(caches.Tree);
        var store = mount.Mount();
        var lazy = new FileStream(mount.In(caches.Tree, "sizes/f65537"), FileMode.Open, FileAccess.Read);
        var lower = new FileStream(Path.Combine(mount.MountPoint, "open-lower"), FileMode.Open, FileAccess.ReadWrite);
        var second = new FileStream(mount.In(caches.Tree, "plain.txt"), FileMode.Open, FileAccess.Read);
        try
        {
            Assert.Equal(4096, lazy.Read(new byte[4096]));
            Assert.Equal(6, lower.Read(new byte[64]));

            store.Unmount();
            await store.Completion.WaitAsync(Patience);

            Assert.Empty(StoreMountHarness.MountsUnder(mount.MountPoint));
            Assert.Empty(Directory.GetFileSystemEntries(mount.MountPoint));
            Assert.Equal("lower\n", File.ReadAllText(Path.Combine(mount.LowerDirectory, "open-lower")));
        }
        finally
        {
            foreach (var stream in new[] { lazy, lower, second })
            {
                try
                {
                    stream.Dispose();
                }
                catch (IOException)
                {
                    // Closing a file of a mount that has gone may report the lost connection.
                }
            }
        }
    }

    [FuseFact]
    public async Task Mounting_again_where_the_store_is_mounted_is_refused_and_the_first_mount_keeps_serving()
    {
        using var mount = Own();
        await mount.RegisterAsync(caches.Late);
        var first = mount.Mount();

        var refused = Assert.Throws<FuseMountException>(() =>
            StoreMount.Mount(mount.Engine, mount.MountPoint, new StoreMountOptions { LowerDirectory = mount.Scratch("other-lower") }));

        Assert.Contains("already a mount point", refused.Message);
        Assert.Equal([first.MountPoint], StoreMountHarness.MountsUnder(mount.MountPoint));
        Assert.Equal("registered while mounted\n", File.ReadAllText(mount.In(caches.Late, "greeting")));
        Assert.False(first.Completion.IsCompleted);
    }

    [FuseFact]
    public void Dispose_alone_unmounts()
    {
        using var mount = Own();
        var store = mount.Mount();
        Assert.True(StoreMountHarness.IsMounted(mount.MountPoint));

        store.Dispose();

        Assert.Empty(StoreMountHarness.MountsUnder(mount.MountPoint));
        Assert.True(store.Completion.IsCompleted);
    }
}
