using LazyStore.Fuse.Interop;

namespace LazyStore.Fuse;

/// <summary>The binding's public records to and from libfuse's structs, in one place.</summary>
internal static class NativeConversions
{
    internal static LibFuse.Stat ToStat(in FuseAttributes attributes, ulong nodeId) => new()
    {
        Ino = attributes.Inode != 0 ? attributes.Inode : nodeId,
        Mode = attributes.Mode,
        Nlink = attributes.LinkCount,
        Uid = attributes.UserId,
        Gid = attributes.GroupId,
        Rdev = attributes.DeviceNumber,
        Size = attributes.Size,
        Blocks = attributes.Blocks,
        Blksize = attributes.BlockSize,
        AtimeSec = attributes.AccessTime.Seconds,
        AtimeNsec = attributes.AccessTime.Nanoseconds,
        MtimeSec = attributes.ModificationTime.Seconds,
        MtimeNsec = attributes.ModificationTime.Nanoseconds,
        CtimeSec = attributes.ChangeTime.Seconds,
        CtimeNsec = attributes.ChangeTime.Nanoseconds,
    };

    internal static LibFuse.EntryParam ToEntryParam(in FuseEntry entry) => new()
    {
        Ino = entry.NodeId,
        Generation = entry.Generation,
        Attr = ToStat(entry.Attributes, entry.NodeId),
        AttrTimeout = Seconds(entry.AttributeTimeout),
        EntryTimeout = Seconds(entry.EntryTimeout),
    };

    internal static LibFuse.FileInfo ToFileInfo(in FuseOpenResult open)
    {
        uint bits = 0;
        if (open.DirectIo)
            bits |= LibFuse.FileInfo.DirectIo;
        if (open.KeepCache)
            bits |= LibFuse.FileInfo.KeepCache;
        if (open.NonSeekable)
            bits |= LibFuse.FileInfo.NonSeekable;
        if (open.CacheDirectory)
            bits |= LibFuse.FileInfo.CacheReaddir;
        if (open.NoFlush)
            bits |= LibFuse.FileInfo.NoFlush;
        return new LibFuse.FileInfo { Fh = open.FileHandle, Bits = bits };
    }

    internal static LibFuse.Statvfs ToStatvfs(in FuseFileSystemStatistics statistics) => new()
    {
        Bsize = statistics.BlockSize,
        Frsize = statistics.FragmentSize != 0 ? statistics.FragmentSize : statistics.BlockSize,
        Blocks = statistics.Blocks,
        Bfree = statistics.BlocksFree,
        Bavail = statistics.BlocksAvailable,
        Files = statistics.Files,
        Ffree = statistics.FilesFree,
        Favail = statistics.FilesFree,
        Namemax = statistics.MaxNameLength,
    };

    internal static FuseSetAttributes ToSetAttributes(in LibFuse.Stat attr, int toSet, ulong? fileHandle)
    {
        var set = (LibFuse.SetAttrFlags)toSet;
        return new FuseSetAttributes
        {
            Mode = set.HasFlag(LibFuse.SetAttrFlags.Mode) ? attr.Mode : null,
            UserId = set.HasFlag(LibFuse.SetAttrFlags.Uid) ? attr.Uid : null,
            GroupId = set.HasFlag(LibFuse.SetAttrFlags.Gid) ? attr.Gid : null,
            Size = set.HasFlag(LibFuse.SetAttrFlags.Size) ? attr.Size : null,
            AccessTime = TimeChange(set, LibFuse.SetAttrFlags.Atime, LibFuse.SetAttrFlags.AtimeNow, attr.AtimeSec, attr.AtimeNsec),
            ModificationTime = TimeChange(set, LibFuse.SetAttrFlags.Mtime, LibFuse.SetAttrFlags.MtimeNow, attr.MtimeSec, attr.MtimeNsec),
            FileHandle = fileHandle,
        };
    }

    internal static FuseRequestContext ToContext(in LibFuse.Ctx ctx, CancellationToken interrupted) => new(ctx.Uid, ctx.Gid, ctx.Pid, ctx.Umask, interrupted);

    /// <summary>A TimeSpan as libfuse's double seconds; libfuse clamps what the kernel cannot hold.</summary>
    internal static double Seconds(TimeSpan timeout) => timeout <= TimeSpan.Zero ? 0 : timeout.TotalSeconds;

    // The kernel sends FATTR_ATIME together with FATTR_ATIME_NOW for UTIME_NOW (fuse_setattr in fs/fuse/dir.c).
    private static FuseTimeChange TimeChange(LibFuse.SetAttrFlags set, LibFuse.SetAttrFlags time, LibFuse.SetAttrFlags now, long seconds, long nanoseconds)
    {
        if ((set & now) != 0)
            return FuseTimeChange.Now;
        if ((set & time) != 0)
            return FuseTimeChange.To(new FuseTimestamp(seconds, (uint)nanoseconds));
        return FuseTimeChange.Omit;
    }
}
