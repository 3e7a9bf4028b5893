using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using LazyStore.Fuse.Interop;

namespace LazyStore.Fuse;

/// <summary>
/// The <c>struct fuse_lowlevel_ops</c> table and its callbacks. Each callback turns libfuse's
/// arguments into managed ones, calls the session's <see cref="IFuseFileSystem"/> and hands the
/// task to <see cref="FuseResponder"/>. Every body is a try/catch: an exception must never unwind
/// into libfuse, and one that escapes before the responder took over is answered with EIO.
/// </summary>
internal static unsafe class FuseOperations
{
    /// <summary>Built once and never freed: libfuse copies it into each session (fuse_session_new).</summary>
    internal static readonly LibFuse.LowLevelOps* Table = CreateTable();

    private static LibFuse.LowLevelOps* CreateTable()
    {
        var ops = (LibFuse.LowLevelOps*)NativeMemory.AllocZeroed((nuint)sizeof(LibFuse.LowLevelOps));
        ops->Init = &Init;
        ops->Lookup = &Lookup;
        ops->Forget = &Forget;
        ops->Getattr = &Getattr;
        ops->Setattr = &Setattr;
        ops->Readlink = &Readlink;
        ops->Mknod = &Mknod;
        ops->Mkdir = &Mkdir;
        ops->Unlink = &Unlink;
        ops->Rmdir = &Rmdir;
        ops->Symlink = &Symlink;
        ops->Rename = &Rename;
        ops->Link = &Link;
        ops->Open = &Open;
        ops->Read = &Read;
        ops->Write = &Write;
        ops->Flush = &Flush;
        ops->Release = &Release;
        ops->Fsync = &Fsync;
        ops->Opendir = &Opendir;
        ops->Readdir = &Readdir;
        ops->Releasedir = &Releasedir;
        ops->Fsyncdir = &Fsyncdir;
        ops->Statfs = &Statfs;
        ops->Setxattr = &Setxattr;
        ops->Getxattr = &Getxattr;
        ops->Listxattr = &Listxattr;
        ops->Removexattr = &Removexattr;
        ops->Access = &Access;
        ops->Create = &Create;
        ops->ForgetMulti = &ForgetMulti;
        ops->Readdirplus = &Readdirplus;
        return ops;
    }

    [UnmanagedCallersOnly]
    private static void Init(nint userdata, LibFuse.ConnInfo* connection)
    {
        FuseMount? mount = null;
        try
        {
            mount = FuseMount.FromUserdata(userdata);
            mount.Initialize(connection);
        }
        catch (Exception e)
        {
            if (mount is null)
                Unanswerable(e, "init");
            else
                mount.FailInitialization(e);
        }
    }

    [UnmanagedCallersOnly]
    private static void Lookup(nint req, ulong parent, byte* name)
    {
        try
        {
            Dispatch(req, (parent, name: Name(name)), static (fs, c, s) => fs.LookupAsync(c, s.parent, s.name), new EntryReply(negativeAllowed: true), "lookup");
        }
        catch (Exception e)
        {
            Unanswered(req, e, "lookup");
        }
    }

    [UnmanagedCallersOnly]
    private static void Forget(nint req, ulong ino, ulong nlookup)
    {
        try
        {
            FuseMount.FromRequest(req).Forget(ino, nlookup);
        }
        catch (Exception e)
        {
            Unanswerable(e, "forget");
        }
        LibFuse.fuse_reply_none(req);
    }

    [UnmanagedCallersOnly]
    private static void ForgetMulti(nint req, nuint count, LibFuse.ForgetData* forgets)
    {
        try
        {
            var mount = FuseMount.FromRequest(req);
            for (nuint i = 0; i < count; i++)
                mount.Forget(forgets[i].Ino, forgets[i].Nlookup);
        }
        catch (Exception e)
        {
            Unanswerable(e, "forget");
        }
        LibFuse.fuse_reply_none(req);
    }

    [UnmanagedCallersOnly]
    private static void Getattr(nint req, ulong ino, LibFuse.FileInfo* fi)
    {
        try
        {
            ulong? fh = fi is null ? null : fi->Fh;
            Dispatch(req, (ino, fh), static (fs, c, s) => fs.GetAttributesAsync(c, s.ino, s.fh), new AttributeReply(ino), "getattr");
        }
        catch (Exception e)
        {
            Unanswered(req, e, "getattr");
        }
    }

    [UnmanagedCallersOnly]
    private static void Setattr(nint req, ulong ino, LibFuse.Stat* attr, int toSet, LibFuse.FileInfo* fi)
    {
        try
        {
            var changes = NativeConversions.ToSetAttributes(*attr, toSet, fi is null ? null : fi->Fh);
            Dispatch(req, (ino, changes), static (fs, c, s) => fs.SetAttributesAsync(c, s.ino, s.changes), new AttributeReply(ino), "setattr");
        }
        catch (Exception e)
        {
            Unanswered(req, e, "setattr");
        }
    }

    [UnmanagedCallersOnly]
    private static void Readlink(nint req, ulong ino)
    {
        try
        {
            Dispatch(req, ino, static (fs, c, s) => fs.ReadLinkAsync(c, s), default(ReadLinkReply), "readlink");
        }
        catch (Exception e)
        {
            Unanswered(req, e, "readlink");
        }
    }

    [UnmanagedCallersOnly]
    private static void Mknod(nint req, ulong parent, byte* name, uint mode, ulong rdev)
    {
        try
        {
            Dispatch(req, (parent, name: Name(name), mode, rdev: (uint)rdev), static (fs, c, s) => fs.MakeNodeAsync(c, s.parent, s.name, s.mode, s.rdev), new EntryReply(negativeAllowed: false), "mknod");
        }
        catch (Exception e)
        {
            Unanswered(req, e, "mknod");
        }
    }

    [UnmanagedCallersOnly]
    private static void Mkdir(nint req, ulong parent, byte* name, uint mode)
    {
        try
        {
            Dispatch(req, (parent, name: Name(name), mode), static (fs, c, s) => fs.MakeDirectoryAsync(c, s.parent, s.name, s.mode), new EntryReply(negativeAllowed: false), "mkdir");
        }
        catch (Exception e)
        {
            Unanswered(req, e, "mkdir");
        }
    }

    [UnmanagedCallersOnly]
    private static void Unlink(nint req, ulong parent, byte* name)
    {
        try
        {
            DispatchVoid(req, (parent, name: Name(name)), static (fs, c, s) => fs.UnlinkAsync(c, s.parent, s.name), default(EmptyReply), "unlink");
        }
        catch (Exception e)
        {
            Unanswered(req, e, "unlink");
        }
    }

    [UnmanagedCallersOnly]
    private static void Rmdir(nint req, ulong parent, byte* name)
    {
        try
        {
            DispatchVoid(req, (parent, name: Name(name)), static (fs, c, s) => fs.RemoveDirectoryAsync(c, s.parent, s.name), default(EmptyReply), "rmdir");
        }
        catch (Exception e)
        {
            Unanswered(req, e, "rmdir");
        }
    }

    [UnmanagedCallersOnly]
    private static void Symlink(nint req, byte* link, ulong parent, byte* name)
    {
        try
        {
            Dispatch(req, (target: Name(link), parent, name: Name(name)), static (fs, c, s) => fs.SymlinkAsync(c, s.target, s.parent, s.name), new EntryReply(negativeAllowed: false), "symlink");
        }
        catch (Exception e)
        {
            Unanswered(req, e, "symlink");
        }
    }

    [UnmanagedCallersOnly]
    private static void Rename(nint req, ulong parent, byte* name, ulong newparent, byte* newname, uint flags)
    {
        try
        {
            var state = (parent, name: Name(name), newparent, newname: Name(newname), flags: (FuseRenameFlags)flags);
            DispatchVoid(req, state, static (fs, c, s) => fs.RenameAsync(c, s.parent, s.name, s.newparent, s.newname, s.flags), default(EmptyReply), "rename");
        }
        catch (Exception e)
        {
            Unanswered(req, e, "rename");
        }
    }

    [UnmanagedCallersOnly]
    private static void Link(nint req, ulong ino, ulong newparent, byte* newname)
    {
        try
        {
            Dispatch(req, (ino, newparent, newname: Name(newname)), static (fs, c, s) => fs.LinkAsync(c, s.ino, s.newparent, s.newname), new EntryReply(negativeAllowed: false), "link");
        }
        catch (Exception e)
        {
            Unanswered(req, e, "link");
        }
    }

    [UnmanagedCallersOnly]
    private static void Open(nint req, ulong ino, LibFuse.FileInfo* fi)
    {
        try
        {
            Dispatch(req, (ino, flags: fi->Flags), static (fs, c, s) => fs.OpenAsync(c, s.ino, s.flags), default(OpenReply), "open");
        }
        catch (Exception e)
        {
            Unanswered(req, e, "open");
        }
    }

    [UnmanagedCallersOnly]
    private static void Read(nint req, ulong ino, nuint size, long off, LibFuse.FileInfo* fi)
    {
        try
        {
            var reply = new ReadReply(checked((int)size));
            Dispatch(req, (ino, fh: fi->Fh, off, buffer: reply.Buffer), static (fs, c, s) => fs.ReadAsync(c, s.ino, s.fh, s.off, s.buffer), reply, "read");
        }
        catch (Exception e)
        {
            Unanswered(req, e, "read");
        }
    }

    [UnmanagedCallersOnly]
    private static void Write(nint req, ulong ino, byte* buf, nuint size, long off, LibFuse.FileInfo* fi)
    {
        try
        {
            int length = checked((int)size);
            var data = PooledCopy.Of(buf, length);
            var state = (ino, fh: fi->Fh, off, data: new ReadOnlyMemory<byte>(data, 0, length));
            Dispatch(req, state, static (fs, c, s) => fs.WriteAsync(c, s.ino, s.fh, s.off, s.data), new WriteReply(data, length), "write");
        }
        catch (Exception e)
        {
            Unanswered(req, e, "write");
        }
    }

    [UnmanagedCallersOnly]
    private static void Flush(nint req, ulong ino, LibFuse.FileInfo* fi)
    {
        try
        {
            DispatchVoid(req, (ino, fh: fi->Fh, lockOwner: fi->LockOwner), static (fs, c, s) => fs.FlushAsync(c, s.ino, s.fh, s.lockOwner), default(EmptyReply), "flush");
        }
        catch (Exception e)
        {
            Unanswered(req, e, "flush");
        }
    }

    [UnmanagedCallersOnly]
    private static void Release(nint req, ulong ino, LibFuse.FileInfo* fi)
    {
        try
        {
            DispatchVoid(req, (ino, fh: fi->Fh, flags: fi->Flags), static (fs, c, s) => fs.ReleaseAsync(c, s.ino, s.fh, s.flags), default(EmptyReply), "release");
        }
        catch (Exception e)
        {
            Unanswered(req, e, "release");
        }
    }

    [UnmanagedCallersOnly]
    private static void Fsync(nint req, ulong ino, int datasync, LibFuse.FileInfo* fi)
    {
        try
        {
            DispatchVoid(req, (ino, fh: fi->Fh, dataOnly: datasync != 0), static (fs, c, s) => fs.FsyncAsync(c, s.ino, s.fh, s.dataOnly), default(EmptyReply), "fsync");
        }
        catch (Exception e)
        {
            Unanswered(req, e, "fsync");
        }
    }

    [UnmanagedCallersOnly]
    private static void Opendir(nint req, ulong ino, LibFuse.FileInfo* fi)
    {
        try
        {
            // ENOSYS is how the kernel learns that directories need no OPENDIR (FUSE_NO_OPENDIR_SUPPORT).
            if (FuseMount.FromRequest(req).KernelOpensDirectories)
            {
                LibFuse.fuse_reply_err(req, Errno.ENOSYS);
                return;
            }
            Dispatch(req, (ino, flags: fi->Flags), static (fs, c, s) => fs.OpenDirectoryAsync(c, s.ino, s.flags), default(OpenReply), "opendir");
        }
        catch (Exception e)
        {
            Unanswered(req, e, "opendir");
        }
    }

    [UnmanagedCallersOnly]
    private static void Readdir(nint req, ulong ino, nuint size, long off, LibFuse.FileInfo* fi)
    {
        try
        {
            var buffer = new FuseDirectoryBuffer(req, checked((int)size));
            var state = (ino, fh: fi->Fh, off, buffer);
            DispatchVoid(req, state, static (fs, c, s) => fs.ReadDirectoryAsync(c, s.ino, s.fh, s.off, s.buffer), new DirectoryReply<FuseDirectoryBuffer>(ino, buffer), "readdir");
        }
        catch (Exception e)
        {
            Unanswered(req, e, "readdir");
        }
    }

    [UnmanagedCallersOnly]
    private static void Readdirplus(nint req, ulong ino, nuint size, long off, LibFuse.FileInfo* fi)
    {
        try
        {
            var buffer = new FuseDirectoryPlusBuffer(req, checked((int)size));
            var state = (ino, fh: fi->Fh, off, buffer);
            DispatchVoid(req, state, static (fs, c, s) => fs.ReadDirectoryPlusAsync(c, s.ino, s.fh, s.off, s.buffer), new DirectoryReply<FuseDirectoryPlusBuffer>(ino, buffer), "readdirplus");
        }
        catch (Exception e)
        {
            Unanswered(req, e, "readdirplus");
        }
    }

    [UnmanagedCallersOnly]
    private static void Releasedir(nint req, ulong ino, LibFuse.FileInfo* fi)
    {
        try
        {
            DispatchVoid(req, (ino, fh: fi->Fh), static (fs, c, s) => fs.ReleaseDirectoryAsync(c, s.ino, s.fh), default(EmptyReply), "releasedir");
        }
        catch (Exception e)
        {
            Unanswered(req, e, "releasedir");
        }
    }

    [UnmanagedCallersOnly]
    private static void Fsyncdir(nint req, ulong ino, int datasync, LibFuse.FileInfo* fi)
    {
        try
        {
            DispatchVoid(req, (ino, fh: fi->Fh, dataOnly: datasync != 0), static (fs, c, s) => fs.FsyncDirectoryAsync(c, s.ino, s.fh, s.dataOnly), default(EmptyReply), "fsyncdir");
        }
        catch (Exception e)
        {
            Unanswered(req, e, "fsyncdir");
        }
    }

    [UnmanagedCallersOnly]
    private static void Statfs(nint req, ulong ino)
    {
        try
        {
            Dispatch(req, ino, static (fs, c, s) => fs.StatFsAsync(c, s), default(StatFsReply), "statfs");
        }
        catch (Exception e)
        {
            Unanswered(req, e, "statfs");
        }
    }

    [UnmanagedCallersOnly]
    private static void Setxattr(nint req, ulong ino, byte* name, byte* value, nuint size, int flags)
    {
        try
        {
            int length = checked((int)size);
            var copy = PooledCopy.Of(value, length);
            var state = (ino, name: Name(name), value: new ReadOnlyMemory<byte>(copy, 0, length), flags);
            DispatchVoid(req, state, static (fs, c, s) => fs.SetExtendedAttributeAsync(c, s.ino, s.name, s.value, s.flags), new EmptyReply(copy), "setxattr");
        }
        catch (Exception e)
        {
            Unanswered(req, e, "setxattr");
        }
    }

    [UnmanagedCallersOnly]
    private static void Getxattr(nint req, ulong ino, byte* name, nuint size)
    {
        try
        {
            Dispatch(req, (ino, name: Name(name)), static (fs, c, s) => fs.GetExtendedAttributeAsync(c, s.ino, s.name), new ExtendedAttributeReply(size), "getxattr");
        }
        catch (Exception e)
        {
            Unanswered(req, e, "getxattr");
        }
    }

    [UnmanagedCallersOnly]
    private static void Listxattr(nint req, ulong ino, nuint size)
    {
        try
        {
            Dispatch(req, ino, static (fs, c, s) => fs.ListExtendedAttributesAsync(c, s), new ExtendedAttributeListReply(size), "listxattr");
        }
        catch (Exception e)
        {
            Unanswered(req, e, "listxattr");
        }
    }

    [UnmanagedCallersOnly]
    private static void Removexattr(nint req, ulong ino, byte* name)
    {
        try
        {
            DispatchVoid(req, (ino, name: Name(name)), static (fs, c, s) => fs.RemoveExtendedAttributeAsync(c, s.ino, s.name), default(EmptyReply), "removexattr");
        }
        catch (Exception e)
        {
            Unanswered(req, e, "removexattr");
        }
    }

    [UnmanagedCallersOnly]
    private static void Access(nint req, ulong ino, int mask)
    {
        try
        {
            DispatchVoid(req, (ino, mask), static (fs, c, s) => fs.AccessAsync(c, s.ino, s.mask), default(EmptyReply), "access");
        }
        catch (Exception e)
        {
            Unanswered(req, e, "access");
        }
    }

    [UnmanagedCallersOnly]
    private static void Create(nint req, ulong parent, byte* name, uint mode, LibFuse.FileInfo* fi)
    {
        try
        {
            Dispatch(req, (parent, name: Name(name), mode, flags: fi->Flags), static (fs, c, s) => fs.CreateAsync(c, s.parent, s.name, s.mode, s.flags), default(CreateReply), "create");
        }
        catch (Exception e)
        {
            Unanswered(req, e, "create");
        }
    }

    /// <summary>Calls a handler and passes its task to the responder; a synchronous throw becomes a faulted task.</summary>
    private static void Dispatch<TState, T, TReply>(nint request, TState state, Func<IFuseFileSystem, FuseRequestContext, TState, ValueTask<T>> handler, TReply reply, string operation)
        where TReply : struct, IReply<T>
    {
        var mount = FuseMount.FromRequest(request);
        var interruption = FuseResponder.RentInterruption();
        ValueTask<T> pending;
        try
        {
            pending = handler(mount.FileSystem, Context(request, interruption.Token), state);
        }
        catch (Exception e)
        {
            pending = ValueTask.FromException<T>(e);
        }
        mount.Responder.Complete(request, pending, reply, operation, interruption);
    }

    /// <summary><see cref="Dispatch{TState, T, TReply}"/> for handlers without a result.</summary>
    private static void DispatchVoid<TState, TReply>(nint request, TState state, Func<IFuseFileSystem, FuseRequestContext, TState, ValueTask> handler, TReply reply, string operation)
        where TReply : struct, IReply<bool>
    {
        var mount = FuseMount.FromRequest(request);
        var interruption = FuseResponder.RentInterruption();
        ValueTask pending;
        try
        {
            pending = handler(mount.FileSystem, Context(request, interruption.Token), state);
        }
        catch (Exception e)
        {
            pending = ValueTask.FromException(e);
        }
        mount.Responder.Complete(request, pending, reply, operation, interruption);
    }

    private static FuseRequestContext Context(nint request, CancellationToken interrupted) =>
        NativeConversions.ToContext(*LibFuse.fuse_req_ctx(request), interrupted);

    /// <summary>
    /// libfuse's interrupt callback (fuse_req_interrupt_func) for a request whose handler is pending.
    /// It runs with the request's lock held, so it only cancels the handler's token; the reply comes
    /// later, from the handler's completion.
    /// </summary>
    [UnmanagedCallersOnly]
    internal static void Interrupted(nint req, nint data)
    {
        try
        {
            FuseMount.FromRequest(req).Responder.Interrupt(req);
        }
        catch (Exception e)
        {
            Unanswerable(e, "interrupt");
        }
    }

    /// <summary>A name from the kernel. Linux names are bytes; invalid UTF-8 becomes U+FFFD here.</summary>
    private static string Name(byte* name) => Marshal.PtrToStringUTF8((nint)name) ?? "";

    /// <summary>The last resort for an exception before the responder took the request: log it and answer EIO.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void Unanswered(nint request, Exception error, string operation)
    {
        try
        {
            FuseMount.FromRequest(request).Responder.Fail(request, error, operation);
        }
        catch (Exception e)
        {
            Unanswerable(e, operation);
            LibFuse.fuse_reply_err(request, Errno.EIO);
        }
    }

    /// <summary>Where an error goes when there is no session to log it to, or no reply to carry it.</summary>
    private static void Unanswerable(Exception error, string operation)
    {
        try
        {
            Console.Error.WriteLine($"fuse: {operation}: {error}");
        }
        catch (IOException)
        {
            // Standard error itself is gone; there is nowhere left to report to.
        }
    }
}
