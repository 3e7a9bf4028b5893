using System.Security.Cryptography;
using LazyStore.Nix;
using LazyStore.Nix.Compression;
using LazyStore.Nix.Signatures;
using LazyStore.Store.Catalog;
using LazyStore.Store.Substituters;
using LazyStore.Tests.Nix;
using LazyStore.Tests.Support;

namespace LazyStore.Tests.Store;

/// <summary>The engine over caches written by the real Nix: advertised, listed, fetched, read.</summary>
public class RealNixCacheEngineTests(RealNixCaches caches) : IClassFixture<RealNixCaches>
{
    public static TheoryData<string> Compressions => new(RealNixCaches.Compressions);

    [RealNixTheory]
    [MemberData(nameof(Compressions))]
    public async Task A_listed_path_is_listed_without_its_nar_then_fetched_and_read_byte_for_byte(string compression)
    {
        using var store = new StoreHarness([caches.CacheDir(compression)], [caches.TrustedKey]);
        var tree = caches.Paths[0];
        var lazy = await store.GetAsync(tree);
        Assert.Equal(tree, lazy.Path.ToFullPath());

        var listed = await store.Engine.EnsureTreeAsync(lazy, fetchIfUnlisted: false, CancellationToken.None);
        Assert.Equal(NarTree.Listing, listed.Tree);
        Assert.Equal(0, store.Engine.Nars.DownloadsStarted);
        Assert.Empty(Directory.EnumerateFiles(store.State.NarsPath));
        store.AssertTreeMatches(listed, caches.SourceTree);

        var fetched = await store.Engine.EnsureFetchedAsync(lazy, CancellationToken.None);
        Assert.Equal(NarTree.Nar, fetched.Tree);
        Assert.Equal(lazy.Info.NarSize, (ulong)fetched.BlobSize!.Value);
        store.AssertTreeMatches(fetched, caches.SourceTree);

        foreach (var file in Directory.EnumerateFiles(caches.SourceTree, "*", SearchOption.AllDirectories))
        {
            if (new FileInfo(file).LinkTarget is not null)
                continue;
            var relative = Path.GetRelativePath(caches.SourceTree, file);
            Assert.Equal(File.ReadAllBytes(file), await store.ReadAllAsync(tree + "/" + relative));
        }
        Assert.Equal(1, store.Engine.Nars.DownloadsStarted);
    }

    [RealNixFact]
    public async Task A_multi_megabyte_file_reads_back_identically_at_any_offset()
    {
        using var store = new StoreHarness([caches.CacheDir("xz")], [caches.TrustedKey]);
        var large = caches.Paths[1];
        var expected = File.ReadAllBytes(Path.Combine(caches.SourceLarge, "large.bin"));
        Assert.Equal(SHA256.HashData(expected), SHA256.HashData(await store.ReadAllAsync(large + "/large.bin")));
        var (path, inside) = store.Engine.ParsePathArgument(large + "/large.bin");
        var buffer = new byte[4096];
        foreach (var offset in new long[] { 0, 1, 4095, expected.Length / 2, expected.Length - 10 })
        {
            var n = await store.Engine.ReadAsync(path, inside, offset, buffer, CancellationToken.None);
            Assert.Equal((int)Math.Min(buffer.Length, expected.Length - offset), n);
            Assert.Equal(expected.AsSpan((int)offset, n).ToArray(), buffer.AsSpan(0, n).ToArray());
        }
        Assert.Equal(0, await store.Engine.ReadAsync(path, inside, expected.Length, buffer, CancellationToken.None));
    }

    [RealNixFact]
    public async Task A_closure_follows_references()
    {
        using var store = new StoreHarness([caches.CacheDir("zstd")], [caches.TrustedKey]);
        var referrer = store.Engine.ParsePathArgument(caches.Paths[2]).Path;
        var closure = await store.Engine.Substituters.QueryClosureAsync([referrer], parallelism: 2, CancellationToken.None);
        Assert.Equal(caches.Paths.Order(StringComparer.Ordinal), closure.Select(p => p.Path.ToFullPath()).Order(StringComparer.Ordinal));
    }

    [RealNixFact]
    public async Task Our_source_path_names_match_nix_store_add()
    {
        using var store = new StoreHarness([caches.CacheDir("none")], [caches.TrustedKey]);
        var lazy = await store.GetAsync(caches.Paths[0]);
        Assert.Equal(lazy.Path, StorePath.MakeSourcePath(lazy.Info.NarHash, lazy.Path.Name, lazy.Info.References));
    }

    [RealNixFact]
    public async Task A_signature_by_an_untrusted_key_is_refused_and_nothing_is_kept()
    {
        using var store = new StoreHarness([caches.CacheDir("xz")], [caches.OtherKey]);
        var e = await Assert.ThrowsAsync<PathNotSubstitutableException>(() => store.GetAsync(caches.Paths[0]));
        Assert.Contains("no valid signature by a trusted key", e.Message);
        Assert.Contains("cache-test-1", e.Message);
        Assert.Null(store.Engine.Catalog.GetStorePath(store.Engine.ParsePathArgument(caches.Paths[0]).Path.HashPart));
        Assert.Null(store.Engine.Catalog.GetNarInfoLookup(store.Engine.Substituters.Caches[0].Url, store.Engine.ParsePathArgument(caches.Paths[0]).Path.HashPart));
    }
}
