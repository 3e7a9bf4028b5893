using System.Collections.Concurrent;
using LazyStore.Fuse.Interop;

namespace LazyStore.Fuse;

/// <summary>
/// Answers every request of one session exactly once: synchronously on the libfuse worker when the
/// handler's task is already complete, otherwise from the thread that completes it. Requests still
/// pending when the session ends are answered here, and from then on nothing touches the session.
/// </summary>
/// <remarks>
/// Interrupts: each request's handler gets a token (<see cref="FuseRequestContext.Interrupted"/>).
/// While a handler is pending, libfuse calls <see cref="FuseOperations"/>' interrupt callback when
/// the kernel sends FUSE_INTERRUPT for it (the caller got a signal, SIGKILL included); the token is
/// then cancelled, and a handler that ends with <see cref="OperationCanceledException"/> is
/// answered with EINTR. The kernel keeps a caller waiting until its request is answered, even after
/// SIGKILL, so this is what lets a killed process go.
/// </remarks>
internal sealed class FuseResponder
{
    // A handler that completed synchronously hands its token source back to the worker's spare.
    [ThreadStatic]
    private static CancellationTokenSource? t_spareInterruption;

    private readonly ConcurrentDictionary<nint, PendingRequest> _pending = new();
    private readonly Action<string> _log;
    private int _inNative;
    private bool _closed;

    internal FuseResponder(Action<string> log)
    {
        _log = log;
    }

    /// <summary>The source of the token a handler is given; pass it back with the handler's task to <see cref="Complete{T, TReply}"/>.</summary>
    internal static CancellationTokenSource RentInterruption()
    {
        var spare = t_spareInterruption;
        if (spare is null)
            return new CancellationTokenSource();
        t_spareInterruption = null;
        return spare;
    }

    /// <summary>
    /// Replies with <paramref name="pending"/>'s result or error. Never throws. <paramref name="interruption"/>
    /// is cancelled if the kernel interrupts the request while <paramref name="pending"/> runs.
    /// </summary>
    internal void Complete<T, TReply>(nint request, ValueTask<T> pending, TReply reply, string operation, CancellationTokenSource interruption)
        where TReply : struct, IReply<T>
    {
        if (pending.IsCompleted)
        {
            try
            {
                T result;
                try
                {
                    result = pending.Result;
                }
                catch (Exception e)
                {
                    Fail(request, e, operation);
                    return;
                }
                Send(request, result, ref reply, operation);
            }
            finally
            {
                reply.Release();
                // Nothing else knows this source: the handler is done and no interrupt callback was registered.
                if (interruption.TryReset())
                    t_spareInterruption = interruption;
            }
            return;
        }
        var tracked = new PendingRequest(request, interruption);
        _pending.TryAdd(request, tracked);
        // Registered before anything can answer the request: if it was interrupted already, the callback
        // runs inside this call, under the request's lock, and must find the request unanswered.
        unsafe
        {
            LibFuse.fuse_req_interrupt_func(request, &FuseOperations.Interrupted, 0);
        }
        _ = CompleteLaterAsync(tracked, pending, reply, operation);
    }

    /// <summary><see cref="Complete{T, TReply}"/> for handlers that return no value.</summary>
    internal void Complete<TReply>(nint request, ValueTask pending, TReply reply, string operation, CancellationTokenSource interruption)
        where TReply : struct, IReply<bool>
    {
        if (pending.IsCompletedSuccessfully)
            Complete(request, new ValueTask<bool>(true), reply, operation, interruption);
        else
            Complete(request, Awaited(pending), reply, operation, interruption);
    }

    /// <summary>
    /// The kernel interrupted <paramref name="request"/> (libfuse's interrupt callback, with the request's
    /// lock held): its handler's token is cancelled, its callbacks run on the thread pool.
    /// </summary>
    internal void Interrupt(nint request)
    {
        if (_pending.TryGetValue(request, out var tracked))
            tracked.Interrupt();
    }

    /// <summary>Replies with the errno that <paramref name="error"/> maps to.</summary>
    internal void Fail(nint request, Exception error, string operation, bool interrupted = false) =>
        LibFuse.fuse_reply_err(request, ToErrno(error, operation, interrupted));

    /// <summary>
    /// The one place an exception becomes an errno: <see cref="FuseException"/> carries its own, a
    /// handler that gave up because its request was interrupted is EINTR, anything else is logged and is EIO.
    /// </summary>
    internal int ToErrno(Exception error, string operation, bool interrupted = false)
    {
        if (error is FuseException fuse)
            return fuse.Errno;
        if (interrupted && error is OperationCanceledException)
            return Errno.EINTR;
        _log($"{operation}: {error}");
        return Errno.EIO;
    }

    /// <summary>Enters a section that uses the session; false once the session is closing.</summary>
    internal bool TryEnterNative()
    {
        Interlocked.Increment(ref _inNative);
        if (!Volatile.Read(ref _closed))
            return true;
        Interlocked.Decrement(ref _inNative);
        return false;
    }

    internal void ExitNative() => Interlocked.Decrement(ref _inNative);

    /// <summary>
    /// Called after the request loop has returned: answers the requests whose handlers have not
    /// completed with ENOTCONN, then waits out replies and notifications in progress. Afterwards the
    /// session may be destroyed; late completions find their request answered and only release buffers.
    /// </summary>
    internal void Close()
    {
        int abandoned = 0;
        foreach (var tracked in _pending.Values)
        {
            if (tracked.TryClaim())
            {
                _pending.TryRemove(new KeyValuePair<nint, PendingRequest>(tracked.Request, tracked));
                LibFuse.fuse_reply_err(tracked.Request, Errno.ENOTCONN);
                abandoned++;
                // Nobody waits for the handler any more: let it stop.
                tracked.Interrupt();
            }
        }
        if (abandoned > 0)
            _log($"{abandoned} request(s) still in progress when the session ended were answered with ENOTCONN");
        Volatile.Write(ref _closed, true);
        var spin = new SpinWait();
        while (Volatile.Read(ref _inNative) != 0)
            spin.SpinOnce();
    }

    private void Send<T, TReply>(nint request, T result, ref TReply reply, string operation)
        where TReply : struct, IReply<T>
    {
        try
        {
            reply.Send(request, result);
        }
        catch (Exception e)
        {
            Fail(request, e, operation);
        }
    }

    private async Task CompleteLaterAsync<T, TReply>(PendingRequest tracked, ValueTask<T> pending, TReply reply, string operation)
        where TReply : struct, IReply<T>
    {
        try
        {
            T result = default!;
            Exception? error = null;
            try
            {
                result = await pending.ConfigureAwait(false);
            }
            catch (Exception e)
            {
                error = e;
            }
            if (!TryEnterNative())
                return;
            try
            {
                if (!tracked.TryClaim())
                    return;
                // Out of the table before the reply frees the request: libfuse may reuse its address at once.
                _pending.TryRemove(new KeyValuePair<nint, PendingRequest>(tracked.Request, tracked));
                if (error is null)
                    Send(tracked.Request, result, ref reply, operation);
                else
                    Fail(tracked.Request, error, operation, tracked.WasInterrupted);
            }
            finally
            {
                ExitNative();
            }
        }
        finally
        {
            reply.Release();
        }
    }

    private static async ValueTask<bool> Awaited(ValueTask pending)
    {
        await pending.ConfigureAwait(false);
        return true;
    }

    /// <summary>A request whose handler completes later; claimed once, by its completion or by <see cref="Close"/>.</summary>
    private sealed class PendingRequest(nint request, CancellationTokenSource interruption)
    {
        private int _claimed;
        private int _interrupted;

        internal nint Request { get; } = request;

        internal bool WasInterrupted => Volatile.Read(ref _interrupted) != 0;

        internal bool TryClaim() => Interlocked.Exchange(ref _claimed, 1) == 0;

        /// <summary>Cancels the handler's token once; its callbacks (the handler's continuations) run on the thread pool, never inside libfuse's lock.</summary>
        internal void Interrupt()
        {
            if (Interlocked.Exchange(ref _interrupted, 1) == 0)
                _ = interruption.CancelAsync();
        }
    }
}
