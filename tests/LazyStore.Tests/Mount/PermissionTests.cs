using System.Text;
using LazyStore.Fuse.Interop;
using LazyStore.Nix.Interop;
using LazyStore.Store.Mount;
using LazyStore.Tests.Support;

namespace LazyStore.Tests.Mount;

/// <summary>
/// Permissions of the lower directory through the mount, as an unprivileged user sees them: the same
/// steps run on a plain directory and through the mount (mounted by root, as over /nix/store) must end
/// the same way, errno for errno, owner for owner, ACL for ACL.
/// </summary>
[Collection(MountCollection.Name)]
public sealed partial class PermissionTests(MountCaches caches)
{
    private const uint UserId = 61234;
    private const uint UserGroup = 61234;
    private const uint SharedGroup = 61235;
    private const uint OtherUser = 61236;
    private const uint OtherGroup = 61236;
    private const int OTruncate = 0x200;

    /// <summary>A user with no account, in its own group and in <see cref="SharedGroup"/>.</summary>
    private static readonly TestUser User = new(UserId, UserGroup, [SharedGroup]);

    [RootFuseFact("setfacl", "getfacl")]
    public async Task Access_acls_deny_and_grant_a_user_through_the_mount_as_on_the_plain_directory()
    {
        var (plain, mounted) = await CompareAsync(
            work =>
            {
                Write(Path.Combine(work, "denied-read"), "secret\n", 0b110_100_100);
                SetAcl(Path.Combine(work, "denied-read"), $"u:{UserId}:---");
                Write(Path.Combine(work, "denied-write"), "original\n", 0b110_110_110);
                SetAcl(Path.Combine(work, "denied-write"), $"u:{UserId}:r--");
                // The mode bits alone deny the user; the ACL grants.
                Write(Path.Combine(work, "granted"), "granted\n", 0b110_000_000);
                SetAcl(Path.Combine(work, "granted"), $"u:{UserId}:rw-");
                Posix.MakeDirectoryAt(Posix.AtFdCwd, Path.Combine(work, "acl-dir"), 0b111_101_101);
                SetAcl(Path.Combine(work, "acl-dir"), $"u:{UserId}:rwx");
            },
            umask: 0b000_010_010,
            work =>
            [
                "read denied-read: " + ReadAs(Path.Combine(work, "denied-read")),
                "write denied-write: " + WriteAs(Path.Combine(work, "denied-write"), "overwritten\n"),
                "read denied-write: " + ReadAs(Path.Combine(work, "denied-write")),
                "write granted: " + WriteAs(Path.Combine(work, "granted"), "written by the user\n"),
                "read granted: " + ReadAs(Path.Combine(work, "granted")),
                "create in acl-dir: " + CreateAs(Path.Combine(work, "acl-dir", "made"), 0b110_110_110),
            ]);

        Assert.Equal(
            [
                "read denied-read: errno 13",
                "write denied-write: errno 13",
                "read denied-write: original\n",
                "write granted: ok",
                "read granted: written by the user\n",
                "create in acl-dir: ok",
            ],
            plain.Take(6));
        Assert.Contains($"work/acl-dir/made Regular 644 {UserId}:{UserGroup}", plain);
        Assert.Equal(plain, mounted);
    }

    [RootFuseFact("setfacl", "getfacl")]
    public async Task An_acl_a_user_sets_through_the_mount_changes_the_mode_as_on_the_plain_directory()
    {
        var (plain, mounted) = await CompareAsync(
            work =>
            {
                // The user's own files: one in a group the user is not in, with the setgid bit.
                Write(Path.Combine(work, "foreign-group"), "", SetGid | 0b111_111_000);
                Posix.ChownAt(Posix.AtFdCwd, Path.Combine(work, "foreign-group"), UserId, OtherGroup, 0);
                Posix.ChmodAt(Posix.AtFdCwd, Path.Combine(work, "foreign-group"), SetGid | 0b111_111_000);
                Write(Path.Combine(work, "own-group"), "", 0b110_100_100);
                Posix.ChownAt(Posix.AtFdCwd, Path.Combine(work, "own-group"), UserId, UserGroup, 0);
            },
            umask: 0b000_010_010,
            work =>
            [
                // setfacl runs in a process forked by the user's thread, so as the user.
                "setfacl foreign-group: " + UserSetAcl(Path.Combine(work, "foreign-group"), $"u:{OtherUser}:rw-"),
                "setfacl own-group: " + UserSetAcl(Path.Combine(work, "own-group"), $"u:{OtherUser}:rwx,m::rw-"),
            ]);

        // Setting an access ACL clears the setgid bit of someone outside the file's group (posix_acl_update_mode).
        Assert.Contains(plain, line => line.StartsWith($"work/foreign-group Regular 770 {UserId}:{OtherGroup} ", StringComparison.Ordinal));
        Assert.Contains(plain, line => line.StartsWith($"work/own-group Regular 664 {UserId}:{UserGroup} ", StringComparison.Ordinal));
        Assert.Equal(plain, mounted);
    }

    [RootFuseFact("setfacl", "getfacl")]
    public async Task A_default_acl_is_inherited_by_what_a_user_creates_through_the_mount_as_on_the_plain_directory()
    {
        var (plain, mounted) = await CompareAsync(
            work =>
            {
                var inherit = Path.Combine(work, "inherit");
                // Writable by anyone through its mode bits: only the inheritance differs.
                Posix.MakeDirectoryAt(Posix.AtFdCwd, inherit, 0b111_111_111);
                Posix.ChmodAt(Posix.AtFdCwd, inherit, 0b111_111_111);
                SetAcl(inherit, $"u:{UserId}:rwx,g:{SharedGroup}:r-x,o::---", "-d");
            },
            umask: 0b000_010_010,
            work =>
            [
                "create file: " + CreateAs(Path.Combine(work, "inherit", "file"), 0b110_110_110),
                "mkdir dir: " + MakeDirectoryAs(Path.Combine(work, "inherit", "dir"), 0b111_111_111),
                "mkfifo fifo: " + MakeNodeAs(Path.Combine(work, "inherit", "fifo"), FifoMode | 0b110_110_110),
                "create nested: " + CreateAs(Path.Combine(work, "inherit", "dir", "nested"), 0b110_100_100),
            ]);

        // The umask (022) does not apply where a default ACL does: the group class keeps its write bit.
        Assert.Contains($"work/inherit/file Regular 660 {UserId}:{UserGroup} user::rw-,user:{UserId}:rwx #effective:rw-,group::rwx #effective:rw-,group:{SharedGroup}:r-x #effective:r--,mask::rw-,other::---", plain);
        Assert.Equal(plain, mounted);
    }

    [RootFuseFact]
    public async Task What_a_user_creates_in_a_setgid_directory_through_the_mount_takes_its_group_as_on_the_plain_directory()
    {
        var (plain, mounted) = await CompareAsync(
            work =>
            {
                var shared = Path.Combine(work, "shared");
                Posix.MakeDirectoryAt(Posix.AtFdCwd, shared, 0b111_111_101);
                Posix.ChownAt(Posix.AtFdCwd, shared, 0, SharedGroup, 0);
                Posix.ChmodAt(Posix.AtFdCwd, shared, SetGid | 0b111_111_101);
            },
            umask: 0b000_010_010,
            work =>
            [
                // The user may write here only as a member of the directory's group, a supplementary one.
                "create file: " + CreateAs(Path.Combine(work, "shared", "file"), 0b110_110_110),
                "mkdir dir: " + MakeDirectoryAs(Path.Combine(work, "shared", "dir"), 0b111_111_111),
                "mkdir deeper: " + MakeDirectoryAs(Path.Combine(work, "shared", "dir", "deeper"), 0b111_111_111),
                "symlink link: " + SymlinkAs("file", Path.Combine(work, "shared", "link")),
                "mkfifo fifo: " + MakeNodeAs(Path.Combine(work, "shared", "fifo"), FifoMode | 0b110_110_110),
            ]);

        Assert.Contains($"work/shared/file Regular 644 {UserId}:{SharedGroup}", plain);
        Assert.Contains($"work/shared/dir/deeper Directory 2755 {UserId}:{SharedGroup}", plain);
        Assert.Equal(plain, mounted);
    }

    [RootFuseFact]
    public async Task The_whiteout_a_user_leaves_by_renaming_through_the_mount_is_theirs_as_on_the_plain_directory()
    {
        var (plain, mounted) = await CompareAsync(
            work =>
            {
                var own = Path.Combine(work, "own");
                Posix.MakeDirectoryAt(Posix.AtFdCwd, own, 0b111_101_101);
                Posix.ChownAt(Posix.AtFdCwd, own, UserId, UserGroup, 0);
            },
            umask: 0b000_010_010,
            work =>
            [
                "create a: " + CreateAs(Path.Combine(work, "own", "a"), 0b110_110_110),
                "rename a to b leaving a whiteout: " + Outcome(Syscalls.RenameErrno(Path.Combine(work, "own", "a"), Path.Combine(work, "own", "b"), Syscalls.RenameWhiteout)),
            ]);

        Assert.Contains($"work/own/a CharacterDevice 0 {UserId}:{UserGroup} rdev=0", plain);
        Assert.Equal(plain, mounted);
    }

    [RootFuseFact]
    public async Task What_a_user_creates_through_the_mount_has_their_umask_and_owner_as_on_the_plain_directory()
    {
        var (plain, mounted) = await CompareAsync(
            work =>
            {
                var open = Path.Combine(work, "open");
                Posix.MakeDirectoryAt(Posix.AtFdCwd, open, 0b111_111_111);
                Posix.ChmodAt(Posix.AtFdCwd, open, 0b111_111_111);
            },
            // A group-writable umask: the mount's own (022 in any shell) must not take the group's write bit.
            umask: 0b000_000_010,
            work =>
            [
                "create file: " + CreateAs(Path.Combine(work, "open", "file"), 0b110_110_110),
                "create private: " + CreateAs(Path.Combine(work, "open", "private"), 0b111_000_000),
                "mkdir dir: " + MakeDirectoryAs(Path.Combine(work, "open", "dir"), 0b111_111_111),
                "mkfifo fifo: " + MakeNodeAs(Path.Combine(work, "open", "fifo"), FifoMode | 0b110_110_110),
                "symlink link: " + SymlinkAs("file", Path.Combine(work, "open", "link")),
            ]);

        Assert.Contains($"work/open/file Regular 664 {UserId}:{UserGroup}", plain);
        Assert.Contains($"work/open/dir Directory 775 {UserId}:{UserGroup}", plain);
        Assert.Equal(plain, mounted);
    }

    [RootFuseFact("mount")]
    public async Task Over_a_lower_file_system_without_acls_the_mode_bits_decide_for_a_user_as_on_the_plain_directory()
    {
        var (plain, mounted) = await CompareAsync(
            work =>
            {
                Write(Path.Combine(work, "readable"), "readable\n", 0b110_100_100);
                Write(Path.Combine(work, "private"), "private\n", 0b110_000_000);
                Posix.MakeDirectoryAt(Posix.AtFdCwd, Path.Combine(work, "open"), 0b111_111_111);
                Posix.ChmodAt(Posix.AtFdCwd, Path.Combine(work, "open"), 0b111_111_111);
            },
            umask: 0b000_010_010,
            work =>
            [
                "read readable: " + ReadAs(Path.Combine(work, "readable")),
                "read private: " + ReadAs(Path.Combine(work, "private")),
                "create in open: " + CreateAs(Path.Combine(work, "open", "file"), 0b110_110_110),
            ],
            // ramfs keeps no extended attributes: asked for an ACL it answers EOPNOTSUPP rather than "none".
            onRamfs: true);

        Assert.Equal(["read readable: readable\n", "read private: errno 13", "create in open: ok"], plain.Take(3));
        Assert.Equal(plain, mounted);
    }

    private const uint FifoMode = 0x1000;
    private const uint SetGid = 0x400;

    /// <summary>
    /// Prepares <c>work</c> as root, runs <paramref name="asUser"/> as <see cref="User"/> with
    /// <paramref name="umask"/>, and describes the outcome (what the user saw, then every entry of
    /// <c>work</c> as root sees it): once on a plain directory, once through a mount of another (both
    /// on the same file system, a ramfs of the test's own with <paramref name="onRamfs"/>).
    /// </summary>
    private async Task<(List<string> Plain, List<string> Mounted)> CompareAsync(Action<string> prepare, uint umask, Func<string, List<string>> asUser, bool onRamfs = false)
    {
        using var mount = new StoreMountHarness(caches.OwnCacheDir, [caches.Key.PublicKey]);
        // The harness's directories are private to root; the user must reach them.
        Posix.ChmodAt(Posix.AtFdCwd, Path.GetDirectoryName(mount.LowerDirectory)!, 0b111_101_101);
        var ramfs = onRamfs ? mount.Scratch("ramfs") : null;
        if (ramfs is not null)
            ExternalTool.Run(RequiredTools.Require("mount"), ["-t", "ramfs", "-o", "mode=755", "lazystore-test", ramfs]).EnsureSuccess($"mount -t ramfs at {ramfs}");
        try
        {
            var plainDirectory = ramfs is null ? mount.Scratch("plain") : Path.Combine(ramfs, "plain");
            var lower = ramfs is null ? mount.LowerDirectory : Path.Combine(ramfs, "lower");
            Directory.CreateDirectory(plainDirectory);
            Directory.CreateDirectory(lower);
            var plain = Run(plainDirectory);
            mount.Mount(new StoreMountOptions { LowerDirectory = lower, AllowOther = true });
            try
            {
                return (plain, Run(mount.MountPoint));
            }
            finally
            {
                await mount.UnmountAsync();
            }
        }
        finally
        {
            if (ramfs is not null)
                Libc.umount2(ramfs, Libc.MntDetach);
        }

        List<string> Run(string root)
        {
            var work = Path.Combine(root, "work");
            Posix.MakeDirectoryAt(Posix.AtFdCwd, work, 0b111_101_101);
            prepare(work);
            var seen = User.Run(umask, () => asUser(work));
            seen.AddRange(Describe(root));
            return seen;
        }
    }

    /// <summary>Every entry of <c>root/work</c> as one line: type, mode, owner, device number, access and default ACL.</summary>
    private static List<string> Describe(string root)
    {
        var lines = new List<string>();
        var work = Path.Combine(root, "work");
        foreach (var path in Directory.EnumerateFileSystemEntries(work, "*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0 }))
        {
            var st = Posix.StatAt(Posix.AtFdCwd, path);
            var line = new StringBuilder($"{Path.GetRelativePath(root, path)} {st.Type} {Convert.ToString(st.Mode & 0xFFF, 8)} {st.Uid}:{st.Gid}");
            if (st.Type == PosixFileType.CharacterDevice)
                line.Append($" rdev={st.RDevice}");
            if (st.Type != PosixFileType.Symlink)
            {
                var acl = ExternalTool.Run(RequiredTools.Require("getfacl"), ["-n", "-c", "-p", path]).EnsureSuccess($"getfacl {path}").StdoutText;
                var entries = acl.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(e => Whitespace().Replace(e.Trim(), " ")).ToArray();
                // Without an ACL getfacl shows the mode bits again.
                if (entries.Length > 3)
                    line.Append(' ').Append(string.Join(',', entries));
            }
            lines.Add(line.ToString());
        }
        lines.Sort(StringComparer.Ordinal);
        return lines;
    }

    [System.Text.RegularExpressions.GeneratedRegex(@"\s+")]
    private static partial System.Text.RegularExpressions.Regex Whitespace();

    private static void SetAcl(string path, string entries, string? option = null)
    {
        string[] args = option is null ? ["-m", entries, path] : [option, "-m", entries, path];
        ExternalTool.Run(RequiredTools.Require("setfacl"), args).EnsureSuccess($"setfacl {string.Join(' ', args)}");
    }

    private static string UserSetAcl(string path, string entries)
    {
        var result = ExternalTool.Run(RequiredTools.Require("setfacl"), ["-m", entries, path]);
        return result.ExitCode == 0 ? "ok" : result.Stderr.Trim();
    }

    private static void Write(string path, string text, uint mode)
    {
        using (var fd = Posix.OpenAt(Posix.AtFdCwd, path, Posix.OWriteOnly | Posix.OCreate | Posix.OExclusive, mode))
            Posix.WriteAt(fd.Fd, Encoding.UTF8.GetBytes(text), 0);
        Posix.ChmodAt(Posix.AtFdCwd, path, mode);
    }

    // Run as the user: each returns what a program would see, the bytes read, "ok", or the errno.

    private static string ReadAs(string path)
    {
        try
        {
            using var fd = Posix.OpenAt(Posix.AtFdCwd, path, Posix.ORead);
            var buffer = new byte[4096];
            return Encoding.UTF8.GetString(buffer, 0, Posix.ReadAt(fd.Fd, buffer, 0));
        }
        catch (PosixException e)
        {
            return $"errno {e.Errno}";
        }
    }

    private static string WriteAs(string path, string text)
    {
        try
        {
            using var fd = Posix.OpenAt(Posix.AtFdCwd, path, Posix.OWriteOnly | OTruncate);
            Posix.WriteAt(fd.Fd, Encoding.UTF8.GetBytes(text), 0);
            return "ok";
        }
        catch (PosixException e)
        {
            return $"errno {e.Errno}";
        }
    }

    private static string CreateAs(string path, uint mode) =>
        Outcome(Errno.Of(() => Posix.OpenAt(Posix.AtFdCwd, path, Posix.OWriteOnly | Posix.OCreate | Posix.OExclusive, mode).Dispose()));

    private static string MakeDirectoryAs(string path, uint mode) => Outcome(Errno.Of(() => Posix.MakeDirectoryAt(Posix.AtFdCwd, path, mode)));

    private static string MakeNodeAs(string path, uint mode) => Outcome(Errno.Of(() => Posix.MakeNodeAt(Posix.AtFdCwd, path, mode, 0)));

    private static string SymlinkAs(string target, string path) => Outcome(Errno.Of(() => Posix.SymlinkAt(target, Posix.AtFdCwd, path)));

    private static string Outcome(int errno) => errno == 0 ? "ok" : $"errno {errno}";
}
