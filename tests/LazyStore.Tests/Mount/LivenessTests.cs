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
    /// <summary>Where the old code hung for minutes.</summary>
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(15);

    private static readonly ServerFault OneBytePerSecond = new ServerFault.Trickle(TimeSpan.FromSeconds(1));

    private StoreMountHarness OnDemand(TransportOptions? transport = null, IEnumerable<Uri>? moreCaches = null)
    {
        var mount = new StoreMountHarness(caches.OwnCacheDir, [caches.Key.PublicKey], transport, moreCaches);
        mount.Mount(new StoreMountOptions { LowerDirectory = mount.LowerDirectory, OnDemand = true });
        return mount;
    }

    [FuseFact]
    public async Task A_lookup_finishes_while_a_lookup_of_another_name_waits_on_a_trickling_narinfo()
    {
        using var mount = OnDemand();
        var slow = caches.Tree.StorePath.HashPart + ".narinfo";
        mount.Server.Faults = r => r.Path == slow ? OneBytePerSecond : null;

        using var hung = ChildProcess.Start("stat", mount.In(caches.Tree));
        await WaitForRequestAsync(mount.Server, slow);

        using var other = ChildProcess.Start("stat", mount.In(caches.Late));
        var result = await other.ExitsWithinAsync(Bound);
        Assert.True(result.ExitCode == 0, result.Stderr);
        using var listing = ChildProcess.Start("ls", mount.MountPoint);
        var ls = await listing.ExitsWithinAsync(Bound);
        Assert.True(ls.ExitCode == 0, ls.Stderr);
        Assert.Contains(caches.Late.StorePath.BaseName, ls.StdoutText);
        Assert.False(hung.HasExited, "the lookup whose narinfo trickles should still be waiting for it");
    }

    /// <summary>Waits (bounded) until the server has received a request for <paramref name="path"/>.</summary>
    internal static async Task WaitForRequestAsync(BinaryCacheServer server, string path, int count = 1)
    {
        using var timeout = new CancellationTokenSource(Bound);
        while (server.CountRequests(p => p == path) < count)
            await Task.Delay(20, timeout.Token);
    }
}
