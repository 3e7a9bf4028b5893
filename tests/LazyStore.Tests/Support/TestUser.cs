using System.Runtime.ExceptionServices;

namespace LazyStore.Tests.Support;

/// <summary>
/// An unprivileged user that needs no account (numeric ids only), so a fresh machine has all it takes.
/// <see cref="Run{T}"/> runs code as this user on a thread of its own, with no capabilities, as a process
/// started by <c>setpriv --reuid --regid --groups</c> would; the thread ends afterwards, so nothing else
/// ever runs with its credentials. Needs root.
/// </summary>
public sealed record TestUser(uint UserId, uint GroupId, uint[] Groups)
{
    private static readonly TimeSpan Patience = TimeSpan.FromMinutes(2);

    /// <summary>Runs <paramref name="action"/> as this user with <paramref name="umask"/> and returns its result or rethrows its exception.</summary>
    public T Run<T>(uint umask, Func<T> action)
    {
        T result = default!;
        ExceptionDispatchInfo? error = null;
        var thread = new Thread(() =>
        {
            try
            {
                Syscalls.BecomeUser(UserId, GroupId, Groups, umask);
                result = action();
            }
            catch (Exception e)
            {
                error = ExceptionDispatchInfo.Capture(e);
            }
        });
        thread.Start();
        if (!thread.Join(Patience))
            throw new TimeoutException($"code run as user {UserId} did not finish within {Patience.TotalSeconds} s");
        error?.Throw();
        return result;
    }
}
