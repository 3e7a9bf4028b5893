namespace LazyStore.Fuse;

/// <summary>What <c>statvfs(2)</c> and <c>df</c> report for the filesystem.</summary>
public readonly record struct FuseFileSystemStatistics
{
    public ulong BlockSize { get; init; }

    /// <summary>The unit of the block counts; 0 means <see cref="BlockSize"/>.</summary>
    public ulong FragmentSize { get; init; }

    public ulong Blocks { get; init; }

    public ulong BlocksFree { get; init; }

    /// <summary>Free blocks an unprivileged user may use.</summary>
    public ulong BlocksAvailable { get; init; }

    public ulong Files { get; init; }

    public ulong FilesFree { get; init; }

    public ulong MaxNameLength { get; init; }
}
