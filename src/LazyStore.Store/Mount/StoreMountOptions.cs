namespace LazyStore.Store.Mount;

/// <summary>How much a mount logs.</summary>
public enum MountLogLevel
{
    /// <summary>Failures only: a fetch that failed, an operation answered with EIO.</summary>
    Error,

    /// <summary>Also each NAR fetched (path, bytes, time) and each on-demand path looked up.</summary>
    Info,

    /// <summary>Also every lazy open and every root lookup.</summary>
    Debug,
}

/// <summary>How <see cref="StoreMount.Mount"/> mounts a lazy store.</summary>
public sealed record StoreMountOptions
{
    /// <summary>
    /// The real store directory whose entries pass through; null means the mount point itself, opened
    /// before the mount covers it.
    /// </summary>
    public string? LowerDirectory { get; init; }

    /// <summary>Serve any well-formed store path name a trusted cache has, not only registered ones.</summary>
    public bool OnDemand { get; init; }

    /// <summary>Let other users in (needs user_allow_other in /etc/fuse.conf unless root).</summary>
    public bool AllowOther { get; init; }

    public TextWriter? Log { get; init; }

    public MountLogLevel Verbosity { get; init; } = MountLogLevel.Error;

    /// <summary>How long a NAR whose fetch failed is answered with EIO at once instead of being fetched again.</summary>
    public TimeSpan FailureBackoff { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>The most libfuse worker threads.</summary>
    public int MaxThreads { get; init; } = 16;
}
