namespace LazyStore.Fuse;

/// <summary>
/// Who made a request (fuse_ctx). <see cref="ProcessId"/> is the calling thread's id and 0 for
/// requests the kernel makes on its own behalf (writeback, readahead, forget).
/// </summary>
/// <param name="Interrupted">
/// Cancelled when the kernel interrupts the request: the calling thread got a signal (SIGKILL
/// among them) while it waited for the answer. A handler that then gives up throws
/// <see cref="OperationCanceledException"/> (it is answered with EINTR); it may also finish
/// normally. Only a pending handler can be interrupted, and the token is only valid until the
/// handler's task completes: never keep it for work that outlives the request.
/// </param>
public readonly record struct FuseRequestContext(uint UserId, uint GroupId, int ProcessId, uint Umask, CancellationToken Interrupted = default);
