using System.Globalization;
using System.Runtime.InteropServices;
using LazyStore.Fuse.Interop;
using Microsoft.Win32.SafeHandles;

namespace LazyStore.Fuse;

/// <summary>
/// The <c>abort</c> file of one FUSE connection in the fuse control filesystem (fusectl; the kernel's
/// Documentation/filesystems/fuse.rst, "Control filesystem"). A write to it aborts the connection as
/// destroying the superblock would: requests in flight fail with ENOTCONN, readers of /dev/fuse wake
/// with ENODEV, and every later access through any copy of the mount fails with ENOTCONN.
/// </summary>
/// <remarks>
/// The file is opened while the connection number certainly names this mount, and kept open: when the
/// connection goes, the kernel unhooks its control files from it (fuse_ctl_remove_conn), so a write
/// through this one can never reach a later connection that reuses the number.
/// </remarks>
internal sealed class FuseConnectionAbort : IDisposable
{
    private const string ControlFileSystemType = "fusectl";

    private readonly SafeFileHandle _file;

    private FuseConnectionAbort(SafeFileHandle file)
    {
        _file = file;
    }

    /// <summary>
    /// Opens the abort file of the connection whose superblock is device <paramref name="major"/>:<paramref name="minor"/>,
    /// through a mounted fusectl, else through a private one; null when neither is possible (a user
    /// other than root where fusectl is not mounted, a kernel without it).
    /// </summary>
    internal static FuseConnectionAbort? Open(uint major, uint minor)
    {
        // fusectl names a connection's directory by the superblock's s_dev in the kernel's encoding (MKDEV: major << 20 | minor).
        var name = ((major << 20) | minor).ToString(CultureInfo.InvariantCulture) + "/abort";
        var file = OpenThroughMountedControl(name) ?? OpenThroughPrivateControl(name);
        return file is null ? null : new FuseConnectionAbort(file);
    }

    /// <summary>Aborts the connection unless <paramref name="session"/> ends within <paramref name="deadline"/>.</summary>
    internal async Task AbortUnlessEndedAsync(Task session, TimeSpan deadline, Action<string> log)
    {
        if (deadline > TimeSpan.Zero && await Task.WhenAny(session, Task.Delay(deadline)).ConfigureAwait(false) == session)
            return;
        if (Abort() is var errno and not 0)
            log($"cannot abort the connection through fusectl: {Marshal.GetPInvokeErrorMessage(errno)}");
    }

    /// <summary>Aborts the connection (a no-op once it has gone): 0, or the errno the kernel refused the write with.</summary>
    internal unsafe int Abort()
    {
        byte one = (byte)'1';
        try
        {
            return Libc.write(_file, &one, 1) == 1 ? 0 : Marshal.GetLastPInvokeError();
        }
        catch (ObjectDisposedException)
        {
            // Closed when the session ended: no connection is left to abort.
            return 0;
        }
    }

    public void Dispose() => _file.Dispose();

    private static SafeFileHandle? OpenThroughMountedControl(string name)
    {
        if (MountTable.Read().LastOrDefault(m => m.FileSystemType == ControlFileSystemType) is not { } control)
            return null;
        return Owned(Libc.open(control.MountPoint + "/" + name, Libc.OWronly | Libc.OCloexec));
    }

    /// <summary>
    /// fusectl has a single superblock listing every connection, so a mount of it made with the new
    /// mount API (fsopen, fsmount; CAP_SYS_ADMIN) serves as well as the usual one at
    /// /sys/fs/fuse/connections, yet is attached to no path: nobody else sees it, and it goes away
    /// with the abort file opened through it.
    /// </summary>
    private static SafeFileHandle? OpenThroughPrivateControl(string name)
    {
        int context = -1;
        int mount = -1;
        try
        {
            context = Libc.fsopen(ControlFileSystemType, Libc.FsopenCloexec);
            if (context < 0 || Libc.fsconfig(context, Libc.FsconfigCmdCreate, null, 0, 0) != 0)
                return null;
            mount = Libc.fsmount(context, Libc.FsmountCloexec, Libc.MountAttrNosuid | Libc.MountAttrNodev | Libc.MountAttrNoexec);
            return mount < 0 ? null : Owned(Libc.openat(mount, name, Libc.OWronly | Libc.OCloexec));
        }
        catch (EntryPointNotFoundException)
        {
            // glibc before 2.36 has no wrappers for the new mount API; ending falls back to closing the device.
            return null;
        }
        finally
        {
            if (mount >= 0)
                Libc.close(mount);
            if (context >= 0)
                Libc.close(context);
        }
    }

    private static SafeFileHandle? Owned(int fd) => fd < 0 ? null : new SafeFileHandle(fd, ownsHandle: true);
}
