using LazyStore.Nix.Compression;
using LazyStore.Tests.Support;

namespace LazyStore.Tests.Store;

/// <summary>
/// A stored blob is served only while it is the very file that was verified and committed (its inode and
/// ctime): one written to behind the catalog's back is hashed again, and fetched again when it no longer matches.
/// </summary>
public sealed class BlobGuardTests(OwnCaches caches) : IClassFixture<OwnCaches>
{
    [Fact]
    public async Task A_byte_changed_in_a_stored_blob_is_not_served_the_NAR_is_fetched_again()
    {
        using var store = new StoreHarness([caches.CacheDir(CompressionMethod.Zstd)], [caches.Key.PublicKey]);
        var tree = caches.Infos(CompressionMethod.Zstd)[0].StorePath.ToFullPath();
        var nar = await store.FetchAsync(tree);
        var plain = store.Engine.Resolve(nar, ["plain.txt"])!;
        CacheDamage.FlipByte(Assert.Single(Directory.EnumerateFiles(store.State.NarsPath)), plain.PayloadOffset!.Value);

        Assert.Equal("hello\n"u8.ToArray(), await store.ReadAllAsync(tree + "/plain.txt"));
        Assert.Equal(2, store.Engine.Nars.DownloadsStarted);
        store.AssertTreeMatches(store.Engine.Catalog.GetNar(nar.NarHash)!, caches.SourceTree);
    }

    [Fact]
    public async Task A_blob_touched_but_unchanged_is_hashed_again_and_kept_without_a_download()
    {
        using var store = new StoreHarness([caches.CacheDir(CompressionMethod.Zstd)], [caches.Key.PublicKey]);
        var tree = caches.Infos(CompressionMethod.Zstd)[0].StorePath.ToFullPath();
        await store.FetchAsync(tree);
        var blob = Assert.Single(Directory.EnumerateFiles(store.State.NarsPath));
        File.SetUnixFileMode(blob, File.GetUnixFileMode(blob) | UnixFileMode.GroupWrite);

        Assert.Equal("hello\n"u8.ToArray(), await store.ReadAllAsync(tree + "/plain.txt"));
        Assert.Equal(1, store.Engine.Nars.DownloadsStarted);
    }
}
