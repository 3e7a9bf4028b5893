using LazyStore.Store.Serving;

namespace LazyStore.Tests.Support;

/// <summary>
/// Measures how many requests a client keeps in flight at once, without timing anything: a loopback cache's
/// matching requests are held unanswered until <c>target</c> of them have arrived, then all are answered (and
/// later ones at once). A client that keeps at most N in flight can send no more than N before the first
/// answer, so <see cref="MostHeld"/> is min(N, target); when fewer than <c>target</c> ever arrive, the hold
/// ends <c>bound</c> after the first one arrived, so that the test can fail instead of hanging (or, with a
/// target above N, see that no more than N came).
/// </summary>
public sealed class HeldRequests : IDisposable
{
    private readonly Func<ServerRequest, bool> _matches;
    private readonly int _target;
    private readonly TaskCompletionSource _released = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TimeSpan _boundAfterFirst;
    private readonly CancellationTokenSource _bound = new();
    private readonly Lock _lock = new();
    private readonly List<string> _held = [];

    public HeldRequests(Func<ServerRequest, bool> matches, int target, TimeSpan bound)
    {
        _matches = matches;
        _target = target;
        _boundAfterFirst = bound;
        _bound.Token.Register(() => _released.TrySetResult());
    }

    /// <summary>The server's fault hook: holds a matching request while fewer than the target have arrived.</summary>
    public ServerFault? Fault(ServerRequest request)
    {
        if (!_matches(request))
            return null;
        lock (_lock)
        {
            if (_released.Task.IsCompleted)
                return null;
            _held.Add(request.Path);
            if (_held.Count == 1)
                _bound.CancelAfter(_boundAfterFirst);
            if (_held.Count >= _target)
            {
                ReachedTarget = true;
                _released.TrySetResult();
            }
            return new ServerFault.Hold(_released.Task);
        }
    }

    /// <summary>How many matching requests were in flight at once before any was answered.</summary>
    public int MostHeld
    {
        get
        {
            lock (_lock)
                return _held.Count;
        }
    }

    /// <summary>The paths of the requests that were held, in the order they arrived.</summary>
    public IReadOnlyList<string> Held
    {
        get
        {
            lock (_lock)
                return [.. _held];
        }
    }

    /// <summary>Whether the hold ended because the target was reached (not because the bound passed).</summary>
    public bool ReachedTarget { get; private set; }

    /// <summary>Completes when the held requests are answered.</summary>
    public Task Released => _released.Task;

    public void Dispose()
    {
        _released.TrySetResult();
        _bound.Dispose();
    }
}
