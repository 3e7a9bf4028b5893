using LazyStore.Nix;
using LazyStore.Store.Mount;
using LazyStore.Store.Serving;
using LazyStore.Store.Substituters;
using LazyStore.Tests.Support;

namespace LazyStore.Tests.Mount;

/// <summary>
/// The mount stays live while a cache is slow, hangs or is dead: lookups of other names, listings of
/// the root and opens from healthy caches go on, deadlines end what hangs, and killed readers go away.
/// Every system call that may hang runs in a child process, and every wait is bounded.
/// </summary>
[Collection(MountCollection.Name)]
public sealed class LivenessTests(MountCaches caches)
{
    /// <summary>Where the code before these fixes hung for minutes (or until the unmount).</summary>
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(15);

    private static readonly ServerFault OneBytePerSecond = new ServerFault.Trickle(TimeSpan.FromSeconds(1));

    /// <summary>Deadlines small enough for a test: the stall timeout alone ends a wait for a response.</summary>
    private static readonly TransportOptions ShortDeadlines = StoreHarness.FastTransport with
    {
        Attempts = 2,
        ConnectTimeout = TimeSpan.FromSeconds(60),
        StalledDownloadTimeout = TimeSpan.FromSeconds(1),
    };

    /// <summary>Deadlines that never end a held response within a test: what hangs stays hanging.</summary>
    private static readonly TransportOptions LongDeadlines = StoreHarness.FastTransport with { StalledDownloadTimeout = TimeSpan.FromMinutes(10) };

    private StoreMountHarness Harness(TransportOptions? transport = null, IEnumerable<Uri>? moreCaches = null) =>
        new(caches.OwnCacheDir, [caches.Key.PublicKey], transport, moreCaches);

    private static void MountOnDemand(StoreMountHarness mount) =>
        mount.Mount(new StoreMountOptions { LowerDirectory = mount.LowerDirectory, OnDemand = true });

    [FuseTheory]
    [InlineData(".narinfo")]
    [InlineData(".ls")]
    public async Task Lookups_of_other_names_and_the_root_listing_finish_while_one_name_trickles_in(string file)
    {
        using var mount = Harness(LongDeadlines);
        MountOnDemand(mount);
        var slow = caches.Tree.StorePath.HashPart + file;
        mount.Server.Faults = r => r.Path == slow ? OneBytePerSecond : null;

        using var hung = ChildProcess.Start("stat", mount.In(caches.Tree));
        await WaitForRequestAsync(mount.Server, slow);

        using var other = ChildProcess.Start("stat", mount.In(caches.Late));
        var stat = await other.ExitsWithinAsync(Bound);
        Assert.True(stat.ExitCode == 0, stat.Stderr);
        using var listing = ChildProcess.Start("ls", mount.MountPoint);
        var ls = await listing.ExitsWithinAsync(Bound);
        Assert.True(ls.ExitCode == 0, ls.Stderr);
        Assert.Contains(caches.Late.StorePath.BaseName, ls.StdoutText);
        Assert.False(hung.HasExited, $"the lookup whose {file} trickles should still be waiting for it");
    }

    [FuseFact]
    public async Task A_missing_name_with_a_dead_second_cache_is_answered_within_the_deadline_and_then_the_dead_cache_is_skipped()
    {
        using var deadDir = new TempDir("lazystore-dead-cache-");
        using var dead = new BinaryCacheServer(deadDir.Path) { Faults = _ => new ServerFault.Delay(Timeout.InfiniteTimeSpan) };
        using var mount = Harness(ShortDeadlines, [dead.BaseUri]);
        MountOnDemand(mount);
        var deadUrl = dead.BaseUri.AbsoluteUri.TrimEnd('/');

        using var first = ChildProcess.Start("stat", Path.Combine(mount.MountPoint, MissingName('1')));
        var firstResult = await first.ExitsWithinAsync(Bound);
        Assert.Contains("No such file or directory", firstResult.Stderr);
        Assert.Contains($"binary cache {deadUrl} is skipped for the next 60 s", mount.Log);

        var asked = dead.Requests.Count;
        using var second = ChildProcess.Start("stat", Path.Combine(mount.MountPoint, MissingName('2')));
        Assert.Contains("No such file or directory", (await second.ExitsWithinAsync(Bound)).Stderr);
        using var found = ChildProcess.Start("stat", mount.In(caches.Late));
        Assert.Equal(0, (await found.ExitsWithinAsync(Bound)).ExitCode);
        Assert.Equal(asked, dead.Requests.Count);
    }

    [FuseFact]
    public async Task A_reader_killed_while_its_NAR_hangs_is_gone_at_once_and_the_download_goes_on_for_the_other_reader()
    {
        using var mount = Harness(LongDeadlines);
        await mount.RegisterAsync(caches.Late);
        var store = mount.Mount();
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        mount.Server.Faults = r => r.Path == caches.Late.Url ? new ServerFault.Hold(release.Task) : null;
        try
        {
            using var killed = ChildProcess.Start("cat", mount.In(caches.Late, "greeting"));
            await WaitForRequestAsync(mount.Server, caches.Late.Url);
            using var other = ChildProcess.Start("cat", mount.In(caches.Late, "greeting"));
            using (var timeout = new CancellationTokenSource(Bound))
            {
                while (store.Statistics.LazyOpens < 2)
                    await Task.Delay(20, timeout.Token);
            }

            killed.Kill();
            Assert.NotNull(await killed.WaitAsync(Bound));

            // The interrupted open left the shared download alone: still the one request, and the other reader gets it.
            Assert.False(mount.Server.Requests.Single(r => r.Path == caches.Late.Url).Completed);
            Assert.False(other.HasExited);
            release.SetResult();
            var read = await other.ExitsWithinAsync(Bound);
            Assert.True(read.ExitCode == 0, read.Stderr);
            Assert.Equal("registered while mounted\n", read.StdoutText);
            Assert.Equal(1, mount.NarRequests(caches.Late));
        }
        finally
        {
            release.TrySetResult();
        }
    }

    [FuseFact]
    public async Task An_open_from_a_healthy_cache_completes_while_downloads_from_a_slow_cache_hang()
    {
        using var plain = new BinaryCacheServer(caches.PlainCacheDir);
        using var mount = Harness(LongDeadlines, [plain.BaseUri]);
        var slow = new[] { caches.Tree, caches.Large, caches.Busybox, caches.Many };
        var files = new[] { "plain.txt", "large.bin", "bin/busybox", "entry-with-a-longish-name-00000" };
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var lateNarInfo = caches.Late.StorePath.HashPart + ".narinfo";
        // The slow cache has no narinfo of the late path, so it comes from the healthy one.
        mount.Server.Faults = r =>
            r.Path == lateNarInfo ? new ServerFault.Status(404)
            : r.Path.StartsWith("nar/", StringComparison.Ordinal) ? new ServerFault.Hold(release.Task)
            : null;
        await mount.RegisterAsync([.. slow, caches.PlainLate]);
        mount.Mount();
        var readers = new List<ChildProcess>();
        try
        {
            for (int i = 0; i < slow.Length; i++)
                readers.Add(ChildProcess.Start("head", "-c", "1", mount.In(slow[i], files[i])));
            using var timeout = new CancellationTokenSource(Bound);
            while (mount.NarRequests() < slow.Length)
                await Task.Delay(20, timeout.Token);

            using var healthy = ChildProcess.Start("cat", mount.In(caches.PlainLate, "greeting"));
            Assert.Equal("registered while mounted\n", (await healthy.ExitsWithinAsync(Bound)).StdoutText);
            Assert.All(readers, r => Assert.False(r.HasExited));
        }
        finally
        {
            foreach (var reader in readers)
                reader.Dispose();
            release.TrySetResult();
        }
    }

    /// <summary>A well-formed store path name no cache has.</summary>
    private static string MissingName(char digit) => StorePath.FromBaseName(new string(digit, 32) + "-missing").BaseName;

    /// <summary>Waits (bounded) until the server has received a request for <paramref name="path"/>.</summary>
    internal static async Task WaitForRequestAsync(BinaryCacheServer server, string path)
    {
        using var timeout = new CancellationTokenSource(Bound);
        while (server.CountRequests(p => p == path) == 0)
            await Task.Delay(20, timeout.Token);
    }
}
