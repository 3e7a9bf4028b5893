namespace LazyStore.Fuse;

/// <summary>The reply to open and opendir (fuse_file_info's fields the kernel reads back).</summary>
public readonly record struct FuseOpenResult
{
    /// <summary>An id of the filesystem's choosing, passed back with every request on this open file.</summary>
    public ulong FileHandle { get; init; }

    /// <summary>Keep the page cache from earlier opens (FOPEN_KEEP_CACHE); right for content that never changes.</summary>
    public bool KeepCache { get; init; }

    /// <summary>Bypass the page cache (FOPEN_DIRECT_IO): every read and write reaches the filesystem.</summary>
    public bool DirectIo { get; init; }

    /// <summary>The file cannot seek (FOPEN_NONSEEKABLE), like a pipe.</summary>
    public bool NonSeekable { get; init; }

    /// <summary>The kernel need not send flush when the file is closed (FOPEN_NOFLUSH).</summary>
    public bool NoFlush { get; init; }

    /// <summary>opendir only: the kernel may cache this directory's readdir results (FOPEN_CACHE_DIR).</summary>
    public bool CacheDirectory { get; init; }
}

/// <summary>The reply to create: the new entry and the open file.</summary>
public readonly record struct FuseCreateResult(FuseEntry Entry, FuseOpenResult Open);
