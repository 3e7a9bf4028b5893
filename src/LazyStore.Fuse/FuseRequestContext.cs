namespace LazyStore.Fuse;

/// <summary>
/// Who made a request (fuse_ctx). <see cref="ProcessId"/> is the calling thread's id and 0 for
/// requests the kernel makes on its own behalf (writeback, readahead, forget).
/// </summary>
public readonly record struct FuseRequestContext(uint UserId, uint GroupId, int ProcessId, uint Umask);
