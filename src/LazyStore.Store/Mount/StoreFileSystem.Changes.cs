using LazyStore.Fuse;
using LazyStore.Nix.Interop;
using LazyStore.Nix.Nar;
using LazyStore.Store.Catalog;

namespace LazyStore.Store.Mount;

/// <summary>
/// The operations that change something. They pass through to the lower directory by descriptor, as
/// Nix's own calls would on a plain store directory. A lazy path can only be deleted (what Nix's
/// deletePath does: make directories writable, unlink, rmdir); any other change to it is EROFS.
/// </summary>
/// <remarks>
/// Entries are created, linked, renamed and removed, and extended attributes (ACLs among them) set, with
/// the caller's credentials (<see cref="CallerCredentials"/>), so the lower file system decides as for
/// the caller: owner and group of what is new, setgid directories, default ACLs, the umask, whiteouts.
/// Attribute changes (chmod, chown, truncate, utimens) keep the mount's own: the kernel has checked them
/// against the caller already (default_permissions), and some it makes on its own behalf, which the
/// caller could not (clearing setuid and setgid bits after a write by someone other than the owner).
/// </remarks>
internal sealed partial class StoreFileSystem
{
    public ValueTask<FuseAttributeResult> SetAttributesAsync(FuseRequestContext context, ulong nodeId, FuseSetAttributes changes)
    {
        if (Node(nodeId) is LazyNode lazy)
            return new(SetLazyPermissions(lazy, changes));
        var node = WritableNode(nodeId);
        try
        {
            if (changes.Mode is { } mode)
            {
                // Linux keeps no mode on symlinks; chmod through the descriptor path would change the target.
                if (node.Type == PosixFileType.Symlink)
                    throw new FuseException(Errno.EOPNOTSUPP);
                Posix.ChmodAt(Posix.AtFdCwd, node.ProcPath, mode & 0xFFF);
            }
            if (changes.UserId is not null || changes.GroupId is not null)
                Posix.ChownAt(node.Fd, "", changes.UserId ?? uint.MaxValue, changes.GroupId ?? uint.MaxValue, Posix.AtEmptyPath | Posix.AtSymlinkNoFollow);
            if (changes.Size is { } size)
            {
                if (changes.FileHandle is { } fh && Handle(fh) is LowerFile open)
                    Posix.TruncateFile(open.Fd, size);
                else
                    Posix.Truncate(node.ProcPath, size);
            }
            if (changes.AccessTime.Kind != FuseTimeChangeKind.Omit || changes.ModificationTime.Kind != FuseTimeChangeKind.Omit)
                Posix.SetTimesAt(node.Fd, "", ToPosix(changes.AccessTime), ToPosix(changes.ModificationTime), Posix.AtEmptyPath | Posix.AtSymlinkNoFollow);
            return new(new FuseAttributeResult(LowerAttributes(Posix.StatAt(node.Fd, "")), LowerTimeout));
        }
        catch (PosixException e)
        {
            throw Fail(e);
        }
    }

    /// <summary>The one change a lazy path takes besides deletion: deletePath making a directory writable.</summary>
    private FuseAttributeResult SetLazyPermissions(LazyNode node, FuseSetAttributes changes)
    {
        var onlyMode = changes.UserId is null && changes.GroupId is null && changes.Size is null
            && changes.AccessTime.Kind == FuseTimeChangeKind.Omit && changes.ModificationTime.Kind == FuseTimeChangeKind.Omit;
        var current = LazyAttributes(node.Tree, node.Entry).Mode & 0xFFF;
        if (!onlyMode || changes.Mode is not { } mode || !_trees.StartDeletion(node.Tree).TrySetPermissions(node.Entry, current, mode))
            throw new FuseException(Errno.EROFS);
        return new FuseAttributeResult(LazyAttributes(node.Tree, node.Entry), LazyTimeout);
    }

    private static PosixTime ToPosix(FuseTimeChange change) => change.Kind switch
    {
        FuseTimeChangeKind.Now => new PosixTime(0, (uint)Posix.UtimeNow),
        FuseTimeChangeKind.Set => new PosixTime(change.Time.Seconds, change.Time.Nanoseconds),
        _ => new PosixTime(0, (uint)Posix.UtimeOmit),
    };

    public ValueTask<FuseEntry> MakeNodeAsync(FuseRequestContext context, ulong parent, string name, uint mode, uint deviceNumber) =>
        Create(context, parent, name, withUmask: true, directory => Posix.MakeNodeAt(directory.Fd, name, mode, deviceNumber));

    public ValueTask<FuseEntry> MakeDirectoryAsync(FuseRequestContext context, ulong parent, string name, uint mode) =>
        Create(context, parent, name, withUmask: true, directory => Posix.MakeDirectoryAt(directory.Fd, name, mode));

    // A symlink's mode is always 0777: no umask.
    public ValueTask<FuseEntry> SymlinkAsync(FuseRequestContext context, string target, ulong parent, string name) =>
        Create(context, parent, name, withUmask: false, directory => Posix.SymlinkAt(target, directory.Fd, name));

    public ValueTask<FuseCreateResult> CreateAsync(FuseRequestContext context, ulong parent, string name, uint mode, int flags)
    {
        var directory = WritableNode(parent);
        try
        {
            SafeFileDescriptor descriptor;
            using (CallerCredentials.Assume(context, umask: true))
                descriptor = Posix.OpenAt(directory.Fd, name, (flags | Posix.OCreate) & ~Posix.ONoFollow, mode);
            try
            {
                var entry = LookupLowerCreated(directory, name);
                return new(new FuseCreateResult(entry, new FuseOpenResult { FileHandle = AddHandle(new LowerFile(descriptor)) }));
            }
            catch
            {
                descriptor.Dispose();
                throw;
            }
        }
        catch (PosixException e)
        {
            throw Fail(e);
        }
    }

    private ValueTask<FuseEntry> Create(FuseRequestContext context, ulong parent, string name, bool withUmask, Action<LowerNode> create)
    {
        var directory = WritableNode(parent);
        try
        {
            using (CallerCredentials.Assume(context, withUmask))
                create(directory);
            return new(LookupLowerCreated(directory, name));
        }
        catch (PosixException e)
        {
            throw Fail(e);
        }
    }

    public ValueTask UnlinkAsync(FuseRequestContext context, ulong parent, string name) => Remove(context, parent, name, directory: false);

    public ValueTask RemoveDirectoryAsync(FuseRequestContext context, ulong parent, string name) => Remove(context, parent, name, directory: true);

    private ValueTask Remove(FuseRequestContext context, ulong parent, string name, bool directory)
    {
        switch (Node(parent))
        {
            case LazyNode lazy:
                if (lazy.Entry.Type != NarEntryType.Directory)
                    throw new FuseException(Errno.ENOTDIR);
                if (lazy.Tree.Lookup(lazy.EntryId, name) is not { } child || _trees.DeletionOf(lazy.Tree)?.IsRemoved(child.Id) == true)
                    throw new FuseException(Errno.ENOENT);
                RemoveLazy(lazy.Tree, child, directory);
                return ValueTask.CompletedTask;
            case LowerNode lower:
                try
                {
                    using (CallerCredentials.Assume(context))
                        Posix.UnlinkAt(lower.Fd, name, directory);
                    return ValueTask.CompletedTask;
                }
                catch (PosixException e) when (e.Errno == Errno.ENOENT && lower == _nodes.Root)
                {
                    return RemoveLazyRootAsync(name, directory, e);
                }
                catch (PosixException e)
                {
                    throw Fail(e);
                }
            default:
                throw new FuseException(Errno.ESTALE);
        }
    }

    /// <summary>
    /// A step of Nix's deletePath inside a lazy path (see <see cref="LazyDeletion"/>); the root's removal
    /// takes the path out of the catalog.
    /// </summary>
    private void RemoveLazy(LazyTree tree, NarIndexEntry entry, bool directory)
    {
        if (directory != (entry.Type == NarEntryType.Directory))
            throw new FuseException(directory ? Errno.ENOTDIR : Errno.EISDIR);
        if (!_trees.StartDeletion(tree).TryRemove(tree, entry))
            throw new FuseException(Errno.ENOTEMPTY);
        if (entry.Parent is null)
            _trees.Remove(tree);
    }

    private async ValueTask RemoveLazyRootAsync(string name, bool directory, PosixException notInLower)
    {
        LazyTree? tree;
        try
        {
            tree = _trees.IsLazyRootName(name) ? await _trees.FindAsync(name, CancellationToken.None).ConfigureAwait(false) : null;
        }
        catch (LazyPathUnavailableException e)
        {
            throw new FuseException(Errno.EIO, e.Message, e);
        }
        if (tree is null || _trees.DeletionOf(tree)?.IsRemoved(tree.Root.Id) == true)
            throw Fail(notInLower);
        RemoveLazy(tree, tree.Root, directory);
    }

    public ValueTask RenameAsync(FuseRequestContext context, ulong parent, string name, ulong newParent, string newName, FuseRenameFlags flags)
    {
        var from = WritableNode(parent);
        var to = WritableNode(newParent);
        try
        {
            // RENAME_WHITEOUT leaves a whiteout owned by whoever renames.
            using (CallerCredentials.Assume(context))
                Posix.RenameAt(from.Fd, name, to.Fd, newName, (uint)flags);
            return ValueTask.CompletedTask;
        }
        catch (PosixException e) when (e.Errno == Errno.ENOENT)
        {
            // A lazy path can be deleted, not renamed: its name is its content's.
            throw from == _nodes.Root && _trees.IsLazyRootName(name) ? new FuseException(Errno.EROFS) : Fail(e);
        }
        catch (PosixException e)
        {
            throw Fail(e);
        }
    }

    public ValueTask<FuseEntry> LinkAsync(FuseRequestContext context, ulong nodeId, ulong newParent, string newName)
    {
        var directory = WritableNode(newParent);
        // A lazy file has no inode on disk to link to. EPERM is link(2)'s "this file system does not support
        // hard links here", on which Nix copies instead (linkOrCopy, when it puts inputs into a build chroot);
        // EXDEV would fail the build.
        if (Node(nodeId) is not LowerNode source)
            throw new FuseException(Errno.EPERM);
        try
        {
            using (CallerCredentials.Assume(context))
                Posix.LinkAt(Posix.AtFdCwd, source.ProcPath, directory.Fd, newName, AtSymlinkFollow);
            return new(LookupLowerCreated(directory, newName));
        }
        catch (PosixException e)
        {
            throw Fail(e);
        }
    }

    public ValueTask FsyncDirectoryAsync(FuseRequestContext context, ulong nodeId, ulong fileHandle, bool dataOnly)
    {
        if (Node(nodeId) is LowerNode node)
        {
            try
            {
                using var directory = Posix.OpenAt(node.Fd, ".", Posix.ORead | Posix.ODirectory);
                Posix.Sync(directory.Fd, dataOnly);
            }
            catch (PosixException e)
            {
                throw Fail(e);
            }
        }
        return ValueTask.CompletedTask;
    }

    // ---- extended attributes ----

    public ValueTask<byte[]?> GetExtendedAttributeAsync(FuseRequestContext context, ulong nodeId, string name)
    {
        // Lazy paths have none (Nix strips them when it canonicalises), and symlinks cannot be reached by descriptor path.
        if (Node(nodeId) is not LowerNode { Type: not PosixFileType.Symlink } node)
            return new((byte[]?)null);
        try
        {
            return new(ReadSized(buffer => Posix.GetExtendedAttribute(node.ProcPath, name, buffer, follow: true)));
        }
        catch (PosixException e) when (e.Errno == Errno.ENODATA || (e.Errno == Errno.EOPNOTSUPP && IsAclName(name)))
        {
            return new((byte[]?)null);
        }
        catch (PosixException e)
        {
            throw Fail(e);
        }
    }

    /// <summary>
    /// The POSIX ACLs' extended attributes. The kernel asks for them on permission checks (FUSE_POSIX_ACL);
    /// a file system without ACLs (ramfs, ZFS with acltype=off) answers EOPNOTSUPP, which the kernel would
    /// return from the check itself, failing every access, where it means "no ACL": the mode bits decide.
    /// </summary>
    private static bool IsAclName(string name) => name is "system.posix_acl_access" or "system.posix_acl_default";

    public ValueTask<IReadOnlyList<string>> ListExtendedAttributesAsync(FuseRequestContext context, ulong nodeId)
    {
        if (Node(nodeId) is not LowerNode { Type: not PosixFileType.Symlink } node)
            return new((IReadOnlyList<string>)[]);
        try
        {
            var names = ReadSized(buffer => Posix.ListExtendedAttributes(node.ProcPath, buffer, follow: true));
            return new(System.Text.Encoding.UTF8.GetString(names).Split('\0', StringSplitOptions.RemoveEmptyEntries));
        }
        catch (PosixException e)
        {
            throw Fail(e);
        }
    }

    /// <summary>
    /// The xattr calls' protocol: an empty buffer asks for the size, a second call fills a buffer of that
    /// size; ERANGE means the value grew in between, so ask again.
    /// </summary>
    private static byte[] ReadSized(Func<byte[], int> call)
    {
        while (true)
        {
            var buffer = new byte[call([])];
            try
            {
                return buffer[..call(buffer)];
            }
            catch (PosixException e) when (e.Errno == Errno.ERANGE)
            {
            }
        }
    }

    public ValueTask SetExtendedAttributeAsync(FuseRequestContext context, ulong nodeId, string name, ReadOnlyMemory<byte> value, int flags)
    {
        var node = WritableNode(nodeId);
        if (node.Type == PosixFileType.Symlink)
            throw new FuseException(Errno.EOPNOTSUPP);
        try
        {
            // As the caller: setting an access ACL clears the setgid bit unless the caller is in the file's group.
            using (CallerCredentials.Assume(context))
                Posix.SetExtendedAttribute(node.ProcPath, name, value.Span, flags, follow: true);
            return ValueTask.CompletedTask;
        }
        catch (PosixException e)
        {
            throw Fail(e);
        }
    }

    public ValueTask RemoveExtendedAttributeAsync(FuseRequestContext context, ulong nodeId, string name)
    {
        var node = WritableNode(nodeId);
        if (node.Type == PosixFileType.Symlink)
            throw new FuseException(Errno.EOPNOTSUPP);
        try
        {
            using (CallerCredentials.Assume(context))
                Posix.RemoveExtendedAttribute(node.ProcPath, name, follow: true);
            return ValueTask.CompletedTask;
        }
        catch (PosixException e)
        {
            throw Fail(e);
        }
    }

    /// <summary>The lower node a change is aimed at; a lazy one is read-only.</summary>
    private LowerNode WritableNode(ulong id) => Node(id) switch
    {
        LowerNode lower => lower,
        LazyNode => throw new FuseException(Errno.EROFS),
        _ => throw new FuseException(Errno.ESTALE),
    };
}
