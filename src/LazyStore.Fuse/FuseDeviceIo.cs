using System.Runtime.InteropServices;
using LazyStore.Fuse.Interop;

namespace LazyStore.Fuse;

/// <summary>
/// The session's reads and writes of its <c>/dev/fuse</c> descriptor (fuse_session_custom_io): plain
/// read(2) and writev(2), errno preserved for libfuse, and one correction of the INIT reply.
/// </summary>
/// <remarks>
/// libfuse before 3.17 counts FUSE_CAP_PARALLEL_DIROPS among its default wants but never sets
/// FUSE_PARALLEL_DIROPS in its INIT reply (fixed by libfuse commit c990534), so the kernel takes a
/// per-directory mutex around every lookup and readdir (fuse_lock_inode in fs/fuse): a lookup whose
/// handler waits on the network held up every other lookup and listing of the same directory. When
/// the session wants the capability, the flag is added to the reply on its way to the kernel.
/// </remarks>
internal static unsafe class FuseDeviceIo
{
    /// <summary>The function table; fuse_session_custom_io keeps a copy of its own.</summary>
    internal static LibFuse.CustomIo Functions => new() { Read = &Read, Writev = &Writev };

    [UnmanagedCallersOnly]
    private static nint Read(int fd, byte* buffer, nuint size, nint userdata)
    {
        nint count = Libc.read(fd, buffer, size);
        // libfuse reads errno after a failure (ENODEV ends the loop, ENOENT and EINTR retry).
        if (count < 0)
            Marshal.SetLastSystemError(Marshal.GetLastPInvokeError());
        return count;
    }

    [UnmanagedCallersOnly]
    private static nint Writev(int fd, Libc.Iovec* iov, int count, nint userdata)
    {
        try
        {
            FuseMount.FromUserdata(userdata).BeforeWrite(iov, count);
        }
        catch (Exception e)
        {
            // The message goes out unchanged; a failure here must not take the reply with it.
            Console.Error.WriteLine($"fuse: writing to the device: {e}");
        }
        nint written = Libc.writev(fd, iov, count);
        // libfuse reads errno after a failure (ENOENT: the request was interrupted).
        if (written < 0)
            Marshal.SetLastSystemError(Marshal.GetLastPInvokeError());
        return written;
    }

    /// <summary>
    /// Adds FUSE_PARALLEL_DIROPS to an INIT reply (iov[0] the out header, iov[1] struct fuse_init_out,
    /// whose first field is the major version 7). Returns whether <paramref name="iov"/> held one.
    /// </summary>
    internal static bool AddParallelDirops(Libc.Iovec* iov, int count)
    {
        if (count < 2 || iov[0].Length < (nuint)sizeof(LibFuse.OutHeader) || iov[1].Length < LibFuse.InitOutFlagsOffset + sizeof(uint))
            return false;
        var header = (LibFuse.OutHeader*)iov[0].Base;
        if (header->Error != 0 || header->Unique == 0 || *(uint*)iov[1].Base != 7)
            return false;
        *(uint*)(iov[1].Base + LibFuse.InitOutFlagsOffset) |= LibFuse.InitParallelDirops;
        return true;
    }
}
