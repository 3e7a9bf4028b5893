using System.Threading.Channels;
using LazyStore.Nix;

namespace LazyStore.Store.Substituters;

/// <summary>
/// One walk of a closure under References: a work queue served by <c>parallelism</c> lookups, each path looked
/// up once. A path's references join the queue as soon as its narinfo is in, so every slot stays busy while
/// there is anything left to ask, whatever the closure's shape (a slow narinfo holds up only what it refers to,
/// never the rest of the walk).
/// </summary>
/// <remarks>
/// With a <c>present</c> filter (realise: which paths Nix holds as valid already), discovered paths are asked
/// about in batches, each batch everything discovered while the previous question ran, so the number of
/// questions grows with the closure's depth at most, never with its size; paths that are present are neither
/// looked up nor followed.
/// </remarks>
internal sealed class ClosureWalk
{
    private readonly SubstituterSet _substituters;
    private readonly int _parallelism;
    private readonly bool _followReferences;
    private readonly Func<IReadOnlyCollection<StorePath>, CancellationToken, Task<IReadOnlySet<StorePath>>>? _present;
    private readonly Channel<StorePath> _lookups = Channel.CreateUnbounded<StorePath>(new UnboundedChannelOptions { SingleWriter = false });
    private readonly Channel<StorePath>? _unchecked;
    private readonly Lock _lock = new();
    private readonly HashSet<StorePath> _seen = [];
    private readonly Dictionary<StorePath, SubstitutablePath> _found = [];
    private readonly Dictionary<StorePath, PathNotSubstitutableException> _missing = [];
    private readonly NarInfoAnswers _answers = new();
    // Paths discovered and not yet answered (being checked, queued or looked up); the walk ends at zero.
    private int _outstanding;

    public ClosureWalk(SubstituterSet substituters, int parallelism, bool followReferences,
        Func<IReadOnlyCollection<StorePath>, CancellationToken, Task<IReadOnlySet<StorePath>>>? present)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(parallelism, 1);
        _substituters = substituters;
        _parallelism = parallelism;
        _followReferences = followReferences;
        _present = present;
        if (present is not null)
            _unchecked = Channel.CreateUnbounded<StorePath>(new UnboundedChannelOptions { SingleReader = true });
    }

    /// <summary>What the walk found, and the paths no cache has with what each cache answered.</summary>
    public async Task<(IReadOnlyDictionary<StorePath, SubstitutablePath> Found, IReadOnlyDictionary<StorePath, PathNotSubstitutableException> Missing)> RunAsync(
        IEnumerable<StorePath> roots, CancellationToken cancellationToken)
    {
        using var stopping = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var workers = new List<Task>(_parallelism + 1);
        try
        {
            Discover(roots);
            for (int i = 0; i < _parallelism; i++)
                workers.Add(Task.Run(() => LookUpAsync(stopping), CancellationToken.None));
            if (_unchecked is not null)
                workers.Add(Task.Run(() => CheckPresentAsync(_unchecked.Reader, stopping), CancellationToken.None));
            await Task.WhenAll(workers).ConfigureAwait(false);
        }
        catch
        {
            // The first failure stops the others; it is the one reported (not the cancellations it caused).
            await stopping.CancelAsync().ConfigureAwait(false);
            var failures = workers.Where(w => w.IsFaulted).SelectMany(w => w.Exception!.InnerExceptions).ToList();
            if (failures.FirstOrDefault(e => e is not OperationCanceledException) is { } first)
                System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(first);
            throw;
        }
        finally
        {
            // Answers already received are worth keeping whatever happened to the rest of the walk: one transaction.
            if (!_answers.IsEmpty)
                _substituters.Remember(_answers);
        }
        return (_found, _missing);
    }

    private void Discover(IEnumerable<StorePath> paths)
    {
        lock (_lock)
        {
            foreach (var path in paths)
            {
                if (!_seen.Add(path))
                    continue;
                _outstanding++;
                var queued = _unchecked is not null ? _unchecked.Writer.TryWrite(path) : _lookups.Writer.TryWrite(path);
                System.Diagnostics.Debug.Assert(queued, "the queues are unbounded and open while paths are outstanding");
            }
            if (_outstanding == 0)
                Finish();
        }
    }

    /// <summary>One path is answered: the walk ends with the last.</summary>
    private void Answered(int count = 1)
    {
        lock (_lock)
        {
            _outstanding -= count;
            if (_outstanding == 0)
                Finish();
        }
    }

    private void Finish()
    {
        _lookups.Writer.TryComplete();
        _unchecked?.Writer.TryComplete();
    }

    private async Task LookUpAsync(CancellationTokenSource stopping)
    {
        try
        {
            await foreach (var path in _lookups.Reader.ReadAllAsync(stopping.Token).ConfigureAwait(false))
            {
                SubstitutablePath? found = null;
                try
                {
                    found = await _substituters.QueryPathInfoAsync(path, _answers, stopping.Token).ConfigureAwait(false);
                }
                catch (PathNotSubstitutableException e)
                {
                    lock (_lock)
                        _missing[path] = e;
                }
                if (found is not null)
                {
                    lock (_lock)
                        _found[path] = found;
                    if (_followReferences)
                        Discover(found.Info.References);
                }
                Answered();
            }
        }
        catch
        {
            await stopping.CancelAsync().ConfigureAwait(false);
            throw;
        }
    }

    private async Task CheckPresentAsync(ChannelReader<StorePath> discovered, CancellationTokenSource stopping)
    {
        try
        {
            while (await discovered.WaitToReadAsync(stopping.Token).ConfigureAwait(false))
            {
                var batch = new List<StorePath>();
                while (discovered.TryRead(out var path))
                    batch.Add(path);
                var there = await _present!(batch, stopping.Token).ConfigureAwait(false);
                var absent = 0;
                foreach (var path in batch)
                {
                    if (there.Contains(path))
                        continue;
                    _lookups.Writer.TryWrite(path);
                    absent++;
                }
                Answered(batch.Count - absent);
            }
        }
        catch
        {
            await stopping.CancelAsync().ConfigureAwait(false);
            throw;
        }
    }
}
