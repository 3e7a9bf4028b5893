using System.Collections.Concurrent;
using System.Diagnostics;
using LazyStore.Nix;
using LazyStore.Nix.Nar;
using LazyStore.Store.Catalog;
using LazyStore.Store.Fetch;
using LazyStore.Store.Substituters;

namespace LazyStore.Store.Mount;

/// <summary>A lazy path could not be listed or fetched; the message says which and why.</summary>
public sealed class LazyPathUnavailableException(string message, Exception? inner = null) : IOException(message, inner);

/// <summary>A name in the mount's root that is a lazy store path, as the root listing shows it.</summary>
internal readonly record struct LazyRootName(string BaseName, long NarId, NarEntryType? RootType);

/// <summary>
/// The store side of the mount: which root names are lazy store paths (registered in the catalog, or
/// with on-demand any path a trusted cache has), their trees, and the verified NAR behind a first open.
/// Knows nothing of FUSE.
/// </summary>
internal sealed class LazyTrees(LazyStoreEngine engine, StoreMountOptions options, MountLog log) : IDisposable
{
    // Trees are small next to their NARs, but a mount may touch many paths; past this many the cache
    // starts over (nodes keep the trees they were made from).
    private const int MaxCachedTrees = 4096;

    private readonly ConcurrentDictionary<string, LazyTree> _trees = new();
    private readonly ConcurrentDictionary<string, Lazy<Task<LazyTree>>> _listing = new();
    private readonly ConcurrentDictionary<string, Lazy<Task<LazyTree>>> _fetching = new();
    // Keyed by the path's own source (cache and NAR file), not by NarHash: a path whose narinfo points
    // elsewhere is tried even while another source of the same NAR is backing off.
    private readonly ConcurrentDictionary<string, (long At, string Why)> _failures = new();
    private readonly ConcurrentDictionary<long, byte> _contradicted = new();
    private readonly ConcurrentDictionary<string, long> _touched = new();
    private readonly ConcurrentDictionary<string, StorePath> _onDemand = new();
    private readonly ConcurrentDictionary<string, LazyDeletion> _deletions = new();
    private readonly RegisteredListings _registeredListings = new(engine, log);

    public StoreCatalog Catalog => engine.Catalog;

    /// <summary>
    /// Raised (on the thread that made it) with each verified tree the mount loads, once it is what lookups of
    /// its path find: nodes made from a listing of the same NAR are then to be moved to it or dropped.
    /// </summary>
    public event Action<LazyTree>? Verified;

    /// <summary>
    /// The tree of the lazy store path named <paramref name="baseName"/>, or null when the name is not one
    /// (malformed, not registered, or — on demand — in no trusted cache). Throws
    /// <see cref="LazyPathUnavailableException"/> when the path exists but its tree cannot be had.
    /// </summary>
    public async ValueTask<LazyTree?> FindAsync(string baseName, CancellationToken cancellationToken)
    {
        if (!StorePath.TryFromBaseName(baseName, out var path) || path is null)
            return null;
        var known = engine.FindKnownPath(path);
        if (known is not null && known.Path.BaseName != baseName)
            return null;
        if (known is not { Registered: true })
        {
            if (!options.OnDemand)
                return null;
            try
            {
                known = await engine.GetPathAsync(path, register: false, cancellationToken).ConfigureAwait(false);
            }
            catch (PathNotSubstitutableException e)
            {
                log.Debug($"{baseName}: not in any cache ({string.Join("; ", e.Answers)})");
                return null;
            }
            if (_onDemand.TryAdd(path.HashPart, path))
                log.Info($"{baseName}: found on demand in {known.CacheUrl}");
        }
        // A listing's tree stays until the catalog has the verified one (another process may have fetched the NAR).
        if (_trees.TryGetValue(path.HashPart, out var cached) && cached.Nar.Id == known.Nar.Id && (cached.IsVerified || known.Nar.Tree != NarTree.Nar))
            return cached;
        // Registered without its listing: the other registered paths likely are too, and about to be looked up.
        if (known.Registered && known.Nar.Tree == NarTree.None)
            _registeredListings.Request();
        return await SingleFlight(_listing, path.HashPart, () => LoadTreeAsync(known, CancellationToken.None), cancellationToken).ConfigureAwait(false);
    }

    private async Task<LazyTree> LoadTreeAsync(LazyPath path, CancellationToken cancellationToken)
    {
        NarRecord nar;
        try
        {
            var listed = await engine.ListAsync(path, cancellationToken).ConfigureAwait(false);
            nar = listed.Nar;
            if (nar.Tree == NarTree.None)
            {
                // Without a listing even the root's type is unknown: the NAR itself has to come.
                log.Info($"{path.Path.BaseName}: no listing used ({listed.WhyUnlisted}); fetching the NAR to list it");
                nar = await FetchNarAsync(path, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is BinaryCacheException or PathNotSubstitutableException)
        {
            throw new LazyPathUnavailableException($"{path.Path.BaseName}: {e.Message}", e);
        }
        return Remember(Load(path, nar));
    }

    private LazyTree Load(LazyPath path, NarRecord nar) =>
        Catalog.ReadTree(nar.Id, (count, entries) => new LazyTree(path, nar, entries, count));

    /// <summary>
    /// The tree of <paramref name="tree"/>'s path as read from its verified NAR, fetching the NAR first if
    /// needed (once, however many opens wait for it). A fetch that failed within the back-off is not tried again.
    /// </summary>
    public async ValueTask<LazyTree> EnsureFetchedAsync(LazyTree tree, CancellationToken cancellationToken)
    {
        if (tree.IsFetched)
            return tree;
        var hashPart = tree.Path.Path.HashPart;
        if (_trees.TryGetValue(hashPart, out var cached) && cached.IsFetched && cached.Nar.Id == tree.Nar.Id)
            return cached;
        return await FetchTreeAsync(tree.Path, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// The tree of <paramref name="tree"/>'s path as read from its verified NAR: the catalog's when the NAR was
    /// verified already (by this or another process; its blob need not be kept), else fetched and verified now.
    /// </summary>
    public async ValueTask<LazyTree> EnsureVerifiedAsync(LazyTree tree, CancellationToken cancellationToken)
    {
        if (tree.IsVerified)
            return tree;
        if (_trees.TryGetValue(tree.Path.Path.HashPart, out var cached) && cached.IsVerified && cached.Nar.Id == tree.Nar.Id)
            return cached;
        if (Catalog.GetNar(tree.Nar.NarHash) is { Tree: NarTree.Nar } verified && verified.Id == tree.Nar.Id)
            return Remember(Load(tree.Path, verified));
        return await FetchTreeAsync(tree.Path, cancellationToken).ConfigureAwait(false);
    }

    private Task<LazyTree> FetchTreeAsync(LazyPath path, CancellationToken cancellationToken) =>
        SingleFlight(_fetching, path.Path.HashPart, async () =>
        {
            var nar = await FetchNarAsync(path, CancellationToken.None).ConfigureAwait(false);
            return Remember(Load(path, nar));
        }, cancellationToken);

    private async Task<NarRecord> FetchNarAsync(LazyPath path, CancellationToken cancellationToken)
    {
        var key = path.CacheUrl + "/" + path.Info.Url;
        if (_failures.TryGetValue(key, out var failure) && Stopwatch.GetElapsedTime(failure.At) < options.FailureBackoff
            && Catalog.GetNar(path.Nar.NarHash) is not { IsFetched: true })
            throw new LazyPathUnavailableException($"{path.Path.BaseName}: {failure.Why} (failed {Stopwatch.GetElapsedTime(failure.At).TotalSeconds:0.0} s ago; not retried for {options.FailureBackoff.TotalSeconds:0.#} s)");
        var started = Stopwatch.GetTimestamp();
        var before = engine.Nars.BytesDownloaded;
        try
        {
            var nar = await engine.EnsureFetchedAsync(path, cancellationToken).ConfigureAwait(false);
            _failures.TryRemove(key, out _);
            log.Info($"{path.Path.BaseName}: NAR ready ({nar.NarSize:N0} bytes; {engine.Nars.BytesDownloaded - before:N0} bytes downloaded meanwhile, {Stopwatch.GetElapsedTime(started).TotalSeconds:0.00} s)");
            return nar;
        }
        catch (Exception e) when (e is NarUnavailableException or BinaryCacheException or PathNotSubstitutableException or IOException)
        {
            _failures[key] = (Stopwatch.GetTimestamp(), e.Message);
            log.Error($"{path.Path.BaseName}: fetch failed: {e.Message}");
            throw new LazyPathUnavailableException($"{path.Path.BaseName}: {e.Message}", e);
        }
    }

    /// <summary>Opens the verified blob behind a fetched tree; a blob removed behind the index's back is fetched again once.</summary>
    public async ValueTask<(LazyTree Tree, NarBlob Blob)> OpenBlobAsync(LazyTree tree, CancellationToken cancellationToken)
    {
        tree = await EnsureFetchedAsync(tree, cancellationToken).ConfigureAwait(false);
        try
        {
            return (tree, OpenBlob(tree));
        }
        catch (Exception e) when (e is FileNotFoundException or NarBlobChangedException)
        {
            // Removed or changed behind the index's back: the NAR cache notices, hashes a changed blob again and
            // indexes it if it is still the NAR, else fetches the NAR again.
            log.Error($"{tree.Path.Path.BaseName}: {e.Message}");
            _trees.TryRemove(tree.Path.Path.HashPart, out _);
            tree = await FetchTreeAsync(tree.Path, cancellationToken).ConfigureAwait(false);
            return (tree, OpenBlob(tree));
        }
    }

    private NarBlob OpenBlob(LazyTree tree)
    {
        // last_access feeds eviction; a write per open would cost more than it tells.
        var now = Environment.TickCount64;
        if (!_touched.TryGetValue(tree.Nar.NarHash, out var last) || now - last > 60_000)
        {
            _touched[tree.Nar.NarHash] = now;
            if (!engine.TryTouchNar(tree.Nar, out var failure))
                log.Error($"{tree.Path.Path.BaseName}: last access not recorded, reading on: {failure}");
        }
        return NarBlob.Open(Catalog.State, tree.Nar, NixHash.Parse(tree.Nar.NarHash));
    }

    /// <summary>Whether <paramref name="baseName"/> is a lazy path the root shows (registered, or found on demand); asks no cache.</summary>
    public bool IsLazyRootName(string baseName) =>
        StorePath.TryFromBaseName(baseName, out var path) && path is not null
        && (_onDemand.ContainsKey(path.HashPart) || engine.FindKnownPath(path) is { Registered: true } known && known.Path.BaseName == baseName);

    /// <summary>The lazy names of the root: registered paths, and on-demand paths looked up during this mount.</summary>
    public IReadOnlyList<LazyRootName> ListRoot()
    {
        var names = Catalog.ListRegisteredRoots().Select(r => new LazyRootName(r.BaseName, r.NarId, r.RootType)).ToList();
        var listed = names.Select(n => n.BaseName).ToHashSet(StringComparer.Ordinal);
        foreach (var path in _onDemand.Values)
        {
            if (_trees.TryGetValue(path.HashPart, out var tree) && listed.Add(path.BaseName))
                names.Add(new LazyRootName(path.BaseName, tree.Nar.Id, tree.Root.Type));
        }
        return names;
    }

    /// <summary>The deletion under way in <paramref name="tree"/>'s path, or null when nothing of it was deleted.</summary>
    public LazyDeletion? DeletionOf(LazyTree tree) =>
        _deletions.IsEmpty ? null : _deletions.GetValueOrDefault(tree.Path.Path.HashPart);

    /// <summary>The deletion of <paramref name="tree"/>'s path, started by the first change Nix's deletePath makes.</summary>
    public LazyDeletion StartDeletion(LazyTree tree) => _deletions.GetOrAdd(tree.Path.Path.HashPart, _ => new LazyDeletion());

    /// <summary>
    /// The last step of deleting a lazy path, its root: the path leaves the catalog and the mount, and
    /// its blob is deleted when no other path shares its NAR.
    /// </summary>
    public void Remove(LazyTree tree)
    {
        var path = tree.Path.Path;
        var freed = engine.RemovePath(path);
        _trees.TryRemove(path.HashPart, out _);
        _onDemand.TryRemove(path.HashPart, out _);
        _deletions.TryRemove(path.HashPart, out _);
        log.Info(freed is { } bytes
            ? $"{path.BaseName}: deleted; it left the catalog{(bytes > 0 ? $" and {bytes:N0} bytes of NAR blob were freed" : "")}"
            : $"{path.BaseName}: deleted (the catalog did not know it)");
    }

    /// <summary>
    /// What a listing's tree becomes now that <paramref name="verified"/>, the verified tree of its NAR, is known:
    /// the same tree read from the NAR when the listing showed exactly that, else null (the listing lied or
    /// was damaged: logged once per NAR, and nothing of it is served any more).
    /// </summary>
    public LazyTree? Supersede(LazyTree listing, LazyTree verified)
    {
        if (listing.IsVerified || listing.Nar.Id != verified.Nar.Id)
            throw new ArgumentException($"{listing.Path.Path.BaseName}: not a listing's tree of NAR {verified.Nar.NarHash}", nameof(listing));
        if (listing.Verdict is not { } verdict)
        {
            var difference = listing.FirstDifference(verified);
            verdict = listing.Supersede(verified, agrees: difference is null);
            if (difference is not null && _contradicted.TryAdd(verified.Nar.Id, 0))
            {
                log.Error($"{listing.Path.Path.BaseName}: the listing {listing.Path.CacheUrl}/{listing.Path.Path.HashPart}.ls disagrees with the verified NAR: "
                    + $"{difference}; the listing is dropped and only the NAR's tree is served");
            }
        }
        return verdict.Agrees ? verdict.Tree : null;
    }

    /// <summary>
    /// Makes <paramref name="tree"/> what lookups of its path find. A verified tree also replaces the listing's
    /// trees of its NAR (of this path and of others sharing the NAR), never the other way round.
    /// </summary>
    private LazyTree Remember(LazyTree tree)
    {
        if (_trees.Count >= MaxCachedTrees)
            _trees.Clear();
        var hashPart = tree.Path.Path.HashPart;
        if (!tree.IsVerified)
            return _trees.AddOrUpdate(hashPart, tree, (_, old) => old.IsVerified && old.Nar.Id == tree.Nar.Id ? old : tree);
        foreach (var (otherHashPart, other) in _trees)
        {
            if (!other.IsVerified && other.Nar.Id == tree.Nar.Id)
            {
                Supersede(other, tree);
                _trees.TryUpdate(otherHashPart, tree.For(other.Path), other);
            }
        }
        _trees[hashPart] = tree;
        Verified?.Invoke(tree);
        return tree;
    }

    public void Dispose() => _registeredListings.Dispose();

    /// <summary>
    /// One run of <paramref name="start"/> per key at a time, shared by every caller. The run takes no
    /// caller's token: a caller whose <paramref name="cancellationToken"/> is cancelled (its request was
    /// interrupted) stops waiting, and the run goes on for the others. The run leaves the table when it
    /// ends, not when a caller stops waiting, so an interrupted caller never starts a second one.
    /// </summary>
    private static Task<LazyTree> SingleFlight(ConcurrentDictionary<string, Lazy<Task<LazyTree>>> flights, string key, Func<Task<LazyTree>> start,
        CancellationToken cancellationToken)
    {
        var flight = flights.GetOrAdd(key, static (_, start) => new Lazy<Task<LazyTree>>(start), start);
        var run = flight.Value;
        if (run.IsCompleted)
            flights.TryRemove(new KeyValuePair<string, Lazy<Task<LazyTree>>>(key, flight));
        else
            _ = run.ContinueWith(_ => flights.TryRemove(new KeyValuePair<string, Lazy<Task<LazyTree>>>(key, flight)),
                CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        return run.WaitAsync(cancellationToken);
    }
}
