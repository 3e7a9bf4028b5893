using LazyStore.Nix;
using LazyStore.Nix.Compression;
using LazyStore.Nix.Nar;
using LazyStore.Store.Catalog;
using LazyStore.Store.Fetch;
using LazyStore.Store.Serving;
using LazyStore.Store.Substituters;
using LazyStore.Tests.Support;

namespace LazyStore.Tests.Store;

/// <summary>
/// Hostile or broken caches served over loopback HTTP: each case gets a clear error naming the cache and
/// the cause, and nothing unverified is indexed or served.
/// </summary>
public sealed class FetchFaultTests(OwnCaches caches) : IClassFixture<OwnCaches>, IDisposable
{
    private readonly TempDir _dir = new("lazystore-faults-");
    private readonly Dictionary<string, BinaryCacheServer> _servers = [];

    private string Cache(CompressionMethod method, string name = "cache") => caches.Copy(method, _dir.Sub(name));

    /// <summary>The loopback server serving a cache directory (started on first use).</summary>
    private BinaryCacheServer Server(string cacheDir)
    {
        if (!_servers.TryGetValue(cacheDir, out var server))
            _servers[cacheDir] = server = new BinaryCacheServer(cacheDir);
        return server;
    }

    private string Url(string cacheDir) => Server(cacheDir).BaseUri.AbsoluteUri.TrimEnd('/');

    private StoreHarness Store(params string[] cacheDirs) => new(cacheDirs.Select(Url), [caches.Key.PublicKey]);

    private static string Full(NarInfo info) => info.StorePath.ToFullPath();

    [Fact]
    public async Task Our_own_caches_serve_every_path_byte_for_byte_in_every_compression()
    {
        foreach (var method in OwnCaches.Methods)
        {
            using var store = Store(caches.CacheDir(method));
            var tree = caches.Infos(method)[0];
            var listed = await store.Engine.EnsureTreeAsync(await store.GetAsync(Full(tree)), fetchIfUnlisted: false, CancellationToken.None);
            Assert.Equal(NarTree.Listing, listed.Tree);
            var fetched = await store.FetchAsync(Full(tree));
            store.AssertTreeMatches(fetched, caches.SourceTree);
            Assert.Equal(File.ReadAllBytes(Path.Combine(caches.SourceTree, "sizes/f300001")), await store.ReadAllAsync(Full(tree) + "/sizes/f300001"));
            var large = caches.Infos(method)[1];
            Assert.Equal(File.ReadAllBytes(Path.Combine(caches.SourceLarge, "large.bin")), await store.ReadAllAsync(Full(large) + "/large.bin"));
        }
    }

    [Fact]
    public async Task One_flipped_byte_in_the_nar_is_a_narhash_mismatch()
    {
        var cache = Cache(CompressionMethod.None);
        var info = caches.Infos(CompressionMethod.None)[0];
        var nar = File.ReadAllBytes(CacheDamage.NarFile(cache, info));
        var plain = (NarListingRegular)NarListing.Find(NarListing.FromNar(new MemoryStream(nar)), "/plain.txt")!;
        nar[plain.NarOffset!.Value] ^= 0x20;
        CacheDamage.ReplaceNarFile(cache, info, caches.Key, nar);

        using var store = Store(cache);
        var e = await Assert.ThrowsAsync<NarUnavailableException>(() => store.FetchAsync(Full(info)));
        Assert.Contains("NarHash mismatch", e.Message);
        Assert.Contains(Url(cache), e.Message);
        store.AssertNothingStored(info);
        Assert.Contains(store.Engine.Catalog.GetFailures(info.NarHash.ToString()), f => f.Reason.Contains("NarHash mismatch"));
        await Assert.ThrowsAsync<NarUnavailableException>(() => store.ReadAllAsync(Full(info) + "/plain.txt"));
    }

    [Fact]
    public async Task One_flipped_byte_in_the_compressed_file_is_a_filehash_mismatch()
    {
        var cache = Cache(CompressionMethod.Xz);
        var info = caches.Infos(CompressionMethod.Xz)[1];
        var file = CacheDamage.NarFile(cache, info);
        CacheDamage.FlipByte(file, new FileInfo(file).Length / 2);

        using var store = Store(cache);
        var e = await Assert.ThrowsAsync<NarUnavailableException>(() => store.FetchAsync(Full(info)));
        Assert.True(e.Message.Contains("FileHash mismatch"), e.Message);
        store.AssertNothingStored(info);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(-1)]
    public async Task A_wrong_narsize_is_refused_even_when_signed(int delta)
    {
        var cache = Cache(CompressionMethod.Zstd);
        var info = caches.Infos(CompressionMethod.Zstd)[0];
        var wrong = CacheDamage.RewriteNarInfo(cache, info, caches.Key, ("NarSize", ((long)info.NarSize + delta).ToString(System.Globalization.CultureInfo.InvariantCulture)));
        using var store = Store(cache);
        var e = await Assert.ThrowsAsync<NarUnavailableException>(() => store.FetchAsync(Full(info)));
        Assert.True(e.Message.Contains("NarSize mismatch"), e.Message);
        store.AssertNothingStored(wrong);
    }

    [Fact]
    public async Task An_unsigned_narinfo_is_refused_when_signatures_are_required_and_accepted_when_not()
    {
        var cache = Cache(CompressionMethod.Xz);
        var info = caches.Infos(CompressionMethod.Xz)[0];
        CacheDamage.RewriteNarInfo(cache, info, key: null);
        using (var store = Store(cache))
        {
            var e = await Assert.ThrowsAsync<PathNotSubstitutableException>(() => store.GetAsync(Full(info)));
            Assert.Contains("not signed", e.Message);
            Assert.Contains(Url(cache), e.Message);
            Assert.Null(store.Engine.Catalog.GetStorePath(info.StorePath.HashPart));
        }
        using (var relaxed = new StoreHarness([Url(cache)], [], requireSignatures: false))
            Assert.Equal(info.NarHash, (await relaxed.GetAsync(Full(info))).Info.NarHash);
    }

    [Fact]
    public async Task A_signature_by_an_untrusted_key_is_refused()
    {
        var cache = Cache(CompressionMethod.Xz);
        var info = caches.Infos(CompressionMethod.Xz)[0];
        CacheDamage.RewriteNarInfo(cache, info, caches.OtherKey);
        using var store = Store(cache);
        var e = await Assert.ThrowsAsync<PathNotSubstitutableException>(() => store.GetAsync(Full(info)));
        Assert.Contains("no valid signature by a trusted key", e.Message);
        store.AssertNothingStored(info);
    }

    [Fact]
    public async Task A_malformed_narinfo_is_refused_naming_the_file_and_line()
    {
        var cache = Cache(CompressionMethod.Xz);
        var info = caches.Infos(CompressionMethod.Xz)[0];
        var file = CacheDamage.NarInfoFile(cache, info);
        File.WriteAllText(file, File.ReadAllText(file).Replace("NarSize: ", "NarSize: x", StringComparison.Ordinal));
        using var store = Store(cache);
        var e = await Assert.ThrowsAsync<PathNotSubstitutableException>(() => store.GetAsync(Full(info)));
        Assert.Contains(info.StorePath.HashPart + ".narinfo", e.Message);
        Assert.Contains("NarSize", e.Message);
        Assert.Null(store.Engine.Catalog.GetNarInfoLookup(store.Engine.Substituters.Caches[0].Url, info.StorePath.HashPart));
    }

    [Fact]
    public async Task A_narinfo_for_another_store_path_is_refused()
    {
        var cache = Cache(CompressionMethod.Xz);
        var (tree, large) = (caches.Infos(CompressionMethod.Xz)[0], caches.Infos(CompressionMethod.Xz)[1]);
        File.Copy(CacheDamage.NarInfoFile(cache, large), CacheDamage.NarInfoFile(cache, tree), overwrite: true);
        using var store = Store(cache);
        var e = await Assert.ThrowsAsync<PathNotSubstitutableException>(() => store.GetAsync(Full(tree)));
        Assert.Contains($"narinfo is for '{Full(large)}', not the requested '{Full(tree)}'", e.Message);
        Assert.Null(store.Engine.Catalog.GetStorePath(tree.StorePath.HashPart));
    }

    [Fact]
    public async Task A_missing_nar_file_is_reported()
    {
        var cache = Cache(CompressionMethod.Xz);
        var info = caches.Infos(CompressionMethod.Xz)[0];
        File.Delete(CacheDamage.NarFile(cache, info));
        using var store = Store(cache);
        var e = await Assert.ThrowsAsync<NarUnavailableException>(() => store.FetchAsync(Full(info)));
        Assert.Contains("the cache has no such NAR file", e.Message);
        store.AssertNothingStored(info);
    }

    [Fact]
    public async Task A_truncated_nar_file_is_refused()
    {
        var cache = Cache(CompressionMethod.Zstd);
        var info = caches.Infos(CompressionMethod.Zstd)[1];
        var file = CacheDamage.NarFile(cache, info);
        using (var stream = new FileStream(file, FileMode.Open))
            stream.SetLength(stream.Length - 1000);
        using var store = Store(cache);
        var e = await Assert.ThrowsAsync<NarUnavailableException>(() => store.FetchAsync(Full(info)));
        Assert.True(e.Message.Contains("FileSize mismatch"), e.Message);
        store.AssertNothingStored(info);
    }

    [Fact]
    public async Task A_second_cache_serves_the_path_when_the_first_one_fails()
    {
        var bad = Cache(CompressionMethod.Xz, "bad");
        var good = Cache(CompressionMethod.Xz, "good");
        var info = caches.Infos(CompressionMethod.Xz)[0];
        CacheDamage.FlipByte(CacheDamage.NarFile(bad, info), 100);
        using var store = Store(bad, good);
        var nar = await store.FetchAsync(Full(info));
        store.AssertTreeMatches(nar, caches.SourceTree);
        Assert.Equal(2, store.Engine.Nars.DownloadsStarted);
        var failure = Assert.Single(store.Engine.Catalog.GetFailures(info.NarHash.ToString()));
        Assert.Equal(Url(bad), failure.Cache);
        Assert.Equal("hello\n", System.Text.Encoding.UTF8.GetString(await store.ReadAllAsync(Full(info) + "/plain.txt")));
    }

    [Fact]
    public async Task A_malformed_listing_is_ignored_and_the_tree_comes_from_the_nar()
    {
        var cache = Cache(CompressionMethod.Xz);
        var info = caches.Infos(CompressionMethod.Xz)[0];
        File.WriteAllText(Path.Combine(cache, info.StorePath.HashPart + ".ls"), "{\"version\":1,\"root\":{\"type\":\"regular\",\"size\":-4}}");
        using var store = Store(cache);
        var lazy = await store.GetAsync(Full(info));
        Assert.Equal(NarTree.None, (await store.Engine.EnsureTreeAsync(lazy, fetchIfUnlisted: false, CancellationToken.None)).Tree);
        var nar = await store.Engine.EnsureTreeAsync(lazy, fetchIfUnlisted: true, CancellationToken.None);
        Assert.Equal(NarTree.Nar, nar.Tree);
        store.AssertTreeMatches(nar, caches.SourceTree);
    }

    [Fact]
    public async Task A_listing_with_more_entries_than_the_bound_counts_as_absent_says_why_and_the_tree_comes_from_the_nar()
    {
        var cache = Cache(CompressionMethod.Xz);
        var info = caches.Infos(CompressionMethod.Xz)[0];
        var entries = NarIndexEntry.FromListing(NarListing.ParseListingFile(File.ReadAllBytes(Path.Combine(cache, info.StorePath.HashPart + ".ls")))).Count;
        using var store = new StoreHarness([Url(cache)], [caches.Key.PublicKey], listings: new ListingLimits { MaxEntries = entries - 1 });
        var lazy = await store.GetAsync(Full(info));

        var listed = await store.Engine.ListAsync(lazy, CancellationToken.None);
        Assert.Equal(NarTree.None, listed.Nar.Tree);
        Assert.Equal($"{Url(cache)}/{info.StorePath.HashPart}.ls: listing has more than {entries - 1} entries, the most accepted", listed.WhyUnlisted);
        // Refused like a missing listing: not asked for again within the negative TTL.
        Assert.Equal(NarTree.None, (await store.Engine.ListAsync(lazy, CancellationToken.None)).Nar.Tree);
        Assert.Equal(1, Server(cache).CountRequests(p => p.EndsWith(".ls", StringComparison.Ordinal)));
        var nar = await store.Engine.EnsureTreeAsync(lazy, fetchIfUnlisted: true, CancellationToken.None);
        Assert.Equal(NarTree.Nar, nar.Tree);
        store.AssertTreeMatches(nar, caches.SourceTree);

        // One entry more allowed, the same listing is taken.
        using var roomier = new StoreHarness([Url(cache)], [caches.Key.PublicKey], listings: new ListingLimits { MaxEntries = entries });
        Assert.Equal(NarTree.Listing, (await roomier.Engine.ListAsync(await roomier.GetAsync(Full(info)), CancellationToken.None)).Nar.Tree);
    }

    [Theory]
    [InlineData("none")]
    [InlineData("zstd")]
    public async Task A_listing_larger_than_the_byte_bound_downloaded_or_decompressed_counts_as_absent_and_says_why(string encoding)
    {
        var cache = Cache(CompressionMethod.None);
        var info = caches.Infos(CompressionMethod.None)[0];
        var listing = Path.Combine(cache, info.StorePath.HashPart + ".ls");
        var plain = File.ReadAllBytes(listing);
        if (encoding != "none")
        {
            using var output = File.Create(listing);
            using var encoder = NarCompression.Compress(NarCompression.Parse(encoding), output);
            encoder.Write(plain);
        }
        // One byte short of the JSON; a compressed file fits, so only its decompression goes over.
        var bound = plain.Length - 1;
        Assert.True(encoding == "none" || new FileInfo(listing).Length <= bound);
        using var store = new StoreHarness([Url(cache)], [caches.Key.PublicKey], listings: new ListingLimits { MaxBytes = bound });
        var lazy = await store.GetAsync(Full(info));

        var listed = await store.Engine.ListAsync(lazy, CancellationToken.None);

        Assert.Equal(NarTree.None, listed.Nar.Tree);
        Assert.StartsWith($"{Url(cache)}/{info.StorePath.HashPart}.ls: ", listed.WhyUnlisted);
        Assert.Contains(encoding == "none" ? $"larger than the {bound} bytes allowed" : $"decompressed listing is larger than {bound} bytes", listed.WhyUnlisted);
        Assert.Empty(store.Engine.Catalog.GetTree(listed.Nar.Id));
    }

    [Fact]
    public async Task A_missing_listing_is_not_asked_for_again_within_the_negative_ttl()
    {
        var cache = Cache(CompressionMethod.Xz);
        var info = caches.Infos(CompressionMethod.Xz)[0];
        File.Delete(Path.Combine(cache, info.StorePath.HashPart + ".ls"));
        var clock = new ManualClock();
        using var store = new StoreHarness([Url(cache)], [caches.Key.PublicKey], time: clock);
        var lazy = await store.GetAsync(Full(info));
        for (var i = 0; i < 3; i++)
            Assert.Equal(NarTree.None, (await store.Engine.EnsureTreeAsync(lazy, fetchIfUnlisted: false, CancellationToken.None)).Tree);
        int Asked() => Server(cache).CountRequests(p => p.EndsWith(".ls", StringComparison.Ordinal));
        Assert.Equal(1, Asked());
        clock.Advance(TimeSpan.FromSeconds(3601));
        await store.Engine.EnsureTreeAsync(lazy, fetchIfUnlisted: false, CancellationToken.None);
        Assert.Equal(2, Asked());
    }

    [Theory]
    [InlineData("br")]
    [InlineData("xz")]
    [InlineData("zstd")]
    public async Task Compressed_listings_are_read(string encoding)
    {
        var cache = Cache(CompressionMethod.None);
        var info = caches.Infos(CompressionMethod.None)[0];
        var listing = Path.Combine(cache, info.StorePath.HashPart + ".ls");
        var plain = File.ReadAllBytes(listing);
        using (var output = File.Create(listing))
        using (var encoder = NarCompression.Compress(NarCompression.Parse(encoding), output))
            encoder.Write(plain);
        using var store = Store(cache);
        var nar = await store.Engine.EnsureTreeAsync(await store.GetAsync(Full(info)), fetchIfUnlisted: false, CancellationToken.None);
        Assert.Equal(NarTree.Listing, nar.Tree);
        store.AssertTreeMatches(nar, caches.SourceTree);
    }

    [Fact]
    public async Task Listing_offsets_are_never_trusted()
    {
        var cache = Cache(CompressionMethod.None);
        var info = caches.Infos(CompressionMethod.None)[0];
        var listing = Path.Combine(cache, info.StorePath.HashPart + ".ls");
        File.WriteAllText(listing, System.Text.RegularExpressions.Regex.Replace(File.ReadAllText(listing), "\"narOffset\":[0-9]+", "\"narOffset\":8"));
        using var store = Store(cache);
        var nar = await store.Engine.EnsureTreeAsync(await store.GetAsync(Full(info)), fetchIfUnlisted: false, CancellationToken.None);
        Assert.All(store.Engine.Catalog.GetTree(nar.Id), e => Assert.Null(e.PayloadOffset));
        Assert.Equal("hello\n", System.Text.Encoding.UTF8.GetString(await store.ReadAllAsync(Full(info) + "/plain.txt")));
    }

    [Fact]
    public async Task A_cache_for_another_store_directory_is_refused()
    {
        var cache = Cache(CompressionMethod.Xz);
        File.WriteAllText(Path.Combine(cache, "nix-cache-info"), "StoreDir: /gnu/store\n");
        using var store = Store(cache);
        var e = await Assert.ThrowsAsync<PathNotSubstitutableException>(() => store.GetAsync(Full(caches.Infos(CompressionMethod.Xz)[0])));
        Assert.Contains("binary cache is for Nix stores with prefix '/gnu/store', not '/nix/store'", e.Message);
    }

    [Fact]
    public async Task Caches_are_asked_in_priority_order()
    {
        var first = Cache(CompressionMethod.Xz, "configured-first");
        var preferred = Cache(CompressionMethod.Xz, "preferred");
        File.WriteAllText(Path.Combine(first, "nix-cache-info"), "StoreDir: /nix/store\nPriority: 40\n");
        File.WriteAllText(Path.Combine(preferred, "nix-cache-info"), "StoreDir: /nix/store\nPriority: 10\n");
        using var store = Store(first, preferred);
        var lazy = await store.GetAsync(Full(caches.Infos(CompressionMethod.Xz)[0]));
        Assert.Equal(Url(preferred), lazy.CacheUrl);
        Assert.Equal([10, 40], store.Engine.Substituters.Caches.Select(c => c.Priority));
    }

    [Fact]
    public async Task Negative_and_positive_answers_are_remembered_for_their_ttl()
    {
        var cache = Cache(CompressionMethod.Xz);
        var info = caches.Infos(CompressionMethod.Xz)[0];
        var narinfo = CacheDamage.NarInfoFile(cache, info);
        var hidden = narinfo + ".hidden";
        File.Move(narinfo, hidden);
        var clock = new ManualClock();
        using var store = new StoreHarness([Url(cache)], [caches.Key.PublicKey], time: clock);

        await Assert.ThrowsAsync<PathNotSubstitutableException>(() => store.GetAsync(Full(info)));
        File.Move(hidden, narinfo);
        clock.Advance(TimeSpan.FromSeconds(3599));
        await Assert.ThrowsAsync<PathNotSubstitutableException>(() => store.Engine.Substituters.QueryPathInfoAsync(info.StorePath, CancellationToken.None));
        clock.Advance(TimeSpan.FromSeconds(2));
        Assert.Equal(info.NarHash, (await store.Engine.Substituters.QueryPathInfoAsync(info.StorePath, CancellationToken.None)).Info.NarHash);

        File.Delete(narinfo);
        clock.Advance(TimeSpan.FromDays(29));
        Assert.Equal(info.NarHash, (await store.Engine.Substituters.QueryPathInfoAsync(info.StorePath, CancellationToken.None)).Info.NarHash);
        clock.Advance(TimeSpan.FromDays(2));
        await Assert.ThrowsAsync<PathNotSubstitutableException>(() => store.Engine.Substituters.QueryPathInfoAsync(info.StorePath, CancellationToken.None));
    }

    [Fact]
    public async Task Thirty_two_concurrent_reads_of_one_uncached_path_download_its_nar_once()
    {
        using var store = Store(caches.CacheDir(CompressionMethod.Xz));
        var info = caches.Infos(CompressionMethod.Xz)[1];
        var expected = File.ReadAllBytes(Path.Combine(caches.SourceLarge, "large.bin"));
        var reads = Enumerable.Range(0, 32).Select(_ => Task.Run(() => store.ReadAllAsync(Full(info) + "/large.bin"))).ToArray();
        foreach (var bytes in await Task.WhenAll(reads))
            Assert.Equal(expected, bytes);
        Assert.Equal(1, store.Engine.Nars.DownloadsStarted);
        Assert.Equal(1, Server(caches.CacheDir(CompressionMethod.Xz)).CountRequests(p => p.Contains(info.Url, StringComparison.Ordinal)));
    }

    [Fact]
    public async Task Server_errors_are_retried_and_the_fetch_then_succeeds()
    {
        var cache = Cache(CompressionMethod.Xz);
        var info = caches.Infos(CompressionMethod.Xz)[0];
        var server = Server(cache);
        server.Faults = r => r.Attempt == 1 && (r.Path.EndsWith(".narinfo", StringComparison.Ordinal) || r.Path.Contains(info.Url, StringComparison.Ordinal))
            ? new ServerFault.Status(500) : null;
        using var store = Store(cache);
        Assert.Equal("hello\n", System.Text.Encoding.UTF8.GetString(await store.ReadAllAsync(Full(info) + "/plain.txt")));
        Assert.Equal(2, server.CountRequests(p => p.EndsWith(info.StorePath.HashPart + ".narinfo", StringComparison.Ordinal)));
        Assert.Equal(2, server.CountRequests(p => p.Contains(info.Url, StringComparison.Ordinal)));
    }

    [Fact]
    public async Task A_cache_failing_with_5xx_is_passed_over_for_the_next_one()
    {
        var broken = Cache(CompressionMethod.Xz, "broken");
        var good = Cache(CompressionMethod.Zstd, "good");
        Server(broken).Faults = r => r.Path.EndsWith(".narinfo", StringComparison.Ordinal) ? new ServerFault.Status(503) : null;
        using var store = Store(broken, good);
        var info = caches.Infos(CompressionMethod.Zstd)[0];
        var lazy = await store.GetAsync(Full(info));
        Assert.Equal(Url(good), lazy.CacheUrl);
        Assert.Equal(StoreHarness.FastTransport.Attempts, Server(broken).CountRequests(p => p.EndsWith(".narinfo", StringComparison.Ordinal)));
        Assert.Equal("hello\n", System.Text.Encoding.UTF8.GetString(await store.ReadAllAsync(Full(info) + "/plain.txt")));
    }

    [Fact]
    public async Task A_cache_down_at_start_is_used_once_it_answers()
    {
        var cache = Cache(CompressionMethod.Xz);
        var info = caches.Infos(CompressionMethod.Xz)[0];
        var server = Server(cache);
        server.Faults = _ => new ServerFault.Status(502);
        var clock = new ManualClock();
        using var store = new StoreHarness([Url(cache)], [caches.Key.PublicKey], time: clock);
        var e = await Assert.ThrowsAsync<PathNotSubstitutableException>(() => store.GetAsync(Full(info)));
        Assert.Contains("502", e.Message);
        server.Faults = null;
        // Skipped for a while after failing, as Nix disables a cache; asked again afterwards.
        var requests = server.Requests.Count;
        var skipped = await Assert.ThrowsAsync<PathNotSubstitutableException>(() => store.GetAsync(Full(info)));
        Assert.Contains($"{Url(cache)}: skipped for 60 more s after: HTTP 502", skipped.Message);
        Assert.Equal(requests, server.Requests.Count);
        clock.Advance(BinaryCache.SkipTime);
        Assert.Equal(info.NarHash, (await store.GetAsync(Full(info))).Info.NarHash);
    }

    [Fact]
    public async Task A_listing_that_stalls_skips_the_cache_for_a_while_and_is_asked_for_again_after()
    {
        var cache = Cache(CompressionMethod.Xz);
        var info = caches.Infos(CompressionMethod.Xz)[0];
        var listing = info.StorePath.HashPart + ".ls";
        var server = Server(cache);
        server.Faults = r => r.Path == listing ? new ServerFault.Stall(10) : null;
        var clock = new ManualClock();
        using var store = new StoreHarness([Url(cache)], [caches.Key.PublicKey], time: clock,
            transport: StoreHarness.FastTransport with { Attempts = 1, StalledDownloadTimeout = TimeSpan.FromMilliseconds(300) });
        var path = await store.GetAsync(Full(info));

        Assert.Equal(NarTree.None, (await store.Engine.EnsureTreeAsync(path, fetchIfUnlisted: false, CancellationToken.None)).Tree);
        Assert.Contains("stalled-download-timeout", store.Engine.Substituters.Caches[0].WhySkipped);
        server.Faults = null;
        clock.Advance(BinaryCache.SkipTime);
        // A listing that could not be read is not remembered as missing.
        Assert.Equal(NarTree.Listing, (await store.Engine.EnsureTreeAsync(path, fetchIfUnlisted: false, CancellationToken.None)).Tree);
        Assert.Equal(2, server.CountRequests(p => p == listing));
    }

    [Fact]
    public async Task A_path_missing_from_the_server_is_not_found()
    {
        var cache = Cache(CompressionMethod.Xz);
        var info = caches.Infos(CompressionMethod.Xz)[0];
        File.Delete(CacheDamage.NarInfoFile(cache, info));
        using var store = Store(cache);
        var e = await Assert.ThrowsAsync<PathNotSubstitutableException>(() => store.GetAsync(Full(info)));
        Assert.Equal($"{Full(info)} is not available from any substituter ({Url(cache)}: not found)", e.Message);
        Assert.Equal(404, Server(cache).Requests.Single(r => r.Path.EndsWith(".narinfo", StringComparison.Ordinal)).Status);
    }

    public static TheoryData<string> BodyFaults => new("reset", "truncate", "stall");

    [Theory]
    [MemberData(nameof(BodyFaults))]
    public async Task A_download_broken_mid_body_keeps_nothing_and_a_later_fetch_succeeds(string fault)
    {
        var cache = Cache(CompressionMethod.Zstd);
        var info = caches.Infos(CompressionMethod.Zstd)[1];
        var half = (long)info.FileSize!.Value / 2;
        var server = Server(cache);
        server.Faults = r => r.Path.Contains(info.Url, StringComparison.Ordinal) ? fault switch
        {
            "reset" => new ServerFault.Reset(half),
            "truncate" => new ServerFault.Truncate(half),
            _ => new ServerFault.Stall(half),
        } : null;
        var clock = new ManualClock();
        using var store = new StoreHarness([Url(cache)], [caches.Key.PublicKey], time: clock,
            transport: StoreHarness.FastTransport with { StalledDownloadTimeout = TimeSpan.FromMilliseconds(500) });
        var e = await Assert.ThrowsAsync<NarUnavailableException>(() => store.FetchAsync(Full(info)));
        Assert.Contains(Url(cache) + "/" + info.Url, e.Message);
        store.AssertNothingStored(info);
        Assert.Contains(store.Engine.Catalog.GetFailures(info.NarHash.ToString()), f => f.Cache == Url(cache));

        server.Faults = null;
        // The cache is skipped for a while after a failed transfer; the next fetch after that succeeds.
        var skipped = await Assert.ThrowsAsync<NarUnavailableException>(() => store.FetchAsync(Full(info)));
        Assert.Contains("skipped for 60 more s after:", skipped.Message);
        clock.Advance(BinaryCache.SkipTime);
        var nar = await store.FetchAsync(Full(info));
        store.AssertTreeMatches(nar, caches.SourceLarge);
    }

    [Fact]
    public async Task A_blob_removed_behind_the_index_is_fetched_again()
    {
        using var store = Store(caches.CacheDir(CompressionMethod.Zstd));
        var info = caches.Infos(CompressionMethod.Zstd)[0];
        await store.FetchAsync(Full(info));
        foreach (var blob in Directory.EnumerateFiles(store.State.NarsPath))
            File.Delete(blob);
        Assert.Equal("hello\n", System.Text.Encoding.UTF8.GetString(await store.ReadAllAsync(Full(info) + "/plain.txt")));
        Assert.Equal(2, store.Engine.Nars.DownloadsStarted);
    }

    public void Dispose()
    {
        foreach (var server in _servers.Values)
            server.Dispose();
        _dir.Dispose();
    }
}

/// <summary>A clock the test moves by hand.</summary>
public sealed class ManualClock : TimeProvider
{
    private DateTimeOffset _now = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    public void Advance(TimeSpan by) => _now += by;

    public override DateTimeOffset GetUtcNow() => _now;

    public override long GetTimestamp() => _now.UtcTicks;

    public override long TimestampFrequency => TimeSpan.TicksPerSecond;
}
