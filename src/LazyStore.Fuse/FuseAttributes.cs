namespace LazyStore.Fuse;

/// <summary>The file type bits of <c>st_mode</c> (<c>S_IFMT</c>, sys/stat.h).</summary>
public enum FuseFileType : uint
{
    Fifo = 0x1000,
    CharacterDevice = 0x2000,
    Directory = 0x4000,
    BlockDevice = 0x6000,
    Regular = 0x8000,
    Symlink = 0xA000,
    Socket = 0xC000,
}

/// <summary>
/// A point in time as <c>struct timespec</c> holds it: whole seconds since the Unix epoch and the
/// nanoseconds within that second, so a lower filesystem's timestamps pass through without rounding.
/// </summary>
public readonly record struct FuseTimestamp(long Seconds, uint Nanoseconds)
{
    private const long NanosecondsPerTick = 100;

    public static FuseTimestamp Now => FromDateTimeOffset(DateTimeOffset.UtcNow);

    public static FuseTimestamp FromDateTimeOffset(DateTimeOffset time)
    {
        long ticks = time.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks;
        long seconds = Math.DivRem(ticks, TimeSpan.TicksPerSecond, out long remainder);
        if (remainder < 0)
        {
            seconds--;
            remainder += TimeSpan.TicksPerSecond;
        }
        return new FuseTimestamp(seconds, (uint)(remainder * NanosecondsPerTick));
    }

    /// <summary>The instant in UTC, truncated to the 100 ns resolution of <see cref="DateTimeOffset"/>.</summary>
    public DateTimeOffset ToDateTimeOffset() =>
        DateTimeOffset.UnixEpoch.AddTicks(checked(Seconds * TimeSpan.TicksPerSecond) + Nanoseconds / NanosecondsPerTick);
}

/// <summary>
/// What <c>stat(2)</c> reports for a node. The kernel caches these for the attribute timeout the
/// reply names.
/// </summary>
public readonly record struct FuseAttributes
{
    /// <summary><c>st_ino</c>, the inode number programs see; 0 means "use the node id".</summary>
    public ulong Inode { get; init; }

    /// <summary><c>st_mode</c>: the <see cref="FuseFileType"/> bits and the permission bits.</summary>
    public uint Mode { get; init; }

    public uint LinkCount { get; init; }

    public uint UserId { get; init; }

    public uint GroupId { get; init; }

    /// <summary><c>st_rdev</c> of a device node (the kernel's encoded <c>dev_t</c>); 0 otherwise.</summary>
    public uint DeviceNumber { get; init; }

    public long Size { get; init; }

    /// <summary><c>st_blocks</c>: allocated size in 512-byte units, which <c>du</c> sums.</summary>
    public long Blocks { get; init; }

    /// <summary><c>st_blksize</c>, the preferred I/O size; 0 leaves the kernel's default (the page size).</summary>
    public int BlockSize { get; init; }

    public FuseTimestamp AccessTime { get; init; }

    public FuseTimestamp ModificationTime { get; init; }

    public FuseTimestamp ChangeTime { get; init; }

    public FuseFileType Type => (FuseFileType)(Mode & 0xF000);
}

/// <summary>Attributes and how long the kernel may cache them.</summary>
public readonly record struct FuseAttributeResult(FuseAttributes Attributes, TimeSpan Timeout);
