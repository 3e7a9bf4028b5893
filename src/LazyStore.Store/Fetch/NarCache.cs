using System.Collections.Concurrent;
using LazyStore.Nix;
using LazyStore.Nix.IO;
using LazyStore.Nix.Nar;
using LazyStore.Store.Catalog;
using LazyStore.Store.Substituters;

namespace LazyStore.Store.Fetch;

/// <summary>
/// Makes sure a NAR's verified blob and index are in the state directory. Concurrent requests for one
/// NarHash share one download; downloads of different NARs run in parallel, up to a limit per cache and
/// one over all caches, so that downloads hanging on a slow cache never hold up those from another. A
/// failed download is recorded and the next cache that has the path is tried.
/// </summary>
public sealed class NarCache : IDisposable
{
    private readonly StoreCatalog _catalog;
    private readonly SubstituterSet _substituters;
    private readonly int _downloadsPerCache;
    private readonly SemaphoreSlim? _allDownloads;
    private readonly ConcurrentDictionary<string, SemaphoreSlim> _cacheDownloads = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, Lazy<Task<NarRecord>>> _inFlight = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _shutdown = new();
    private long _bytesDownloaded;
    private long _downloadsStarted;
    private long _narsFetched;

    /// <param name="catalog">Where blobs and their index are committed.</param>
    /// <param name="substituters">The caches NARs come from.</param>
    /// <param name="downloadsPerCache">Downloads from one cache at once.</param>
    /// <param name="maxDownloads">Downloads from all caches together (Nix's <c>http-connections</c>); 0: no limit beyond the per-cache one.</param>
    public NarCache(StoreCatalog catalog, SubstituterSet substituters, int downloadsPerCache = 4, int maxDownloads = 25)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(downloadsPerCache, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(maxDownloads);
        _catalog = catalog;
        _substituters = substituters;
        _downloadsPerCache = downloadsPerCache;
        _allDownloads = maxDownloads == 0 ? null : new SemaphoreSlim(maxDownloads, maxDownloads);
    }

    /// <summary>Compressed bytes received by this process so far, over all downloads (for progress displays).</summary>
    public long BytesDownloaded => Interlocked.Read(ref _bytesDownloaded);

    /// <summary>NAR downloads this process started, successful or not.</summary>
    public long DownloadsStarted => Interlocked.Read(ref _downloadsStarted);

    /// <summary>NARs downloaded, verified and committed by this instance.</summary>
    public long NarsFetched => Interlocked.Read(ref _narsFetched);

    /// <summary>
    /// Returns the NAR's record once its blob is stored and indexed, fetching it if needed. Cancelling
    /// <paramref name="cancellationToken"/> stops this caller's wait, not a download others share.
    /// </summary>
    public async Task<NarRecord> EnsureAsync(SubstitutablePath path, CancellationToken cancellationToken)
    {
        var key = path.Info.NarHash.ToString();
        if (StoredBlob(key) is { } stored)
            return stored;
        var flight = _inFlight.GetOrAdd(key, k => new Lazy<Task<NarRecord>>(() => FetchOnceAsync(k, path)));
        return await flight.Value.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Deletes the blob of a NAR the catalog no longer needs (<see cref="StoreCatalog.RemoveStorePath"/>);
    /// readers that have it open keep reading it. Returns the bytes freed.
    /// </summary>
    public long DeleteBlob(NarRecord nar)
    {
        var blob = new FileInfo(_catalog.State.BlobPath(NarFetcher.BlobKey(NixHash.Parse(nar.NarHash))));
        if (!blob.Exists)
            return 0;
        var size = blob.Length;
        blob.Delete();
        return size;
    }

    /// <summary>The record of a NAR whose blob is committed and on disk, the very file committed (<see cref="BlobStamp"/>).</summary>
    private NarRecord? StoredBlob(string narHash)
    {
        var record = _catalog.GetNar(narHash);
        if (record is not { IsFetched: true })
            return null;
        if (BlobStamp.Read(_catalog.State.BlobPath(NarFetcher.BlobKey(NixHash.Parse(narHash)))) is { } stamp && stamp.Matches(record))
            return record;
        // Someone removed, replaced or wrote to the blob behind the index's back: forget it; a blob still
        // there is hashed again before it is indexed anew (TryAdoptBlob), else the NAR is fetched again.
        _catalog.ForgetBlob(record.Id);
        return null;
    }

    private async Task<NarRecord> FetchOnceAsync(string key, SubstitutablePath path)
    {
        await Task.Yield();
        try
        {
            if (TryAdoptBlob(path.Info) is { } adopted)
                return adopted;
            var reasons = new List<string>();
            await foreach (var (info, cache) in CandidatesAsync(path).ConfigureAwait(false))
            {
                try
                {
                    using var slot = await DownloadSlotAsync(cache).ConfigureAwait(false);
                    // Another process sharing the state directory may have finished it while this one waited.
                    if (StoredBlob(key) is { } stored)
                        return stored;
                    Interlocked.Increment(ref _downloadsStarted);
                    var result = await NarFetcher.FetchAsync(info, cache, _catalog.State,
                        n => Interlocked.Add(ref _bytesDownloaded, n), _shutdown.Token).ConfigureAwait(false);
                    Commit(info, result.DownloadedBytes, result.Entries);
                    Interlocked.Increment(ref _narsFetched);
                    return _catalog.GetNar(key)!;
                }
                catch (BinaryCacheException e)
                {
                    cache.ReportFailure(e);
                    _catalog.RecordFailure(key, cache.Url, e.Message);
                    reasons.Add($"{e.Url}: {e.Reason}");
                }
            }
            throw new NarUnavailableException(path.Path.ToFullPath(_substituters.StoreDirectory), reasons);
        }
        finally
        {
            // Whether it succeeded or not, the next request starts from the catalog again; a request
            // arriving in between finds the committed blob (or tries anew after a failure).
            _inFlight.TryRemove(key, out _);
        }
    }

    /// <summary>
    /// Waits for a download slot of <paramref name="cache"/>, then for one of all caches: a download queued
    /// behind a slow cache's never holds one of the slots other caches' downloads need.
    /// </summary>
    private async Task<DownloadSlot> DownloadSlotAsync(BinaryCache cache)
    {
        var ofCache = _cacheDownloads.GetOrAdd(cache.Url, _ => new SemaphoreSlim(_downloadsPerCache, _downloadsPerCache));
        await ofCache.WaitAsync(_shutdown.Token).ConfigureAwait(false);
        try
        {
            if (_allDownloads is not null)
                await _allDownloads.WaitAsync(_shutdown.Token).ConfigureAwait(false);
        }
        catch
        {
            ofCache.Release();
            throw;
        }
        return new DownloadSlot(ofCache, _allDownloads);
    }

    private sealed class DownloadSlot(SemaphoreSlim ofCache, SemaphoreSlim? ofAll) : IDisposable
    {
        public void Dispose()
        {
            ofAll?.Release();
            ofCache.Release();
        }
    }

    /// <summary>
    /// The cache that served the narinfo first, then — asked only when the ones before failed — every other
    /// cache with a trusted narinfo of the same NAR.
    /// </summary>
    private async IAsyncEnumerable<(NarInfo Info, BinaryCache Cache)> CandidatesAsync(SubstitutablePath path)
    {
        yield return (path.Info, path.Cache);
        foreach (var cache in _substituters.Caches)
        {
            if (cache == path.Cache || _substituters.WhyUnusable(cache) is not null)
                continue;
            SubstitutablePath? other;
            try
            {
                other = await _substituters.QueryCacheAsync(cache, path.Path, _shutdown.Token).ConfigureAwait(false);
            }
            catch (BinaryCacheException)
            {
                continue;
            }
            if (other is not null && other.Info.NarHash == path.Info.NarHash)
                yield return (other.Info, cache);
        }
    }

    /// <summary>
    /// A blob renamed into <c>nars/</c> whose commit never happened (a crash, or another process between
    /// rename and commit) was verified before the rename; it is checked again from disk and indexed
    /// rather than downloaded again.
    /// </summary>
    private NarRecord? TryAdoptBlob(NarInfo info)
    {
        var path = _catalog.State.BlobPath(NarFetcher.BlobKey(info.NarHash));
        try
        {
            using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20, FileOptions.SequentialScan);
            if (file.Length != (long)info.NarSize)
                return null;
            using var hashing = new HashingReadStream(file, info.NarHash.Algorithm, leaveOpen: true);
            var entries = NarIndexEntry.FromNar(hashing);
            hashing.Drain();
            if (hashing.FinishHash() != info.NarHash)
                return null;
            Commit(info, 0, entries);
            return _catalog.GetNar(info.NarHash.ToString());
        }
        catch (Exception e) when (e is (IOException and not StateStorageException) or UnauthorizedAccessException or InvalidDataException)
        {
            return null;
        }
    }

    /// <summary>
    /// Records a verified blob that is in <c>nars/</c>. When the catalog cannot take it (a full disk, a failing
    /// database) the blob is deleted before the error goes on, so nothing is left that the catalog does not know.
    /// </summary>
    private void Commit(NarInfo info, long downloadedBytes, IReadOnlyList<NarIndexEntry> entries)
    {
        var blob = _catalog.State.BlobPath(NarFetcher.BlobKey(info.NarHash));
        try
        {
            var stamp = BlobStamp.Read(blob)
                ?? throw new StateStorageException($"state directory {_catalog.State.Path}: {Path.GetRelativePath(_catalog.State.Path, blob)}: the verified NAR vanished before it was recorded");
            _catalog.CommitNar(info.NarHash.ToString(), (long)info.NarSize, downloadedBytes, entries, stamp);
        }
        catch (StateStorageException)
        {
            if (!CommittedElsewhere(info.NarHash))
                StateDirectory.TryDelete(blob);
            throw;
        }
    }

    /// <summary>Whether another process sharing the state directory committed the NAR meanwhile, so that its row needs the blob.</summary>
    private bool CommittedElsewhere(NixHash narHash)
    {
        try
        {
            return _catalog.GetNar(narHash.ToString()) is { IsFetched: true };
        }
        catch (StateStorageException)
        {
            // The catalog cannot even be read: no row can be relying on the blob through it now.
            return false;
        }
    }

    public void Dispose()
    {
        _shutdown.Cancel();
        _shutdown.Dispose();
        _allDownloads?.Dispose();
        foreach (var slots in _cacheDownloads.Values)
            slots.Dispose();
    }
}

/// <summary>No cache could deliver a verified NAR for a path; says what went wrong with each.</summary>
public sealed class NarUnavailableException(string path, IReadOnlyList<string> reasons)
    : IOException($"cannot fetch the NAR of {path}: " + (reasons.Count == 0 ? "no cache has it" : string.Join("; ", reasons)))
{
    public IReadOnlyList<string> Reasons { get; } = reasons;
}
