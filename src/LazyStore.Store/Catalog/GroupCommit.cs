namespace LazyStore.Store.Catalog;

/// <summary>
/// Writes that arrive together share one transaction: a write waits while the one before it commits, and then
/// goes with everything that arrived meanwhile. A lone write commits at once; many at a time cost one commit per
/// batch instead of one each (SQLite takes one writer at a time anyway, so nothing is lost by waiting).
/// </summary>
/// <param name="commit">Commits a batch in one transaction; what it throws fails every write of the batch.</param>
internal sealed class GroupCommit<T>(Action<IReadOnlyList<T>> commit)
{
    private readonly Lock _lock = new();
    private List<(T Item, TaskCompletionSource Done)> _waiting = [];
    private bool _committing;

    /// <summary>Completes when <paramref name="item"/> is committed.</summary>
    public Task WriteAsync(T item)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_lock)
        {
            _waiting.Add((item, done));
            if (_committing)
                return done.Task;
            _committing = true;
        }
        _ = Task.Run(CommitWaiting);
        return done.Task;
    }

    private void CommitWaiting()
    {
        while (true)
        {
            List<(T Item, TaskCompletionSource Done)> batch;
            lock (_lock)
            {
                if (_waiting.Count == 0)
                {
                    _committing = false;
                    return;
                }
                batch = _waiting;
                _waiting = [];
            }
            try
            {
                commit(batch.ConvertAll(w => w.Item));
            }
            catch (Exception e)
            {
                foreach (var (_, done) in batch)
                    done.TrySetException(e);
                continue;
            }
            foreach (var (_, done) in batch)
                done.TrySetResult();
        }
    }
}
