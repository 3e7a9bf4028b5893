using LazyStore.Fuse;
using LazyStore.Nix.Interop;

namespace LazyStore.Store.Mount;

/// <summary>What a mount has done so far: lazy opens, those that failed, NARs downloaded and verified, and the bytes downloaded (failed attempts included).</summary>
public readonly record struct StoreMountStatistics(long LazyOpens, long FailedOpens, long NarsFetched, long BytesDownloaded);

/// <summary>
/// A lazy store mounted with FUSE: the lower store directory passes through, store paths from the
/// catalog (and, on demand, from the caches) appear as read-only trees fetched on first open.
/// </summary>
public sealed class StoreMount : IDisposable
{
    private readonly FuseMount _fuse;
    private readonly StoreFileSystem _fileSystem;

    private StoreMount(FuseMount fuse, StoreFileSystem fileSystem)
    {
        _fuse = fuse;
        _fileSystem = fileSystem;
    }

    /// <summary>The canonical absolute path of the mount.</summary>
    public string MountPoint => _fuse.MountPoint;

    /// <summary>Completes when the mount has gone (unmounted here or from outside); faults if the session failed.</summary>
    public Task Completion => _fuse.Completion;

    public StoreMountStatistics Statistics => _fileSystem.Statistics;

    /// <summary>Completes when the kernel was told to forget everything it cached from listings dropped so far.</summary>
    internal Task KernelCachesInvalidated => _fileSystem.KernelCachesInvalidated;

    /// <summary>
    /// Mounts <paramref name="engine"/>'s lazy store at <paramref name="mountPoint"/>. The lower directory
    /// (the mount point itself unless <see cref="StoreMountOptions.LowerDirectory"/> names another) is
    /// opened first, so a mount directly over the real store directory still reaches what it covers.
    /// Throws <see cref="FuseMountException"/> when FUSE is unavailable or the mount point is unusable,
    /// <see cref="IOException"/> when the lower directory cannot be opened.
    /// </summary>
    public static StoreMount Mount(LazyStoreEngine engine, string mountPoint, StoreMountOptions options)
    {
        ArgumentNullException.ThrowIfNull(engine);
        if (FuseMount.UnavailableReason is { } reason)
            throw new FuseMountException($"cannot mount at {mountPoint}: {reason}");
        var lowerPath = Path.GetFullPath(options.LowerDirectory ?? mountPoint);
        SafeFileDescriptor lower;
        try
        {
            lower = Posix.OpenAt(Posix.AtFdCwd, lowerPath, Posix.OPath | Posix.ODirectory);
        }
        catch (PosixException e)
        {
            throw new IOException($"cannot open the lower store directory {lowerPath}: {e.Message}", e);
        }
        var fileSystem = new StoreFileSystem(engine, lower, lowerPath, options);
        try
        {
            var fuse = FuseMount.Mount(fileSystem, mountPoint, new FuseMountOptions
            {
                FileSystemName = "lazystore",
                Subtype = "lazystore",
                AllowOther = options.AllowOther,
                DefaultPermissions = true,
                MaxThreads = options.MaxThreads,
                ReaddirPlus = FuseReaddirPlusMode.Auto,
                // Mounting over the lower directory is the point; stacking over another mount is not.
                Log = options.Log,
            });
            fileSystem.Attach(fuse);
            return new StoreMount(fuse, fileSystem);
        }
        catch
        {
            fileSystem.Dispose();
            throw;
        }
    }

    /// <summary>The mount type a LazyStore mount has in the mount table.</summary>
    public const string FileSystemType = "fuse.lazystore";

    /// <summary>Whether a LazyStore mount (of any process) is mounted at <paramref name="directory"/>.</summary>
    public static bool IsMountedAt(string directory) =>
        MountTable.At(Path.GetFullPath(directory).TrimEnd('/') is { Length: > 0 } full ? full : "/")?.FileSystemType == FileSystemType;

    /// <summary>Starts unmounting; safe from any thread and from a signal handler, more than once.</summary>
    public void Unmount() => _fuse.Unmount();

    /// <summary>Unmounts, waits for the session to end, and closes the lower directory and every open file.</summary>
    public void Dispose()
    {
        _fuse.Dispose();
        _fileSystem.Dispose();
    }
}
