using LazyStore.Fuse;
using LazyStore.Tests.Support;

namespace LazyStore.Tests.Fuse;

/// <summary>Mounting, unmounting and what the kernel's caches need from the session.</summary>
public sealed class FuseMountTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    /// <summary>How long the session may take to end after Unmount; the old code never ended while another namespace held the mount.</summary>
    private static readonly TimeSpan Ending = TimeSpan.FromSeconds(10);

    /// <summary>A name no test looks up before the end: its lookup reaches the session, or fails with ENOTCONN once the connection is gone.</summary>
    private const string NotLookedUp = "/not-looked-up";

    [FuseFact]
    public async Task Unmount_ends_the_session_and_leaves_no_mount()
    {
        var fs = FuseOperationTests.SampleTree();
        using var mount = TestMount.Start(fs);
        Assert.True(TestMount.IsMounted(mount.Path));
        Assert.Equal("fuse.memory", MountTable.At(mount.Mount.MountPoint)!.FileSystemType);
        Assert.Equal("lazystore-test", MountTable.At(mount.Mount.MountPoint)!.Source);
        Assert.Equal("hello world\n", File.ReadAllText(mount.In("hello.txt")));

        mount.Mount.Unmount();
        await mount.Mount.Completion.WaitAsync(Patience);

        Assert.False(TestMount.IsMounted(mount.Path));
        Assert.Empty(Directory.GetFileSystemEntries(mount.Path));
        mount.Mount.Unmount();
        mount.Mount.Dispose();
        Assert.Equal("", mount.Log);
    }

    [FuseFact]
    public void Mounting_where_something_is_mounted_is_refused_with_a_clear_message()
    {
        using var first = TestMount.Start(new MemoryFileSystem());

        var error = Assert.Throws<FuseMountException>(() => FuseMount.Mount(new MemoryFileSystem(), first.Path));

        Assert.Contains($"cannot mount at {first.Mount.MountPoint}: it is already a mount point (fuse.memory from lazystore-test)", error.Message);
        Assert.True(TestMount.IsMounted(first.Path));
    }

    [FuseFact]
    public void A_missing_mount_point_or_a_file_is_refused_with_a_clear_message()
    {
        using var temp = new TempDir();
        File.WriteAllText(temp.Sub("file"), "");

        var missing = Assert.Throws<FuseMountException>(() => FuseMount.Mount(new MemoryFileSystem(), temp.Sub("absent")));
        var file = Assert.Throws<FuseMountException>(() => FuseMount.Mount(new MemoryFileSystem(), temp.Sub("file")));

        Assert.Equal($"cannot mount at {temp.Sub("absent")}: No such file or directory", missing.Message);
        Assert.Equal($"cannot mount at {temp.Sub("file")}: not a directory", file.Message);
    }

    [FuseFact]
    public void Options_libfuse_rejects_are_named_in_the_error()
    {
        using var temp = new TempDir();
        Directory.CreateDirectory(temp.Sub("mnt"));

        var error = Assert.Throws<FuseMountException>(() =>
            FuseMount.Mount(new MemoryFileSystem(), temp.Sub("mnt"), new FuseMountOptions { AdditionalOptions = ["no_such_option"] }));

        Assert.Contains("libfuse refused the session", error.Message);
        Assert.Contains("no_such_option", error.Message);
        Assert.False(TestMount.IsMounted(temp.Sub("mnt")));
    }

    [FuseFact]
    public async Task An_unmount_from_outside_ends_the_session()
    {
        using var mount = TestMount.Start(FuseOperationTests.SampleTree());
        Assert.True(File.Exists(mount.In("hello.txt")));

        TestMount.Tool("fusermount3", "-u", mount.Path).EnsureSuccess("fusermount3 -u");

        await mount.Mount.Completion.WaitAsync(Patience);
        Assert.False(TestMount.IsMounted(mount.Path));
    }

    [FuseFact]
    public async Task A_busy_mount_is_detached_and_its_open_files_fail_instead_of_hanging()
    {
        using var mount = TestMount.Start(FuseOperationTests.SampleTree());
        using var open = new FileStream(mount.In("hello.txt"), FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1);
        Assert.Equal((byte)'h', open.ReadByte());

        mount.Mount.Unmount();
        await mount.Mount.Completion.WaitAsync(Patience);

        Assert.False(TestMount.IsMounted(mount.Path));
        var error = Assert.ThrowsAny<IOException>(() => open.ReadByte());
        Assert.Equal(Errno.ENOTCONN, error.HResult & 0xFFFF);
    }

    [FuseFact]
    public async Task Unmount_ends_the_session_while_another_mount_namespace_holds_a_copy()
    {
        using var mount = TestMount.Start(FuseOperationTests.SampleTree());
        using var holder = MountNamespaceHolder.Start(mount.Mount.MountPoint, Patience);
        // Only the root is touched before Unmount: a request the kernel sends later on its own (the
        // RELEASE after a close, the FORGET of an expired entry) would wake the loop by itself and hide
        // a session that never ends.
        Assert.Equal(0, Syscalls.StatErrno(holder.Inside(mount.Mount.MountPoint)));
        int controlMounts = ControlFileSystemMounts();

        mount.Mount.Unmount();

        // The holder's copy keeps the superblock alive: before, the session served it until the holder went away.
        await mount.Mount.Completion.WaitAsync(Ending);
        Assert.False(TestMount.IsMounted(mount.Path));
        Assert.True(holder.HasMountAt(mount.Mount.MountPoint));
        Assert.Equal(Errno.ENOTCONN, Syscalls.StatErrno(holder.Inside(mount.Mount.MountPoint + NotLookedUp)));
        Assert.Equal(controlMounts, ControlFileSystemMounts());
    }

    [FuseFact]
    public async Task Without_the_control_filesystem_the_session_still_ends_while_another_namespace_holds_a_copy()
    {
        using var mount = TestMount.Start(FuseOperationTests.SampleTree(), new FuseMountOptions { AbortThroughControlFileSystem = false });
        using var holder = MountNamespaceHolder.Start(mount.Mount.MountPoint, Patience);
        Assert.Equal(0, Syscalls.StatErrno(holder.Inside(mount.Mount.MountPoint)));

        mount.Mount.Unmount();

        await mount.Mount.Completion.WaitAsync(Ending);
        Assert.False(TestMount.IsMounted(mount.Path));
        Assert.True(holder.HasMountAt(mount.Mount.MountPoint));
        Assert.Equal(Errno.ENOTCONN, Syscalls.StatErrno(holder.Inside(mount.Mount.MountPoint + NotLookedUp)));
    }

    [FuseFact]
    public async Task A_request_pending_in_another_mount_namespace_is_answered_at_unmount()
    {
        var fs = FuseOperationTests.SampleTree();
        var entered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource();
        fs.Intercept = (operation, name) =>
        {
            if (operation != "open" || name != "hello.txt")
                return ValueTask.CompletedTask;
            entered.TrySetResult();
            return new ValueTask(release.Task);
        };
        using var mount = TestMount.Start(fs);
        using var holder = MountNamespaceHolder.Start(mount.Mount.MountPoint, Patience);
        try
        {
            var stuck = Task.Run(() => Syscalls.OpenErrno(holder.Inside(mount.Mount.MountPoint + "/hello.txt")));
            await entered.Task.WaitAsync(Patience);

            mount.Mount.Unmount();

            await mount.Mount.Completion.WaitAsync(Ending);
            Assert.Equal(Errno.ENOTCONN, await stuck.WaitAsync(Ending));
            Assert.Contains("1 request(s) still in progress when the session ended were answered with ENOTCONN", mount.Log);
        }
        finally
        {
            release.TrySetResult();
        }
    }

    [FuseFact]
    public async Task Unmount_after_an_unmount_from_outside_ends_a_session_another_namespace_still_holds()
    {
        using var mount = TestMount.Start(FuseOperationTests.SampleTree());
        using var holder = MountNamespaceHolder.Start(mount.Mount.MountPoint, Patience);
        TestMount.Tool("umount", mount.Path).EnsureSuccess("umount");
        Assert.False(TestMount.IsMounted(mount.Path));
        Assert.Equal(0, Syscalls.StatErrno(holder.Inside(mount.Mount.MountPoint)));

        // The mount point no longer leads to the session; only the connection's abort file in fusectl does.
        mount.Mount.Unmount();

        await mount.Mount.Completion.WaitAsync(Ending);
        Assert.Equal(Errno.ENOTCONN, Syscalls.StatErrno(holder.Inside(mount.Mount.MountPoint + NotLookedUp)));
    }

    [FuseFact]
    public async Task A_session_whose_workers_are_all_busy_has_its_connection_aborted_at_the_deadline()
    {
        const int ECONNABORTED = 103;
        var fs = FuseOperationTests.SampleTree();
        var entered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource();
        fs.Intercept = (operation, name) =>
        {
            if (operation == "open" && name == "hello.txt")
            {
                // Holds the only worker, so the request Unmount sends to wake the loop is never read.
                entered.TrySetResult();
                release.Task.Wait();
            }
            return ValueTask.CompletedTask;
        };
        using var mount = TestMount.Start(fs, new FuseMountOptions { MaxThreads = 1 });
        using var holder = MountNamespaceHolder.Start(mount.Mount.MountPoint, Patience);
        try
        {
            var inCopy = holder.Inside(mount.Mount.MountPoint + "/hello.txt");
            var stuck = Task.Run(() => Syscalls.OpenErrno(inCopy));
            await entered.Task.WaitAsync(Patience);

            mount.Mount.Unmount();

            // The kernel ends the request itself, while its handler still runs.
            Assert.Equal(ECONNABORTED, await stuck.WaitAsync(FuseMount.AbortDeadline + Ending));
            Assert.Equal(Errno.ENOTCONN, Syscalls.StatErrno(holder.Inside(mount.Mount.MountPoint + NotLookedUp)));
            release.SetResult();
            await mount.Mount.Completion.WaitAsync(Ending);
        }
        finally
        {
            release.TrySetResult();
        }
    }

    [FuseFact]
    public async Task Requests_pending_at_unmount_are_answered_and_their_late_completion_is_dropped()
    {
        var fs = FuseOperationTests.SampleTree();
        var entered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource();
        fs.Intercept = (operation, name) =>
        {
            if (operation != "open" || name != "hello.txt")
                return ValueTask.CompletedTask;
            entered.TrySetResult();
            return new ValueTask(release.Task);
        };
        using var mount = TestMount.Start(fs);
        var stuck = Task.Run(() => Syscalls.OpenErrno(mount.In("hello.txt")));
        await entered.Task.WaitAsync(Patience);

        mount.Mount.Unmount();
        await mount.Mount.Completion.WaitAsync(Patience);

        Assert.Equal(Errno.ENOTCONN, await stuck.WaitAsync(Patience));
        Assert.Contains("1 request(s) still in progress when the session ended were answered with ENOTCONN", mount.Log);
        release.SetResult();
        Assert.False(TestMount.IsMounted(mount.Path));
    }

    [FuseFact]
    public async Task An_Initialize_that_throws_fails_the_session_and_unmounts()
    {
        var fs = new MemoryFileSystem { OnInitialize = _ => throw new InvalidOperationException("no capabilities for you") };
        using var mount = TestMount.Start(fs);

        var error = await Assert.ThrowsAsync<FuseMountException>(() => mount.Mount.Completion.WaitAsync(Patience));

        Assert.Contains("failed to initialise: no capabilities for you", error.Message);
        Assert.IsType<InvalidOperationException>(error.InnerException);
        Assert.False(TestMount.IsMounted(mount.Path));
    }

    [FuseFact]
    public void Initialize_sees_the_negotiated_connection()
    {
        var fs = FuseOperationTests.SampleTree();
        using var mount = TestMount.Start(fs, new FuseMountOptions { ReaddirPlus = FuseReaddirPlusMode.Off });
        Assert.True(File.Exists(mount.In("hello.txt")));

        var connection = fs.Connection!;
        Assert.Equal(7u, connection.ProtocolMajor);
        Assert.True(connection.Capable.HasFlag(FuseCapabilities.ReaddirPlus));
        Assert.False(connection.Wanted.HasFlag(FuseCapabilities.ReaddirPlus));
        Assert.True(connection.Wanted.HasFlag(FuseCapabilities.AsyncRead));
        Assert.False(connection.TryEnable((FuseCapabilities)(1u << 31)));
    }

    [FuseFact]
    public void Invalidating_an_entry_drops_a_cached_negative_lookup()
    {
        var fs = FuseOperationTests.SampleTree();
        fs.NegativeTimeout = TimeSpan.FromHours(1);
        using var mount = TestMount.Start(fs);
        var late = mount.In("late.txt");

        Assert.False(File.Exists(late));
        int lookups = fs.CallCount("lookup");
        fs.AddFile("late.txt", "appeared"u8.ToArray());
        Assert.False(File.Exists(late));
        Assert.Equal(lookups, fs.CallCount("lookup"));

        Assert.True(mount.Mount.InvalidateEntry(IFuseFileSystem.RootNodeId, "late.txt"));
        Assert.Equal("appeared", File.ReadAllText(late));
    }

    [FuseFact]
    public void Invalidating_data_and_attributes_drops_what_the_kernel_cached()
    {
        var fs = FuseOperationTests.SampleTree();
        fs.CacheTimeout = TimeSpan.FromHours(1);
        fs.KeepCache = true;
        using var mount = TestMount.Start(fs);
        var path = mount.In("hello.txt");
        var file = fs.Find("hello.txt")!;
        Assert.Equal(12, new FileInfo(path).Length);

        // Checked before any read: on a writable mount each read marks atime stale (fuse_invalidate_atime),
        // so the next stat asks again anyway.
        file.Data = "longer than before\n"u8.ToArray();
        Assert.Equal(12, new FileInfo(path).Length);
        Assert.True(mount.Mount.InvalidateAttributes(file.Id));
        Assert.Equal(file.Data.Length, new FileInfo(path).Length);

        // Same size and mtime, so nothing but an explicit invalidation makes the kernel read again.
        Assert.Equal("longer than before\n", File.ReadAllText(path));
        "LONGER THAN BEFORE\n"u8.CopyTo(file.Data);
        Assert.Equal("longer than before\n", File.ReadAllText(path));
        Assert.True(mount.Mount.InvalidateData(file.Id));
        Assert.Equal("LONGER THAN BEFORE\n", File.ReadAllText(path));
        Assert.False(mount.Mount.InvalidateAttributes(999_999));
    }

    private static int ControlFileSystemMounts() => MountTable.Read().Count(m => m.FileSystemType == "fusectl");
}
