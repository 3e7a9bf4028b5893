using System.Collections.Concurrent;
using LazyStore.Nix;
using LazyStore.Nix.Signatures;
using LazyStore.Store.Catalog;
using LazyStore.Store.Configuration;

namespace LazyStore.Store.Substituters;

/// <summary>A narinfo that passed every check, and the cache that served it.</summary>
public sealed record SubstitutablePath(NarInfo Info, BinaryCache Cache)
{
    public StorePath Path => Info.StorePath;
}

/// <summary>
/// The configured binary caches in priority order, answering "which cache has this store path, with a
/// narinfo we trust?". Answers are remembered in the catalog (positive and negative, with Nix's TTLs);
/// only narinfos that passed every check are ever remembered as positive.
/// </summary>
public sealed class SubstituterSet : IDisposable
{
    private readonly SubstituterSettings _settings;
    private readonly StoreCatalog _catalog;
    private readonly BinaryCache[] _configured;
    private readonly Lazy<Task[]> _initializations;
    private readonly ConcurrentDictionary<string, string> _unusable = new(StringComparer.Ordinal);

    public SubstituterSet(SubstituterSettings settings, StoreCatalog catalog, StoreDirectory storeDirectory, TransportOptions? transportOptions = null,
        TimeProvider? time = null)
    {
        _settings = settings;
        _catalog = catalog;
        StoreDirectory = storeDirectory;
        var options = transportOptions ?? TransportOptions.From(settings);
        _configured = settings.Substituters.Select(u => new BinaryCache(BinaryCacheTransport.Create(u, options), time, message => Warning?.Invoke(message))).ToArray();
        // Each cache's nix-cache-info is read once, all at the same time: a cache that does not answer holds
        // up the first lookups until its deadline, and is skipped from then on.
        _initializations = new(() => _configured.Select(c => Task.Run(() => InitializeCacheAsync(c))).ToArray());
    }

    /// <summary>One line naming a cache each time it starts being skipped after a transfer from it failed.</summary>
    public event Action<string>? Warning;

    public StoreDirectory StoreDirectory { get; }

    public SubstituterSettings Settings => _settings;

    /// <summary>
    /// The caches in the order they are asked (after <see cref="InitializeAsync"/>): by priority, lower
    /// first, keeping the configured order among equals.
    /// </summary>
    public IReadOnlyList<BinaryCache> Caches =>
        _configured.Select((c, i) => (c, i)).OrderBy(x => x.c.Priority).ThenBy(x => x.i).Select(x => x.c).ToList();

    /// <summary>How long a cache's nix-cache-info is remembered (Nix keeps it for 7 days).</summary>
    public static TimeSpan CacheInfoTtl { get; } = TimeSpan.FromDays(7);

    /// <summary>
    /// Reads each cache's nix-cache-info (or the remembered copy), which orders the caches by priority. A
    /// cache for another store directory, or with a malformed nix-cache-info, is left out of every lookup
    /// and the reason kept for error messages; one that cannot be reached now keeps the default priority
    /// and is asked again on later lookups (after its skip window), so a long-running mount survives a
    /// cache that was down when it started. Cancelling stops the wait, not the reading.
    /// </summary>
    public Task InitializeAsync(CancellationToken cancellationToken) =>
        Task.WhenAll(_initializations.Value).WaitAsync(cancellationToken);

    private async Task InitializeCacheAsync(BinaryCache cache)
    {
        try
        {
            var remembered = _catalog.GetCacheInfo(cache.Url);
            if (remembered is not null && _catalog.Now - remembered.FetchedAt < CacheInfoTtl.TotalSeconds)
            {
                cache.Apply(new NixCacheInfo
                {
                    StoreDirectory = remembered.StoreDirectory is null ? null : new StoreDirectory(remembered.StoreDirectory),
                    Priority = remembered.Priority,
                    WantMassQuery = remembered.WantMassQuery,
                }, StoreDirectory);
                return;
            }
            var info = await cache.GetCacheInfoAsync(CancellationToken.None).ConfigureAwait(false);
            cache.Apply(info, StoreDirectory);
            if (info is not null)
                _catalog.PutCacheInfo(cache.Url, info);
        }
        catch (CacheRefusedException e)
        {
            _unusable[cache.Url] = e.Reason;
        }
        catch (BinaryCacheException)
        {
            // Unreachable for now: lookups report their own failures against it.
        }
    }

    /// <summary>Why a cache is not asked at all, or null when it is usable.</summary>
    public string? WhyUnusable(BinaryCache cache) => _unusable.GetValueOrDefault(cache.Url);

    /// <summary>
    /// Finds <paramref name="path"/> in the caches, in priority order. Throws <see cref="PathNotSubstitutableException"/>,
    /// saying what each cache answered, when none has a narinfo that passes every check.
    /// </summary>
    public Task<SubstitutablePath> QueryPathInfoAsync(StorePath path, CancellationToken cancellationToken) =>
        QueryPathInfoAsync(path, answers: null, cancellationToken);

    /// <summary>
    /// <see cref="QueryPathInfoAsync(StorePath, CancellationToken)"/>, keeping the caches' answers in
    /// <paramref name="answers"/> (to be remembered together, <see cref="Remember"/>) instead of writing each to
    /// the catalog at once.
    /// </summary>
    internal async Task<SubstitutablePath> QueryPathInfoAsync(StorePath path, NarInfoAnswers? answers, CancellationToken cancellationToken)
    {
        await InitializeAsync(cancellationToken).ConfigureAwait(false);
        var answered = new List<string>();
        foreach (var cache in Caches)
        {
            if (WhyUnusable(cache) is { } why)
            {
                answered.Add($"{cache.Url}: {why}");
                continue;
            }
            try
            {
                if (await QueryCacheAsync(cache, path, cancellationToken, answers).ConfigureAwait(false) is { } found)
                    return found;
                answered.Add($"{cache.Url}: not found");
            }
            catch (BinaryCacheException e)
            {
                answered.Add($"{cache.Url}: {e.Reason}");
            }
        }
        if (_configured.Length == 0)
            answered.Add("no substituters are configured");
        throw new PathNotSubstitutableException(path.ToFullPath(StoreDirectory), answered);
    }

    /// <summary>
    /// What one cache answers for a path: a trusted narinfo, null for "not there", or an exception. The answer
    /// is remembered in the catalog, or — given <paramref name="answers"/> — kept there to be remembered later.
    /// </summary>
    internal async Task<SubstitutablePath?> QueryCacheAsync(BinaryCache cache, StorePath path, CancellationToken cancellationToken,
        NarInfoAnswers? answers = null)
    {
        var remembered = _catalog.GetNarInfoLookup(cache.Url, path.HashPart);
        if (remembered is not null)
        {
            var age = _catalog.Now - remembered.LookedUpAt;
            if (remembered.NarInfo is null && age < _settings.NegativeTtl.TotalSeconds)
                return null;
            if (remembered.NarInfo is not null && age < _settings.PositiveTtl.TotalSeconds)
            {
                // Checked again: the trusted keys may have changed since it was remembered.
                var url = cache.Resolve(path.HashPart + ".narinfo");
                var info = cache.ParseNarInfo(remembered.NarInfo, StoreDirectory, url);
                if (info.StorePath.Equals(path) && Trusted(info))
                    return new SubstitutablePath(info, cache);
            }
        }
        var fetched = await cache.TryGetNarInfoAsync(path, StoreDirectory, cancellationToken).ConfigureAwait(false);
        if (fetched is not { } found)
        {
            Remember(answers, new NarInfoAnswer(cache.Url, path.HashPart, null));
            return null;
        }
        if (!Trusted(found.Info))
        {
            var reason = found.Info.Signatures.Count == 0
                ? "narinfo is not signed, and signatures are required (require-sigs)"
                : $"narinfo has no valid signature by a trusted key (signed by {string.Join(", ", found.Info.Signatures.Select(SignerName))}; trusted: {string.Join(", ", _settings.TrustedPublicKeys.Select(k => k.Name))})";
            throw new NarInfoRejectedException(cache.Resolve(path.HashPart + ".narinfo"), reason);
        }
        Remember(answers, new NarInfoAnswer(cache.Url, path.HashPart, found.Text));
        return new SubstitutablePath(found.Info, cache);
    }

    private void Remember(NarInfoAnswers? answers, NarInfoAnswer answer)
    {
        if (answers is not null)
            answers.Add(answer);
        else
            _catalog.PutNarInfoLookups([answer]);
    }

    /// <summary>Remembers answers kept during a walk, all in one catalog transaction.</summary>
    internal void Remember(NarInfoAnswers answers) => _catalog.PutNarInfoLookups(answers.Take());

    private bool Trusted(NarInfo info) => !_settings.RequireSignatures || info.HasValidSignature(_settings.TrustedPublicKeys);

    private static string SignerName(string signature)
    {
        var colon = signature.IndexOf(':', StringComparison.Ordinal);
        return colon > 0 ? signature[..colon] : "(malformed)";
    }

    /// <summary>
    /// The closure of <paramref name="roots"/> under References (only the roots when not
    /// <paramref name="followReferences"/>), every path looked up once, at most <paramref name="parallelism"/>
    /// lookups at a time, a path's references asked for as soon as its narinfo is in (<see cref="ClosureWalk"/>).
    /// The caches' answers are remembered in one catalog transaction at the end. Throws when any path is
    /// missing, naming all that are.
    /// </summary>
    /// <param name="present">
    /// Given paths the walk discovered (in batches: whatever was discovered while the previous batch was asked
    /// about), says which of them are already present where the closure is wanted (for realise: valid in Nix's
    /// database); those are neither looked up nor followed.
    /// </param>
    public async Task<IReadOnlyList<SubstitutablePath>> QueryClosureAsync(IEnumerable<StorePath> roots, int parallelism, CancellationToken cancellationToken,
        bool followReferences = true, Func<IReadOnlyCollection<StorePath>, CancellationToken, Task<IReadOnlySet<StorePath>>>? present = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(parallelism, 1);
        await InitializeAsync(cancellationToken).ConfigureAwait(false);
        var (found, failures) = await new ClosureWalk(this, parallelism, followReferences, present).RunAsync(roots, cancellationToken).ConfigureAwait(false);
        if (failures.Count > 0)
        {
            var first = failures.OrderBy(f => f.Key).First().Value;
            throw failures.Count == 1 ? first : new PathNotSubstitutableException(
                string.Join(", ", failures.Keys.Order().Select(p => p.ToFullPath(StoreDirectory))), first.Answers);
        }
        return found.Values.OrderBy(p => p.Path).ToList();
    }

    /// <summary>
    /// Looks every path up, at most <paramref name="parallelism"/> at a time; a path no cache has is an
    /// answer (<see cref="PathLookup.Missing"/>), not an error. The caches' answers are remembered in one
    /// catalog transaction at the end.
    /// </summary>
    public async Task<IReadOnlyDictionary<StorePath, PathLookup>> QueryPathInfosAsync(IEnumerable<StorePath> paths, int parallelism, CancellationToken cancellationToken)
    {
        var answers = new ConcurrentDictionary<StorePath, PathLookup>();
        var remembered = new NarInfoAnswers();
        try
        {
            await Parallel.ForEachAsync(paths, new ParallelOptions { MaxDegreeOfParallelism = parallelism, CancellationToken = cancellationToken },
                async (path, ct) =>
                {
                    try
                    {
                        answers[path] = new PathLookup(await QueryPathInfoAsync(path, remembered, ct).ConfigureAwait(false), null);
                    }
                    catch (PathNotSubstitutableException e)
                    {
                        answers[path] = new PathLookup(null, e);
                    }
                }).ConfigureAwait(false);
        }
        finally
        {
            if (!remembered.IsEmpty)
                Remember(remembered);
        }
        return answers;
    }

    public void Dispose()
    {
        foreach (var cache in _configured)
            cache.Dispose();
    }
}

/// <summary>Answers of the caches gathered by many concurrent lookups, to be remembered in the catalog together.</summary>
internal sealed class NarInfoAnswers
{
    private readonly ConcurrentQueue<NarInfoAnswer> _answers = new();

    public bool IsEmpty => _answers.IsEmpty;

    public void Add(NarInfoAnswer answer) => _answers.Enqueue(answer);

    /// <summary>Everything gathered so far, which leaves this collection.</summary>
    public IReadOnlyList<NarInfoAnswer> Take()
    {
        var taken = new List<NarInfoAnswer>(_answers.Count);
        while (_answers.TryDequeue(out var answer))
            taken.Add(answer);
        return taken;
    }
}

/// <summary>What the caches said of one path: where it can be substituted from, or why it cannot.</summary>
public readonly record struct PathLookup(SubstitutablePath? Found, PathNotSubstitutableException? Missing);

/// <summary>No configured cache has a trusted narinfo for a path; says what each cache answered.</summary>
public sealed class PathNotSubstitutableException(string path, IReadOnlyList<string> answers)
    : IOException($"{path} is not available from any substituter ({string.Join("; ", answers)})")
{
    public string StorePath { get; } = path;

    public IReadOnlyList<string> Answers { get; } = answers;
}
