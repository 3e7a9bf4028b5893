using LazyStore.Fuse;
using LazyStore.Nix.Interop;

namespace LazyStore.Store.Mount;

/// <summary>
/// The calling thread acting for the process that made a request, for one system call on the lower
/// directory: its fs uid, fs gid and supplementary groups (when this process is root and the caller is
/// someone else), and its umask (for calls that create with a mode). The lower file system then decides
/// as for the caller itself: permission and ACL checks, the owner and group of a new entry, a setgid
/// directory's group and bit, default ACLs, the umask (which a default ACL overrides), whiteouts.
/// </summary>
/// <remarks>
/// Credentials and, after unshare(CLONE_FS), the umask belong to one thread, so the scope must begin
/// and end on the thread that makes the call, with nothing in between that could yield it to other work:
/// a ref struct cannot live across an await. Dispose restores the thread's own identity; a thread that
/// cannot get it back ends the process rather than serve other requests as someone else.
/// </remarks>
internal ref struct CallerCredentials
{
    private static readonly bool Privileged = Environment.IsPrivilegedProcess;
    private static readonly uint OwnUser = Posix.EffectiveUserId;
    private static readonly uint OwnGroup = Posix.EffectiveGroupId;
    private static readonly uint[] OwnGroups = Posix.GetGroups();

    /// <summary>Whether this thread has a file-system context (umask) of its own.</summary>
    [ThreadStatic]
    private static bool t_ownUmask;

    private bool _switched;
    private uint? _umask;

    /// <summary>
    /// Takes on <paramref name="context"/>'s caller; with <paramref name="umask"/>, also its umask (the
    /// mount asks the kernel not to apply it, FUSE_CAP_DONT_MASK, so that the lower file system can
    /// ignore it where a default ACL applies, as it does for a plain directory).
    /// </summary>
    public static CallerCredentials Assume(FuseRequestContext context, bool umask = false)
    {
        var scope = new CallerCredentials();
        try
        {
            if (umask)
            {
                if (!t_ownUmask)
                {
                    Posix.UnshareFileSystemContext();
                    t_ownUmask = true;
                }
                scope._umask = Posix.SetUmask(context.Umask);
            }
            // Without CAP_SETUID the mount acts as its own user: without allow_other nobody else gets in.
            if (Privileged && (context.UserId != OwnUser || context.GroupId != OwnGroup))
            {
                var groups = FuseCallerGroups.Read(context) ?? [];
                scope._switched = true;
                Posix.SetThreadGroups(groups);
                Posix.SetFileSystemGroup(context.GroupId);
                Posix.SetFileSystemUser(context.UserId);
            }
            return scope;
        }
        catch
        {
            scope.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        if (_switched)
        {
            _switched = false;
            try
            {
                Posix.SetFileSystemUser(OwnUser);
                Posix.SetFileSystemGroup(OwnGroup);
                Posix.SetThreadGroups(OwnGroups);
            }
            catch (PosixException e)
            {
                Environment.FailFast($"a FUSE worker thread could not return to the mount's own credentials after acting for a caller ({e.Message}); stopping rather than serving other requests with them");
            }
        }
        if (_umask is { } own)
        {
            _umask = null;
            Posix.SetUmask(own);
        }
    }
}
