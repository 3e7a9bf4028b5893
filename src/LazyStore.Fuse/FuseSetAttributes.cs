namespace LazyStore.Fuse;

public enum FuseTimeChangeKind
{
    /// <summary>Leave the time as it is (UTIME_OMIT, or the field was not part of the request).</summary>
    Omit,

    /// <summary>Set it to the current time (UTIME_NOW).</summary>
    Now,

    /// <summary>Set it to <see cref="FuseTimeChange.Time"/>.</summary>
    Set,
}

/// <summary>How setattr changes one timestamp.</summary>
public readonly record struct FuseTimeChange(FuseTimeChangeKind Kind, FuseTimestamp Time)
{
    public static FuseTimeChange Omit => default;

    public static FuseTimeChange Now => new(FuseTimeChangeKind.Now, default);

    public static FuseTimeChange To(FuseTimestamp time) => new(FuseTimeChangeKind.Set, time);
}

/// <summary>
/// The changes a setattr request asks for (chmod, chown, truncate, utimensat); a null field is left as it is.
/// </summary>
public readonly record struct FuseSetAttributes
{
    /// <summary>The new <c>st_mode</c>; the kernel sends the file type bits too, only the low 12 bits change.</summary>
    public uint? Mode { get; init; }

    public uint? UserId { get; init; }

    public uint? GroupId { get; init; }

    /// <summary>Truncate or extend to this size.</summary>
    public long? Size { get; init; }

    public FuseTimeChange AccessTime { get; init; }

    public FuseTimeChange ModificationTime { get; init; }

    /// <summary>The open file the change came through (ftruncate, futimens), when there is one.</summary>
    public ulong? FileHandle { get; init; }
}

/// <summary>renameat2(2) flags.</summary>
[Flags]
public enum FuseRenameFlags : uint
{
    None = 0,

    /// <summary>RENAME_NOREPLACE: fail with EEXIST when the target exists.</summary>
    NoReplace = 1,

    /// <summary>RENAME_EXCHANGE: swap the two names atomically; both must exist.</summary>
    Exchange = 2,

    /// <summary>RENAME_WHITEOUT: leave a whiteout at the source (overlay filesystems).</summary>
    Whiteout = 4,
}
