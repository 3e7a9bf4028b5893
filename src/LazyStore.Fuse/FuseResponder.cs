using System.Collections.Concurrent;
using LazyStore.Fuse.Interop;

namespace LazyStore.Fuse;

/// <summary>
/// Answers every request of one session exactly once: synchronously on the libfuse worker when the
/// handler's task is already complete, otherwise from the thread that completes it. Requests still
/// pending when the session ends are answered here, and from then on nothing touches the session.
/// </summary>
internal sealed class FuseResponder
{
    private readonly ConcurrentDictionary<PendingRequest, byte> _pending = new();
    private readonly Action<string> _log;
    private int _inNative;
    private bool _closed;

    internal FuseResponder(Action<string> log)
    {
        _log = log;
    }

    /// <summary>Replies with <paramref name="pending"/>'s result or error. Never throws.</summary>
    internal void Complete<T, TReply>(nint request, ValueTask<T> pending, TReply reply, string operation)
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
            }
            return;
        }
        var tracked = new PendingRequest(request);
        _pending.TryAdd(tracked, 0);
        _ = CompleteLaterAsync(tracked, pending, reply, operation);
    }

    /// <summary><see cref="Complete{T, TReply}"/> for handlers that return no value.</summary>
    internal void Complete<TReply>(nint request, ValueTask pending, TReply reply, string operation)
        where TReply : struct, IReply<bool>
    {
        if (pending.IsCompletedSuccessfully)
            Complete(request, new ValueTask<bool>(true), reply, operation);
        else
            Complete(request, Awaited(pending), reply, operation);
    }

    /// <summary>Replies with the errno that <paramref name="error"/> maps to.</summary>
    internal void Fail(nint request, Exception error, string operation) =>
        LibFuse.fuse_reply_err(request, ToErrno(error, operation));

    /// <summary>The one place an exception becomes an errno: <see cref="FuseException"/> carries its own, anything else is logged and is EIO.</summary>
    internal int ToErrno(Exception error, string operation)
    {
        if (error is FuseException fuse)
            return fuse.Errno;
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
        foreach (var tracked in _pending.Keys)
        {
            if (tracked.TryClaim())
            {
                LibFuse.fuse_reply_err(tracked.Request, Errno.ENOTCONN);
                abandoned++;
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
                if (error is null)
                    Send(tracked.Request, result, ref reply, operation);
                else
                    Fail(tracked.Request, error, operation);
            }
            finally
            {
                ExitNative();
            }
        }
        finally
        {
            reply.Release();
            _pending.TryRemove(tracked, out _);
        }
    }

    private static async ValueTask<bool> Awaited(ValueTask pending)
    {
        await pending.ConfigureAwait(false);
        return true;
    }

    /// <summary>A request whose handler completes later; claimed once, by its completion or by <see cref="Close"/>.</summary>
    private sealed class PendingRequest(nint request)
    {
        private int _claimed;

        internal nint Request { get; } = request;

        internal bool TryClaim() => Interlocked.Exchange(ref _claimed, 1) == 0;
    }
}
