using LazyStore.Nix;
using LazyStore.Store.Mount;
using LazyStore.Store.Substituters;
using LazyStore.Tests.Support;

namespace LazyStore.Tests.Mount;

/// <summary>
/// The mount's metadata path: registered paths' listings fetched when a lookup first needs them (and the
/// others' in the background), and on-demand lookups of many names waiting for the cache side by side.
/// </summary>
[Collection(MountCollection.Name)]
public sealed class LazyMetadataTests(MountCaches caches)
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(20);

    /// <summary>Deadlines that never end a held response within a test.</summary>
    private static readonly TransportOptions LongDeadlines = StoreHarness.FastTransport with { StalledDownloadTimeout = TimeSpan.FromMinutes(10) };

    private static bool IsListing(string path) => path.EndsWith(".ls", StringComparison.Ordinal);

    [FuseFact]
    public async Task The_first_lookup_of_a_registered_path_fetches_every_registered_paths_listing_once_in_the_background()
    {
        using var mount = new StoreMountHarness(caches.OwnCacheDir, [caches.Key.PublicKey]);
        // Registered as register does it: narinfos only, no listing (Tree and TreeTwin share one NAR).
        NarInfo[] registered = [caches.Tree, caches.TreeTwin, caches.Late, caches.Many, caches.Busybox];
        await mount.RegisterAsync(registered);
        Assert.Equal(0, mount.Server.CountRequests(IsListing));
        mount.Mount();
        var nars = registered.Select(i => i.NarHash.ToString()).Distinct().Count();

        using (var stat = ChildProcess.Start("stat", mount.In(caches.Late)))
            Assert.Equal(0, (await stat.ExitsWithinAsync(Bound)).ExitCode);
        var waited = System.Diagnostics.Stopwatch.StartNew();
        while (mount.Server.CountRequests(IsListing) < nars)
        {
            Assert.True(waited.Elapsed < Bound, $"{mount.Server.CountRequests(IsListing)} of {nars} listings asked for {Bound.TotalSeconds:0} s after the first lookup");
            await Task.Delay(20);
        }

        // The other paths list without asking the cache again, and without a NAR.
        using (var ls = ChildProcess.Start("ls", mount.In(caches.Many)))
        {
            var listed = await ls.ExitsWithinAsync(Bound);
            Assert.True(listed.ExitCode == 0, listed.Stderr);
            Assert.Equal(MountCaches.ManyEntries, listed.StdoutText.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
        }
        using (var ls = ChildProcess.Start("ls", mount.In(caches.TreeTwin)))
            Assert.Equal(0, (await ls.ExitsWithinAsync(Bound)).ExitCode);
        var listings = mount.Server.Requests.Select(r => r.Path).Where(IsListing).ToList();
        Assert.Equal(nars, listings.Count);
        Assert.Equal(nars, listings.Distinct().Count());
        Assert.Equal(0, mount.NarRequests());
        Assert.Contains($"listings of {nars} registered paths fetched in the background", mount.Log, StringComparison.Ordinal);
    }

    [FuseFact]
    public async Task On_demand_lookups_of_many_names_wait_for_the_cache_side_by_side()
    {
        const int names = 10;
        using var mount = new StoreMountHarness(caches.OwnCacheDir, [caches.Key.PublicKey], LongDeadlines);
        mount.Mount(new StoreMountOptions { LowerDirectory = mount.LowerDirectory, OnDemand = true });
        using var held = new HeldRequests(r => r.Path.EndsWith(".narinfo", StringComparison.Ordinal), names, Bound);
        mount.Server.Faults = held.Fault;

        var stats = Enumerable.Range(0, names).Select(i => ChildProcess.Start("stat", Path.Combine(mount.MountPoint, MissingName(i)))).ToList();
        try
        {
            await held.Released.WaitAsync(Bound + Bound);
            Assert.True(held.ReachedTarget, $"only {held.MostHeld} of {names} lookups reached the cache while none was answered");
            foreach (var stat in stats)
                Assert.Contains("No such file or directory", (await stat.ExitsWithinAsync(Bound)).Stderr, StringComparison.Ordinal);
        }
        finally
        {
            held.Dispose();
            foreach (var stat in stats)
                stat.Dispose();
        }
    }

    /// <summary>A well-formed store path name no cache has.</summary>
    private static string MissingName(int i) => StorePath.FromBaseName(i.ToString("D32", System.Globalization.CultureInfo.InvariantCulture) + "-missing").BaseName;
}
