using LazyStore.Nix.Interop;
using Microsoft.Win32.SafeHandles;

namespace LazyStore.Store.Catalog;

/// <summary>
/// Which file a NAR blob is, recorded when it was committed: its inode and change time. Any write to the file,
/// a chmod, or another file renamed over it changes one of them (the kernel sets ctime on every change, and
/// nothing can set it back), so a blob whose stamp differs was touched behind the catalog's back and is not
/// served before it is hashed again. Damage that bypasses the file system (a failing disk) leaves the stamp
/// alone: <c>lazystore verify</c> re-hashes for that.
/// </summary>
public readonly record struct BlobStamp(long Inode, long ChangeTimeNs, long Size)
{
    /// <summary>The stamp of the file at <paramref name="path"/>; null when there is no such file.</summary>
    public static BlobStamp? Read(string path)
    {
        try
        {
            return Of(Posix.StatAt(Posix.AtFdCwd, path));
        }
        catch (PosixException e) when (e.Errno == 2) // ENOENT
        {
            return null;
        }
    }

    /// <summary>The stamp of an open file (fstat: the file read from, whatever its name points to now).</summary>
    public static BlobStamp Read(SafeFileHandle file)
    {
        var added = false;
        try
        {
            file.DangerousAddRef(ref added);
            return Of(Posix.StatAt((int)file.DangerousGetHandle(), ""));
        }
        finally
        {
            if (added)
                file.DangerousRelease();
        }
    }

    /// <summary>Whether this is the blob <paramref name="nar"/> recorded at commit: same inode and change time, and NarSize bytes.</summary>
    public bool Matches(NarRecord nar) => nar.Stamp is { } recorded && recorded.Inode == Inode && recorded.ChangeTimeNs == ChangeTimeNs && Size == nar.NarSize;

    private static BlobStamp Of(PosixStat stat) =>
        new((long)stat.Inode, stat.Change.Seconds * 1_000_000_000 + stat.Change.Nanoseconds, stat.Size);
}
