using LazyStore.Nix.Compression;
using LazyStore.Store.Catalog;
using LazyStore.Tests.Support;

namespace LazyStore.Tests.Store;

/// <summary>The catalog's two-phase registration: pending rows, their confirmation, and taking them back per run.</summary>
public sealed class PendingRegistrationTests(OwnCaches caches) : IClassFixture<OwnCaches>, IDisposable
{
    private readonly TempDir _dir = new("lazystore-pending-");

    private (StoreCatalog Catalog, IReadOnlyList<(LazyStore.Nix.NarInfo, string)> Paths) Open()
    {
        var catalog = new StoreCatalog(StateDirectory.Open(_dir.Sub("state")));
        var cache = "file://" + caches.CacheDir(CompressionMethod.Xz);
        return (catalog, caches.Infos(CompressionMethod.Xz).Select(i => (i, cache)).ToList());
    }

    [Fact]
    public void Pending_rows_are_served_confirmed_by_Nix_or_taken_back_only_by_their_own_run()
    {
        var (catalog, paths) = Open();
        var first = new PendingRegistration("1:100", "");
        var second = new PendingRegistration("2:200", "");
        var tree = paths[0].Item1.StorePath.HashPart;
        var large = paths[1].Item1.StorePath.HashPart;

        catalog.AddPendingStorePaths([paths[0], paths[1]], first);
        Assert.True(catalog.GetStorePath(tree) is { Registered: true, Pending: true });
        Assert.Equal(2, catalog.ListRegisteredRoots().Count);
        Assert.Equal([("1:100", paths[0].Item1.StorePath), ("1:100", paths[1].Item1.StorePath)],
            catalog.ListPendingRegistrations("").Select(p => (p.Owner, p.Path)).OrderBy(p => p.Path.BaseName, StringComparer.Ordinal));
        Assert.Empty(catalog.ListPendingRegistrations("/other/root"));

        // A second run takes the large path over; the first can then take back only what is still its own.
        catalog.AddPendingStorePaths([paths[1]], second);
        Assert.Equal([tree], catalog.TakeBackRegistration(first.Owner));
        Assert.True(catalog.GetStorePath(tree) is { Registered: false, Pending: false });
        Assert.True(catalog.GetStorePath(large) is { Registered: true, Pending: true });

        // Nix accepted it: registered, whichever run wrote it, and a later pending run does not demote it.
        catalog.ConfirmRegistration([large]);
        Assert.True(catalog.GetStorePath(large) is { Registered: true, Pending: false });
        var again = catalog.AddPendingStorePaths([paths[1]], first);
        Assert.True(again[0].WasRegistered);
        Assert.Empty(catalog.TakeBackRegistration(first.Owner));
        Assert.True(catalog.GetStorePath(large) is { Registered: true, Pending: false });
    }

    [Fact]
    public void A_run_is_gone_when_its_process_is_or_its_pid_now_names_another_process()
    {
        var self = PendingRegistration.ForThisProcess(null);
        Assert.False(PendingRegistration.IsOwnerGone(self.Owner));
        var pid = self.Owner[..self.Owner.IndexOf(':', StringComparison.Ordinal)];
        Assert.True(PendingRegistration.IsOwnerGone(pid + ":1"));
        Assert.True(PendingRegistration.IsOwnerGone("999999999:1"));
        Assert.Equal("", self.Store);
        Assert.Equal("/some/root", PendingRegistration.ForThisProcess("/some/root/").Store);
    }

    public void Dispose() => _dir.Dispose();
}
