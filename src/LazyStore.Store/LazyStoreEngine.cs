using System.Collections.Concurrent;
using System.Diagnostics.CodeAnalysis;
using LazyStore.Nix;
using LazyStore.Nix.Nar;
using LazyStore.Store.Catalog;
using LazyStore.Store.Configuration;
using LazyStore.Store.Fetch;
using LazyStore.Store.Substituters;

namespace LazyStore.Store;

/// <summary>How to open a <see cref="LazyStoreEngine"/>.</summary>
public sealed record LazyStoreOptions
{
    public required string StateDirectory { get; init; }

    public required SubstituterSettings Substituters { get; init; }

    public StoreDirectory StoreDirectory { get; init; } = StoreDirectory.Default;

    /// <summary>Deadlines and retries of HTTP requests; by default those <see cref="Substituters"/> ask for (nix.conf).</summary>
    public TransportOptions? Transport { get; init; }

    /// <summary>NAR downloads from one cache at once; downloads from all caches together are bounded by <c>http-connections</c>.</summary>
    public int DownloadsPerCache { get; init; } = 4;

    /// <summary>The largest cache listing accepted; a larger one counts as absent and the NAR is read instead.</summary>
    public ListingLimits Listings { get; init; } = ListingLimits.Default;

    public TimeProvider? Time { get; init; }
}

/// <summary>A store path LazyStore knows: its verified narinfo, the cache it came from, and its NAR's state.</summary>
/// <param name="Registered">Whether the mount serves it: registered with Nix, or <paramref name="Pending"/>.</param>
/// <param name="Pending">Registered in the catalog by a run that has not heard back from Nix (<see cref="PendingRegistration"/>).</param>
public sealed record LazyPath(StorePath Path, NarInfo Info, string CacheUrl, bool Registered, NarRecord Nar, bool Pending = false);

/// <summary>
/// What <see cref="LazyStoreEngine.ListAsync"/> found: the NAR's record as it now is and, when its tree is still
/// unknown, why the cache's listing could not be used (none, unreachable, malformed, over the bounds).
/// </summary>
public sealed record ListingOutcome(NarRecord Nar, string? WhyUnlisted);

/// <summary>What <see cref="LazyStoreEngine.RegisterAsync"/> registered: every path, and those that were not registered before.</summary>
public sealed record RegisteredPaths(IReadOnlyList<LazyPath> Paths, IReadOnlyList<StorePath> Added);

/// <summary>
/// The engine under the CLI and the mount: the three tiers of a lazy store path — advertised (a trusted
/// narinfo), listed (its tree, from the cache's listing or the NAR), fetched (the verified blob with its
/// index) — and positional reads of its files.
/// </summary>
public sealed class LazyStoreEngine : IDisposable
{
    private readonly ListingLimits _listings;
    private readonly ConcurrentDictionary<string, Lazy<Task<ListingOutcome>>> _listingFlights = new(StringComparer.Ordinal);
    // Listings that arrive together (the mount's background fetch) are written in one transaction.
    private readonly GroupCommit<(long NarId, IReadOnlyList<NarIndexEntry> Entries)> _listingCommits;

    private LazyStoreEngine(StoreCatalog catalog, SubstituterSet substituters, NarCache nars, StoreDirectory storeDirectory, ListingLimits listings)
    {
        Catalog = catalog;
        Substituters = substituters;
        Nars = nars;
        StoreDirectory = storeDirectory;
        _listings = listings;
        _listingCommits = new GroupCommit<(long NarId, IReadOnlyList<NarIndexEntry> Entries)>(catalog.PutListings);
    }

    public StoreCatalog Catalog { get; }

    public SubstituterSet Substituters { get; }

    public NarCache Nars { get; }

    public StoreDirectory StoreDirectory { get; }

    public static LazyStoreEngine Open(LazyStoreOptions options)
    {
        var state = StateDirectory.Open(options.StateDirectory);
        var catalog = new StoreCatalog(state, options.Time);
        var transport = options.Transport ?? TransportOptions.From(options.Substituters);
        var substituters = new SubstituterSet(options.Substituters, catalog, options.StoreDirectory, transport, options.Time);
        var nars = new NarCache(catalog, substituters, options.DownloadsPerCache, options.Substituters.HttpConnections);
        return new LazyStoreEngine(catalog, substituters, nars, options.StoreDirectory, options.Listings);
    }

    /// <summary>Parses a store path given as a full path (<c>/nix/store/…</c>) or a base name, with an optional path inside it.</summary>
    public (StorePath Path, IReadOnlyList<string> Inside) ParsePathArgument(string argument)
    {
        var text = argument;
        var prefix = StoreDirectory.Path + "/";
        if (text.StartsWith(prefix, StringComparison.Ordinal))
            text = text[prefix.Length..];
        else if (text.StartsWith('/'))
            throw new ArgumentException($"'{argument}' is not in the Nix store {StoreDirectory.Path}");
        var slash = text.IndexOf('/', StringComparison.Ordinal);
        var baseName = slash < 0 ? text : text[..slash];
        var inside = slash < 0 ? [] : NarListing.SplitPath(text[slash..]);
        return (StorePath.FromBaseName(baseName), inside);
    }

    /// <summary>
    /// Tier 1: the path's trusted narinfo, from the catalog or the caches. With <paramref name="register"/>
    /// the path joins the catalog the mount serves.
    /// </summary>
    public async Task<LazyPath> GetPathAsync(StorePath path, bool register, CancellationToken cancellationToken)
    {
        var known = Catalog.GetStorePath(path.HashPart);
        if (known is null || (register && (!known.Registered || known.Pending)))
        {
            var found = await Substituters.QueryPathInfoAsync(path, cancellationToken).ConfigureAwait(false);
            known = Catalog.AddStorePath(found.Info, found.Cache.Url, register);
        }
        return ToLazyPath(known);
    }

    /// <summary>
    /// Registers paths found in the caches for the mount as pending for <paramref name="pending"/> (the first
    /// phase of a registration with Nix; <see cref="SubstituterSet.QueryClosureAsync"/> looks a whole closure up
    /// before anything is registered), in one catalog transaction. Nothing is downloaded: a path's listing is
    /// not needed to make it valid, and the mount fetches it when a lookup first needs the path's tree.
    /// </summary>
    public Task<RegisteredPaths> RegisterAsync(IReadOnlyList<SubstitutablePath> found, PendingRegistration pending,
        CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var recorded = Catalog.AddPendingStorePaths(found.Select(f => (f.Info, f.Cache.Url)).ToList(), pending);
        var added = recorded.Where(r => !r.WasRegistered).Select(r => r.Path.Path).ToList();
        // A path the catalog knew keeps the narinfo it was first accepted with; a new one has the narinfo just
        // verified, which need not be parsed again from the catalog's copy.
        var paths = recorded.Select((r, i) => r.Path.NarInfoText == found[i].Info.ToString() ? ToLazyPath(r.Path, found[i].Info) : ToLazyPath(r.Path)).ToList();
        return Task.FromResult(new RegisteredPaths(paths, added));
    }

    /// <summary>
    /// Forgets a path Nix deleted: it leaves the catalog, and its NAR's blob is deleted once no other known
    /// path shares the NAR. Returns the blob bytes freed; null when the catalog did not know the path.
    /// </summary>
    public long? RemovePath(StorePath path)
    {
        var removal = Catalog.RemoveStorePath(path.HashPart);
        if (removal is null)
            return null;
        return removal.FreedNar is { } nar ? Nars.DeleteBlob(nar) : 0;
    }

    /// <summary>The path as the catalog knows it, or null; asks no cache.</summary>
    public LazyPath? FindKnownPath(StorePath path) => Catalog.GetStorePath(path.HashPart) is { } known ? ToLazyPath(known) : null;

    private LazyPath ToLazyPath(KnownStorePath known, NarInfo? info = null) =>
        new(known.Path, info ?? NarInfo.Parse(known.NarInfoText, StoreDirectory, "catalog"), known.Cache, known.Registered, known.Nar, known.Pending);

    /// <summary>
    /// Tier 2: makes the path's tree known, from the cache's listing when it has one (no NAR download), else
    /// — with <paramref name="fetchIfUnlisted"/> — from the NAR. Returns the NAR record as it now is.
    /// </summary>
    public async Task<NarRecord> EnsureTreeAsync(LazyPath path, bool fetchIfUnlisted, CancellationToken cancellationToken)
    {
        var listed = await ListAsync(path, cancellationToken).ConfigureAwait(false);
        return listed.Nar.Tree == NarTree.None && fetchIfUnlisted
            ? await EnsureFetchedAsync(path, cancellationToken).ConfigureAwait(false)
            : listed.Nar;
    }

    /// <summary>
    /// Tier 2 without a download: the path's tree from the catalog, else from the cache's listing (unsigned:
    /// a hint until the NAR is verified). A listing that is missing, unreadable, malformed or over the
    /// <see cref="LazyStoreOptions.Listings"/> bounds counts as absent, and the outcome says why. Concurrent
    /// calls for one NAR share one request (the mount's lookups and its background listing of registered
    /// paths); cancelling stops this caller's wait, not the request.
    /// </summary>
    public async Task<ListingOutcome> ListAsync(LazyPath path, CancellationToken cancellationToken)
    {
        var nar = Catalog.GetNar(path.Nar.NarHash) ?? path.Nar;
        if (nar.Tree != NarTree.None)
            return new ListingOutcome(nar, null);
        var flight = _listingFlights.GetOrAdd(nar.NarHash, static (_, x) => new Lazy<Task<ListingOutcome>>(() => x.Engine.FetchListingAsync(x.Path, x.Nar)),
            (Engine: this, Path: path, Nar: nar));
        var run = flight.Value;
        if (run.IsCompleted)
            _listingFlights.TryRemove(new KeyValuePair<string, Lazy<Task<ListingOutcome>>>(nar.NarHash, flight));
        else
            _ = run.ContinueWith(_ => _listingFlights.TryRemove(new KeyValuePair<string, Lazy<Task<ListingOutcome>>>(nar.NarHash, flight)),
                CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        return await run.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    private async Task<ListingOutcome> FetchListingAsync(LazyPath path, NarRecord nar)
    {
        // "No listing" is remembered like a negative narinfo lookup, so repeated stats do not ask again.
        if (nar.ListingMissingAt is { } at && Catalog.Now - at < Substituters.Settings.NegativeTtl.TotalSeconds)
            return new ListingOutcome(nar, $"{path.CacheUrl} had no usable listing of it {Catalog.Now - at} s ago");
        if (Substituters.Caches.FirstOrDefault(c => c.Url == path.CacheUrl) is not { } cache)
            return new ListingOutcome(nar, $"{path.CacheUrl} is no longer a configured cache");
        string why;
        try
        {
            if (await cache.TryGetListingAsync(path.Path, _listings, CancellationToken.None).ConfigureAwait(false) is { } listing)
            {
                await _listingCommits.WriteAsync((nar.Id, NarIndexEntry.FromListing(listing))).ConfigureAwait(false);
                return new ListingOutcome(Catalog.GetNar(nar.NarHash)!, null);
            }
            why = $"{cache.Resolve(path.Path.HashPart + ".ls")} does not exist";
        }
        catch (Exception e) when (e is CacheTransferException or CacheSkippedException)
        {
            // Unreachable for now: not remembered as missing, so the next need asks again.
            return new ListingOutcome(nar, e.Message);
        }
        catch (BinaryCacheException e)
        {
            // A listing is an optimisation: a missing, unreachable, malformed or oversized one means reading the NAR.
            why = e.Message;
        }
        Catalog.MarkListingMissing(nar.Id);
        return new ListingOutcome(nar, why);
    }

    /// <summary>Tier 3: the verified blob and its index are stored (downloading at most once per NarHash).</summary>
    public async Task<NarRecord> EnsureFetchedAsync(LazyPath path, CancellationToken cancellationToken)
    {
        await Substituters.InitializeAsync(cancellationToken).ConfigureAwait(false);
        var cache = Substituters.Caches.FirstOrDefault(c => c.Url == path.CacheUrl);
        var source = cache is not null && Substituters.WhyUnusable(cache) is null
            ? new SubstitutablePath(path.Info, cache)
            : await Substituters.QueryPathInfoAsync(path.Path, cancellationToken).ConfigureAwait(false);
        return await Nars.EnsureAsync(source, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The entry at <paramref name="inside"/> of a path whose tree is known; null when there is none.</summary>
    public NarIndexEntry? Resolve(NarRecord nar, IReadOnlyList<string> inside) =>
        nar.Tree == NarTree.None ? null : Catalog.ResolveEntry(nar.Id, inside);

    /// <summary>Opens a stored blob for positional reads.</summary>
    public NarBlob OpenBlob(NarRecord nar)
    {
        TryTouchNar(nar, out _);
        return NarBlob.Open(Catalog.State, nar, NixHash.Parse(nar.NarHash));
    }

    /// <summary>
    /// Records a NAR's last access (which eviction goes by); false, with the reason, when the catalog could not take
    /// the write. A full disk must not stop reads of a blob already stored, so this is the one write a reader may skip.
    /// </summary>
    public bool TryTouchNar(NarRecord nar, [NotNullWhen(false)] out string? failure)
    {
        try
        {
            Catalog.TouchNar(nar.Id);
            failure = null;
            return true;
        }
        catch (StateStorageException e)
        {
            failure = e.Message;
            return false;
        }
    }

    /// <summary>
    /// Positional read of the file at <paramref name="inside"/> of <paramref name="path"/>: fetches and verifies
    /// the NAR first if needed. Returns the number of bytes read, 0 at the end of the file.
    /// </summary>
    public async Task<int> ReadAsync(StorePath path, IReadOnlyList<string> inside, long offset, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        var lazy = await GetPathAsync(path, register: false, cancellationToken).ConfigureAwait(false);
        var nar = await EnsureFetchedAsync(lazy, cancellationToken).ConfigureAwait(false);
        var entry = Resolve(nar, inside) ?? throw new FileNotFoundException($"{path.ToFullPath(StoreDirectory)}/{string.Join('/', inside)} does not exist");
        if (entry.Type != NarEntryType.Regular)
            throw new IOException($"{path.ToFullPath(StoreDirectory)}/{string.Join('/', inside)} is a {entry.Type.ToString().ToLowerInvariant()}, not a regular file");
        using var blob = OpenBlob(nar);
        return await blob.ReadAsync(entry, offset, buffer, cancellationToken).ConfigureAwait(false);
    }

    public void Dispose()
    {
        Nars.Dispose();
        Substituters.Dispose();
        Catalog.State.ReleaseConnections();
    }
}
