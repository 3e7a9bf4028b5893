using LazyStore.Tests.Support;

namespace LazyStore.Tests.Mount;

/// <summary>Through the mount, a stored blob changed on disk behind the catalog's back is never served.</summary>
[Collection(MountCollection.Name)]
public sealed class BlobGuardMountTests(MountCaches caches)
{
    [FuseFact]
    public async Task A_byte_changed_in_a_fetched_blob_is_not_served_the_NAR_is_fetched_again()
    {
        using var mount = new StoreMountHarness(caches.OwnCacheDir, [caches.Key.PublicKey]);
        await mount.RegisterAsync(caches.Tree);
        var store = mount.Mount();
        Assert.Equal("hello\n", File.ReadAllText(mount.In(caches.Tree, "plain.txt")));
        Assert.Equal(1, mount.NarRequests(caches.Tree));

        // A file of the same NAR not read yet, so the kernel has none of its pages cached.
        var nar = mount.Engine.Catalog.GetNar(caches.Tree.NarHash.ToString())!;
        var file = mount.Engine.Resolve(nar, ["sizes", "f4096"])!;
        CacheDamage.FlipByte(Assert.Single(Directory.EnumerateFiles(Path.Combine(mount.StateDirectory, "nars"))), file.PayloadOffset!.Value + 100);

        Assert.Equal(File.ReadAllBytes(Path.Combine(caches.SourceTree, "sizes/f4096")), File.ReadAllBytes(mount.In(caches.Tree, "sizes/f4096")));
        Assert.Equal(2, mount.NarRequests(caches.Tree));
        Assert.Contains("changed on disk since its NAR", mount.Log, StringComparison.Ordinal);
        Assert.Equal(0, store.Statistics.FailedOpens);
    }
}
