using System.Diagnostics;
using LazyStore.Nix;

namespace LazyStore.Store.Mount;

/// <summary>
/// Fetches, in the background, the cache listings of registered paths whose tree the catalog does not know.
/// <c>register</c> and <c>realise</c> make paths valid without their listings (a listing is not needed for
/// that, and fetching thousands would hold up the registration); the mount fetches a path's listing when a
/// lookup first needs its tree. The first such lookup also starts this sweep, which fetches the listings of
/// every other registered path that lacks one, as many at a time as <c>http-connections</c> allows, so that
/// whatever walks a freshly registered closure (Nix checking paths, a build reading its inputs) finds them
/// at hand rather than waiting for each in turn. Lookups of a path whose listing is on its way join that
/// request (<see cref="LazyStoreEngine.ListAsync"/>). Each NAR is asked for once per mount here; a listing
/// that could not be had is asked for again by the next lookup that needs it.
/// </summary>
internal sealed class RegisteredListings(LazyStoreEngine engine, MountLog log) : IDisposable
{
    private readonly CancellationTokenSource _stopping = new();
    private readonly Lock _lock = new();
    // NARs a sweep has asked for; read and written by the one sweep running.
    private readonly HashSet<long> _asked = [];
    private bool _running;
    private bool _requestedAgain;

    /// <summary>Starts a sweep, or — when one is running — another once it ends (for paths registered meanwhile).</summary>
    public void Request()
    {
        lock (_lock)
        {
            if (_stopping.IsCancellationRequested)
                return;
            if (_running)
            {
                _requestedAgain = true;
                return;
            }
            _running = true;
            _ = Task.Run(SweepAsync, CancellationToken.None);
        }
    }

    private async Task SweepAsync()
    {
        while (true)
        {
            try
            {
                await SweepOnceAsync(_stopping.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
            {
                // Unmounted.
            }
            catch (Exception e) when (e is IOException or ObjectDisposedException)
            {
                log.Error($"fetching the listings of registered paths in the background stopped: {e.Message}");
            }
            lock (_lock)
            {
                if (!_requestedAgain || _stopping.IsCancellationRequested)
                {
                    _running = false;
                    return;
                }
                _requestedAgain = false;
            }
        }
    }

    private async Task SweepOnceAsync(CancellationToken cancellationToken)
    {
        var unlisted = engine.Catalog.ListRegisteredRoots().Where(r => r.RootType is null && _asked.Add(r.NarId)).ToList();
        if (unlisted.Count == 0)
            return;
        var started = Stopwatch.GetTimestamp();
        int listed = 0, without = 0;
        var parallelism = engine.Substituters.Settings.LookupParallelism;
        await Parallel.ForEachAsync(unlisted, new ParallelOptions { MaxDegreeOfParallelism = parallelism, CancellationToken = cancellationToken },
            async (root, ct) =>
            {
                if (!StorePath.TryFromBaseName(root.BaseName, out var path) || path is null || engine.FindKnownPath(path) is not { Registered: true } known)
                    return;
                var outcome = await engine.ListAsync(known, ct).ConfigureAwait(false);
                Interlocked.Increment(ref outcome.WhyUnlisted is null ? ref listed : ref without);
            }).ConfigureAwait(false);
        log.Info($"listings of {unlisted.Count} registered paths fetched in the background in {Stopwatch.GetElapsedTime(started).TotalSeconds:0.00} s "
            + $"({listed} listed, {without} without a usable listing)");
    }

    public void Dispose()
    {
        lock (_lock)
            _stopping.Cancel();
    }
}
