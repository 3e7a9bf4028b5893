using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;
using LazyStore.Fuse.Interop;

namespace LazyStore.Fuse;

/// <summary>
/// A mounted <see cref="IFuseFileSystem"/>: a libfuse session, its multi-threaded request loop on a
/// dedicated thread, and the mount itself.
/// </summary>
/// <remarks>
/// <para>
/// Ending: <see cref="Unmount"/> (or an external <c>umount</c>/<c>fusermount3 -u</c>) ends the loop;
/// then requests whose handlers are still running are answered with ENOTCONN, the session is
/// destroyed, and <see cref="Completion"/> completes. Handlers that complete later find their
/// request already answered. Signal handling is the caller's: call <see cref="Unmount"/> from a
/// <c>PosixSignalRegistration</c> handler and await <see cref="Completion"/>.
/// </para>
/// <para>
/// <see cref="Unmount"/> detaches the mount (MNT_DETACH) and ends the connection itself, so the session
/// ends at once even when the mount is busy (open files, a working directory inside) or another mount
/// namespace holds a copy of it (<c>unshare -m</c>, container and build sandboxes), which unmounting
/// here does not end; failing that within <see cref="AbortDeadline"/>, it aborts the connection through
/// fusectl. Processes still using the mount, here or there, get ENOTCONN rather than hanging.
/// </para>
/// </remarks>
public sealed unsafe class FuseMount : IDisposable
{
    private const string DeviceFuse = "/dev/fuse";

    /// <summary>How long after <see cref="Unmount"/> the session may take to end by itself before its connection is aborted.</summary>
    internal static readonly TimeSpan AbortDeadline = TimeSpan.FromSeconds(5);

    private readonly TaskCompletionSource _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TextWriter _log;
    private GCHandle _self;
    private FuseSessionHandle? _session;
    private int _unmountRequested;
    private volatile bool _unmountedByUs;
    private (uint Major, uint Minor)? _device;
    private FuseConnectionAbort? _connectionAbort;
    private Exception? _initializationError;
    private bool _wantsParallelDirops;
    private int _awaitingInitReply = 1;

    private FuseMount(IFuseFileSystem fileSystem, string mountPoint, FuseMountOptions options)
    {
        FileSystem = fileSystem;
        MountPoint = mountPoint;
        Options = options;
        _log = options.Log is { } log ? TextWriter.Synchronized(log) : Console.Error;
        Responder = new FuseResponder(Log);
    }

    /// <summary>Null when this machine can mount FUSE filesystems, else why not (no /dev/fuse, no libfuse3).</summary>
    public static string? UnavailableReason
    {
        get
        {
            if (RuntimeInformation.ProcessArchitecture != Architecture.X64)
                return $"the libfuse struct layouts here are x86_64's; this process is {RuntimeInformation.ProcessArchitecture}";
            if (!File.Exists(DeviceFuse))
                return $"{DeviceFuse} does not exist (load the fuse kernel module; in a container, pass the device in)";
            return LibFuse.UnavailableReason();
        }
    }

    /// <summary>The canonical absolute path the filesystem is mounted at.</summary>
    public string MountPoint { get; }

    /// <summary>
    /// Completes when the session has ended and its resources are freed. Faults with
    /// <see cref="FuseMountException"/> when it ended in an error (the filesystem's Initialize threw,
    /// or libfuse's loop failed).
    /// </summary>
    public Task Completion => _completion.Task;

    internal IFuseFileSystem FileSystem { get; }

    internal FuseMountOptions Options { get; }

    internal FuseResponder Responder { get; }

    /// <summary>Set at INIT when the filesystem wanted <see cref="FuseCapabilities.NoOpendirSupport"/>.</summary>
    internal bool KernelOpensDirectories { get; private set; }

    /// <summary>
    /// Mounts <paramref name="fileSystem"/> at <paramref name="mountPoint"/> and starts serving it.
    /// Returns once the kernel has the mount; requests wait in the kernel until the session answers
    /// INIT. Throws <see cref="FuseMountException"/> naming the cause when it cannot mount.
    /// </summary>
    public static FuseMount Mount(IFuseFileSystem fileSystem, string mountPoint, FuseMountOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(fileSystem);
        ArgumentException.ThrowIfNullOrEmpty(mountPoint);
        options ??= new FuseMountOptions();
        ArgumentOutOfRangeException.ThrowIfLessThan(options.MaxThreads, 1, nameof(options.MaxThreads));
        if (UnavailableReason is { } reason)
            throw new FuseMountException($"cannot mount at {mountPoint}: {reason}");
        var mount = new FuseMount(fileSystem, ResolveMountPoint(mountPoint, options), options);
        mount.Start();
        return mount;
    }

    /// <summary>
    /// Drops the kernel's cached entry for <paramref name="name"/> in directory <paramref name="parent"/>,
    /// negative entries included, so the next access looks the name up again. False when the kernel
    /// does not know <paramref name="parent"/> or the session is not running.
    /// </summary>
    /// <remarks>
    /// The kernel locks <paramref name="parent"/> to do this and waits for operations in it, so never
    /// call it from a handler, nor from code a pending handler waits for: that deadlocks.
    /// </remarks>
    public bool InvalidateEntry(ulong parent, string name)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        // libfuse sends namelen + 1 bytes, so the name must be NUL-terminated.
        var utf8 = new byte[Encoding.UTF8.GetByteCount(name) + 1];
        int length = Encoding.UTF8.GetBytes(name, utf8);
        if (!Responder.TryEnterNative())
            return false;
        try
        {
            fixed (byte* p = utf8)
            {
                return Notified(LibFuse.fuse_lowlevel_notify_inval_entry(_session!, parent, p, (nuint)length), parent);
            }
        }
        finally
        {
            Responder.ExitNative();
        }
    }

    /// <summary>Drops the kernel's cached attributes of <paramref name="nodeId"/>. Same rules as <see cref="InvalidateEntry"/>.</summary>
    public bool InvalidateAttributes(ulong nodeId) => InvalidateInode(nodeId, -1, 0);

    /// <summary>
    /// Drops the cached attributes and the page cache of <paramref name="nodeId"/> from
    /// <paramref name="offset"/> for <paramref name="length"/> bytes (0: to the end). Same rules as <see cref="InvalidateEntry"/>.
    /// </summary>
    public bool InvalidateData(ulong nodeId, long offset = 0, long length = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        return InvalidateInode(nodeId, offset, length);
    }

    /// <summary>
    /// Ends the session and removes the mount without waiting for the session to finish; safe to
    /// call from any thread, more than once, and after the mount went away by other means.
    /// </summary>
    public void Unmount()
    {
        if (Interlocked.Exchange(ref _unmountRequested, 1) != 0 || _session is null || Completion.IsCompleted)
            return;
        try
        {
            LibFuse.fuse_session_exit(_session);
        }
        catch (ObjectDisposedException)
        {
            return;
        }
        // The handle keeps the superblock, and with it the connection, alive while the mount is
        // detached, and carries the request that wakes the loop. It is -1 when the mount point no
        // longer names this mount (unmounted from outside, or covered by another mount), which is
        // then left alone.
        int root = OpenOwnRoot();
        if (root >= 0)
        {
            _unmountedByUs = Detach();
            WakeTheLoop(root);
        }
        // Unmounting removes the mount from this namespace only, and a copy in another mount namespace
        // keeps the connection up. If the session has not ended by the deadline (no way in through the
        // mount point, or no worker free to take the request), the connection is aborted.
        if (_connectionAbort is { } abort)
            _ = abort.AbortUnlessEndedAsync(Completion, root >= 0 ? AbortDeadline : TimeSpan.Zero, Log);
    }

    /// <summary>Unmounts and waits (up to <see cref="FuseMountOptions.DisposeTimeout"/>) for the session to end. Never call it from a handler.</summary>
    public void Dispose()
    {
        Unmount();
        if (!((IAsyncResult)Completion).AsyncWaitHandle.WaitOne(Options.DisposeTimeout))
            Log($"the session did not end within {Options.DisposeTimeout}");
    }

    internal static FuseMount FromRequest(nint request) => FromUserdata(LibFuse.fuse_req_userdata(request));

    internal static FuseMount FromUserdata(nint userdata) => (FuseMount)GCHandle.FromIntPtr(userdata).Target!;

    /// <summary>The init callback: libfuse's defaults, then the mount options, then the filesystem's own choices.</summary>
    internal void Initialize(LibFuse.ConnInfo* native)
    {
        var capable = (FuseCapabilities)native->Capable;
        // libfuse wants handle-killpriv by default, leaving it to the filesystem to clear setuid and
        // setgid on write and chown; a passthrough running as root would not (root keeps CAP_FSETID),
        // so by default the kernel does it with a setattr instead.
        var wanted = (FuseCapabilities)native->Want & ~FuseCapabilities.HandleKillPriv;
        switch (Options.ReaddirPlus)
        {
            case FuseReaddirPlusMode.Off:
                wanted &= ~(FuseCapabilities.ReaddirPlus | FuseCapabilities.ReaddirPlusAuto);
                break;
            case FuseReaddirPlusMode.Always:
                wanted = (wanted | (capable & FuseCapabilities.ReaddirPlus)) & ~FuseCapabilities.ReaddirPlusAuto;
                break;
        }
        var connection = new FuseConnection(native->ProtoMajor, native->ProtoMinor, capable, wanted)
        {
            MaxWrite = native->MaxWrite,
            MaxReadahead = native->MaxReadahead,
            MaxBackground = native->MaxBackground,
            CongestionThreshold = native->CongestionThreshold,
            TimeGranularity = native->TimeGran,
        };
        FileSystem.Initialize(connection);
        KernelOpensDirectories = connection.Wanted.HasFlag(FuseCapabilities.NoOpendirSupport);
        _wantsParallelDirops = connection.Wanted.HasFlag(FuseCapabilities.ParallelDirectoryOperations);
        native->Want = (uint)connection.Wanted;
        // libfuse sized its request buffers from max_write before init; it may only shrink.
        native->MaxWrite = Math.Min(connection.MaxWrite, native->MaxWrite);
        native->MaxReadahead = connection.MaxReadahead;
        native->MaxBackground = connection.MaxBackground;
        native->CongestionThreshold = connection.CongestionThreshold;
        native->TimeGran = connection.TimeGranularity;
    }

    /// <summary>
    /// Drops the pages that hold a directory's cached listing (and its attributes), from within the
    /// reply that ends the listing. Unlike the public invalidations this is safe inside a handler:
    /// for a directory the kernel takes no lock that a pending request holds (fuse_reverse_inval_inode
    /// only invalidates the directory's page cache, whose pages readdir locks just while copying).
    /// </summary>
    internal void DropCachedListing(ulong nodeId)
    {
        if (KernelOpensDirectories)
            InvalidateInode(nodeId, 0, 0);
    }

    /// <summary>
    /// Called with every message the session writes to the device. The first is the INIT reply (the
    /// kernel sends nothing else before it has one), which gets FUSE_PARALLEL_DIROPS when wanted
    /// (<see cref="FuseDeviceIo"/> says why libfuse leaves it out).
    /// </summary>
    internal void BeforeWrite(Libc.Iovec* iov, int count)
    {
        if (Volatile.Read(ref _awaitingInitReply) == 0 || Interlocked.Exchange(ref _awaitingInitReply, 0) == 0)
            return;
        if (_wantsParallelDirops)
            FuseDeviceIo.AddParallelDirops(iov, count);
    }

    /// <summary>The filesystem's Initialize threw: the session ends, and <see cref="Completion"/> faults with it.</summary>
    internal void FailInitialization(Exception error)
    {
        _initializationError = error;
        Log($"init: {error}");
        LibFuse.fuse_session_exit(_session!);
    }

    internal void Forget(ulong nodeId, ulong lookupCount)
    {
        try
        {
            FileSystem.Forget(nodeId, lookupCount);
        }
        catch (Exception e)
        {
            Log($"forget: {e}");
        }
    }

    private static string ResolveMountPoint(string mountPoint, FuseMountOptions options)
    {
        Libc.Statx status;
        if (Libc.statx(Libc.AtFdCwd, mountPoint, 0, Libc.StatxType, &status) != 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            string why = errno == Errno.ENOTCONN
                ? $"a FUSE filesystem whose process is gone is still mounted there (unmount it: fusermount3 -u -z {mountPoint})"
                : Marshal.GetPInvokeErrorMessage(errno);
            throw new FuseMountException($"cannot mount at {mountPoint}: {why}");
        }
        if ((status.Mode & Libc.SIfmt) != Libc.SIfdir)
            throw new FuseMountException($"cannot mount at {mountPoint}: not a directory");
        string resolved = Libc.RealPath(mountPoint);
        if (!options.AllowMountOverMountPoint && MountTable.At(resolved) is { } existing)
        {
            throw new FuseMountException(
                $"cannot mount at {resolved}: it is already a mount point ({existing.FileSystemType} from {existing.Source}); " +
                "unmount it first, or allow mounting over it");
        }
        return resolved;
    }

    private void Start()
    {
        LibraryLog.Install();
        _self = GCHandle.Alloc(this);
        LibFuse.FuseArgs args = default;
        bool mounted = false;
        LibraryLog.BeginCapture();
        try
        {
            foreach (var arg in Arguments())
            {
                if (LibFuse.fuse_opt_add_arg(&args, arg) != 0)
                    throw new OutOfMemoryException("fuse_opt_add_arg failed");
            }
            _session = LibFuse.fuse_session_new(&args, FuseOperations.Table, (nuint)sizeof(LibFuse.LowLevelOps), GCHandle.ToIntPtr(_self));
            if (_session.IsInvalid)
                throw new FuseMountException($"cannot mount at {MountPoint}: libfuse refused the session ({Reason(LibraryLog.EndCapture(), "fuse_session_new failed")})");
            if (LibFuse.fuse_session_mount(_session, MountPoint) != 0)
                throw new FuseMountException($"cannot mount at {MountPoint}: {Reason(LibraryLog.EndCapture(), "fuse_session_mount failed")}{PermissionHint()}");
            mounted = true;
            var io = FuseDeviceIo.Functions;
            if (LibFuse.fuse_session_custom_io(_session, &io, LibFuse.fuse_session_fd(_session)) != 0)
                throw new FuseMountException($"cannot mount at {MountPoint}: {Reason(LibraryLog.EndCapture(), "fuse_session_custom_io failed")}");
            _device = DeviceOf(Libc.AtFdCwd, MountPoint, 0);
            if (Options.AbortThroughControlFileSystem && _device is { } device)
                _connectionAbort = FuseConnectionAbort.Open(device.Major, device.Minor);
            var loop = new Thread(RunLoop) { Name = "fuse-session", IsBackground = true };
            loop.Start();
        }
        catch
        {
            if (mounted)
                LibFuse.fuse_session_unmount(_session!);
            _session?.Dispose();
            _connectionAbort?.Dispose();
            _self.Free();
            throw;
        }
        finally
        {
            LibraryLog.EndCapture();
            LibFuse.fuse_opt_free_args(&args);
        }
    }

    private List<string> Arguments()
    {
        // argv[0] is a program name that fuse_session_new skips; every option is its own "-o".
        var arguments = new List<string> { "lazystore" };
        void Option(string option)
        {
            arguments.Add("-o");
            arguments.Add(option);
        }
        if (Options.FileSystemName is { } fsname)
            Option("fsname=" + EscapeOptionValue(fsname));
        if (Options.Subtype is { } subtype)
            Option("subtype=" + EscapeOptionValue(subtype));
        if (Options.AllowOther)
            Option("allow_other");
        if (Options.DefaultPermissions)
            Option("default_permissions");
        if (Options.ReadOnly)
            Option("ro");
        foreach (var option in Options.AdditionalOptions)
            Option(option);
        return arguments;
    }

    /// <summary>fuse_opt splits option lists at commas; a backslash escapes a comma or a backslash.</summary>
    private static string EscapeOptionValue(string value) => value.Replace("\\", "\\\\").Replace(",", "\\,");

    private static string Reason(string libfuseSaid, string fallback) => libfuseSaid.Length > 0 ? libfuseSaid : fallback;

    private static string PermissionHint() =>
        Libc.geteuid() == 0 ? "" : " (as a non-root user, mounting needs fusermount3 installed setuid root, and allow_other needs user_allow_other in /etc/fuse.conf)";

    private void RunLoop()
    {
        LibraryLog.SendTo(Log);
        Exception? failure = null;
        int result = 0;
        try
        {
            using var config = LibFuse.fuse_loop_cfg_create();
            if (config.IsInvalid)
                throw new OutOfMemoryException("fuse_loop_cfg_create failed");
            LibFuse.fuse_loop_cfg_set_max_threads(config, (uint)Options.MaxThreads);
            LibFuse.fuse_loop_cfg_set_clone_fd(config, 0);
            result = LibFuse.fuse_session_loop_mt(_session!, config);
        }
        catch (Exception e)
        {
            failure = e;
        }
        finally
        {
            Responder.Close();
            // Once Unmount has removed the mount the path no longer names it, and fuse_session_unmount
            // would unmount whatever is mounted there now; destroy closes the device alone, which
            // aborts the connection if nothing else did (the kernel does when its last device file closes).
            if (!_unmountedByUs)
                LibFuse.fuse_session_unmount(_session!);
            _session!.Dispose();
            _connectionAbort?.Dispose();
            _self.Free();
            LibraryLog.SendTo(null);
        }
        if (_initializationError is { } init)
            _completion.SetException(new FuseMountException($"the filesystem at {MountPoint} failed to initialise: {init.Message}", init));
        else if (failure is not null)
            _completion.SetException(new FuseMountException($"the FUSE session at {MountPoint} failed: {failure.Message}", failure));
        else if (result != 0)
            _completion.SetException(new FuseMountException($"the FUSE session at {MountPoint} ended with an error: {Marshal.GetPInvokeErrorMessage(Math.Abs(result))}"));
        else
            _completion.SetResult();
    }

    /// <summary>
    /// A handle on the mount point's root if it is this mount's (same device as at mount time), else -1.
    /// O_PATH opens without asking the filesystem anything.
    /// </summary>
    private int OpenOwnRoot()
    {
        int root = Libc.open(MountPoint, Libc.OPath | Libc.ODirectory | Libc.OCloexec);
        if (root < 0 || _device is null || DeviceOf(root, "", Libc.AtEmptyPath) == _device)
            return root;
        Libc.close(root);
        return -1;
    }

    /// <summary>
    /// st_dev without a request to the filesystem: with an empty mask fuse answers from the superblock
    /// (fuse_getattr), even before INIT and to processes it would otherwise refuse.
    /// </summary>
    private static (uint Major, uint Minor)? DeviceOf(int directory, string path, int flags)
    {
        Libc.Statx status;
        return Libc.statx(directory, path, flags | Libc.AtStatxDontSync, 0, &status) == 0 ? (status.DevMajor, status.DevMinor) : null;
    }

    /// <summary>
    /// Detaches the mount (MNT_DETACH: it goes at once even while in use, and the open root handle
    /// would make a plain umount fail with EBUSY); a user other than root goes through fusermount3.
    /// </summary>
    private bool Detach()
    {
        if (Libc.umount2(MountPoint, Libc.MntDetach) == 0)
            return true;
        int errno = Marshal.GetLastPInvokeError();
        if (errno == Errno.EPERM)
            return RunFusermount(MountPoint);
        Log($"cannot unmount {MountPoint}: {Marshal.GetPInvokeErrorMessage(errno)}");
        return false;
    }

    /// <summary>
    /// Sends one request through the root handle: a worker takes it, sees the session has exited, and
    /// the loop ends; requests still in progress are answered with ENOTCONN, and destroying the session
    /// closes the device, which aborts the connection for every copy of the mount.
    /// </summary>
    private static void WakeTheLoop(int root)
    {
        // The stat blocks until a worker answers it or the connection is aborted, so it runs off the caller's thread.
        ThreadPool.UnsafeQueueUserWorkItem(
            static fd =>
            {
                Libc.Statx ignored;
                Libc.statx(fd, "", Libc.AtEmptyPath | Libc.AtStatxForceSync, Libc.StatxType, &ignored);
                Libc.close(fd);
            },
            root,
            preferLocal: false);
    }

    private bool RunFusermount(string mountPoint)
    {
        try
        {
            using var process = Process.Start(new ProcessStartInfo("fusermount3", ["-u", "-z", mountPoint]) { RedirectStandardError = true })!;
            string error = process.StandardError.ReadToEnd();
            process.WaitForExit();
            if (process.ExitCode != 0)
                Log($"fusermount3 -u -z {mountPoint}: {error.Trim()}");
            return process.ExitCode == 0;
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            Log($"cannot run fusermount3 to unmount {mountPoint}: {e.Message}");
            return false;
        }
    }

    /// <summary>fuse_lowlevel_notify_inval_inode: a negative offset drops attributes only.</summary>
    private bool InvalidateInode(ulong nodeId, long offset, long length)
    {
        if (!Responder.TryEnterNative())
            return false;
        try
        {
            return Notified(LibFuse.fuse_lowlevel_notify_inval_inode(_session!, nodeId, offset, length), nodeId);
        }
        finally
        {
            Responder.ExitNative();
        }
    }

    /// <summary>
    /// A notification's result: ENOENT (the kernel does not have the node), ENOSYS (before INIT) and
    /// the errors of a closed connection mean there was nothing to invalidate.
    /// </summary>
    private static bool Notified(int result, ulong node) => result switch
    {
        0 => true,
        -Errno.ENOENT or -Errno.ENOSYS or -Errno.ENOTCONN or -Errno.EBADF or -Errno.ENODEV => false,
        _ => throw new FuseException(-result, $"the kernel refused to invalidate node {node}: {Marshal.GetPInvokeErrorMessage(-result)}"),
    };

    private void Log(string message)
    {
        try
        {
            _log.WriteLine($"fuse {MountPoint}: {message}");
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException)
        {
            // A log that can no longer be written must not take the session down with it.
        }
    }
}
