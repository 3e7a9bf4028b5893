using LazyStore.Fuse;

namespace LazyStore.Store.Mount;

/// <summary>
/// Has the kernel forget what it cached from nodes the mount dropped (made from a cache's listing that
/// disagreed with the verified NAR): their attributes and pages, and the entries of their paths' names in
/// the mount's root, so that the next lookup finds the verified tree. Sent one batch after another from a
/// thread of their own: to drop an entry the kernel locks the parent directory and waits for operations
/// in it, so an invalidation is never sent from a handler, nor from anything a handler waits for.
/// </summary>
internal sealed class KernelCacheInvalidations(MountLog log) : IDisposable
{
    private readonly TaskCompletionSource<FuseMount> _kernel = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Lock _lock = new();
    private Task _sent = Task.CompletedTask;

    /// <summary>Completes when every invalidation asked for so far was sent (or the mount ended first).</summary>
    public Task Completion
    {
        get
        {
            lock (_lock)
                return _sent;
        }
    }

    /// <summary>The kernel to notify, once mounted; invalidations asked for before wait for it.</summary>
    public void Attach(FuseMount kernel) => _kernel.TrySetResult(kernel);

    /// <summary>Queues the invalidation of the dropped <paramref name="nodes"/> and of <paramref name="rootNames"/> in the mount's root.</summary>
    public void Forget(IReadOnlyList<string> rootNames, IReadOnlyList<ulong> nodes)
    {
        lock (_lock)
            _sent = SendAfterAsync(_sent, rootNames, nodes);
    }

    private async Task SendAfterAsync(Task previous, IReadOnlyList<string> rootNames, IReadOnlyList<ulong> nodes)
    {
        await previous.ConfigureAwait(false);
        FuseMount kernel;
        try
        {
            kernel = await _kernel.Task.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return;
        }
        await Task.Factory.StartNew(() => Send(kernel, rootNames, nodes), CancellationToken.None,
            TaskCreationOptions.LongRunning, TaskScheduler.Default).ConfigureAwait(false);
    }

    private void Send(FuseMount kernel, IReadOnlyList<string> rootNames, IReadOnlyList<ulong> nodes)
    {
        // Attributes and pages first: no directory lock, and enough for stat, open and readlink, which then
        // meet ESTALE and make the kernel walk the path again.
        foreach (var node in nodes)
        {
            try
            {
                kernel.InvalidateData(node);
            }
            catch (FuseException e)
            {
                log.Error($"cannot drop the kernel's cached attributes of node {node}: {e.Message}");
            }
        }
        foreach (var name in rootNames)
        {
            try
            {
                kernel.InvalidateEntry(IFuseFileSystem.RootNodeId, name);
            }
            catch (FuseException e)
            {
                log.Error($"cannot drop the kernel's cached entry of {name}: {e.Message}");
            }
        }
        log.Debug($"the kernel forgot the entries of {string.Join(", ", rootNames)} and {nodes.Count} nodes made from their listings");
    }

    public void Dispose() => _kernel.TrySetCanceled();
}
