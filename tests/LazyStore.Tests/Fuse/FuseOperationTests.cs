using System.Security.Cryptography;
using System.Text;
using LazyStore.Fuse;
using LazyStore.Tests.Support;

namespace LazyStore.Tests.Fuse;

/// <summary>Each operation driven through a real mount with .NET's file APIs and coreutils.</summary>
public sealed class FuseOperationTests
{
    private static readonly byte[] BigFile = RandomBytes(8 << 20, seed: 8);

    [FuseTheory]
    [InlineData(FuseReaddirPlusMode.Off)]
    [InlineData(FuseReaddirPlusMode.Always)]
    [InlineData(FuseReaddirPlusMode.Auto)]
    public void Listing_shows_every_entry_with_its_type(FuseReaddirPlusMode mode)
    {
        var fs = SampleTree();
        // Longer names than one 4 KiB readdir reply holds, so the listing continues from offset cookies.
        for (int i = 0; i < 300; i++)
            fs.AddFile($"many/entry-{i:D4}-{new string('x', 40)}", [(byte)i]);
        using var mount = TestMount.Start(fs, new FuseMountOptions { ReaddirPlus = mode });

        Assert.Equal(
            ["big.bin", "hello.txt", "link", "many", "sub"],
            Directory.GetFileSystemEntries(mount.Path).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        Assert.Equal(300, Directory.GetFiles(mount.In("many")).Length);
        var ls = TestMount.Tool("ls", "-la", mount.Path).EnsureSuccess("ls -la").StdoutText.Split('\n');
        Assert.Single(ls, l => l.EndsWith(" .", StringComparison.Ordinal) && l.StartsWith('d'));
        Assert.Single(ls, l => l.EndsWith(" ..", StringComparison.Ordinal) && l.StartsWith('d'));
        Assert.Single(ls, l => l.EndsWith(" sub", StringComparison.Ordinal) && l.StartsWith("drwxr-xr-x", StringComparison.Ordinal));
        Assert.Single(ls, l => l.EndsWith(" link -> hello.txt", StringComparison.Ordinal) && l.StartsWith('l'));
        Assert.Single(ls, l => l.EndsWith(" hello.txt", StringComparison.Ordinal) && l.StartsWith("-rw-r--r--", StringComparison.Ordinal));

        switch (mode)
        {
            case FuseReaddirPlusMode.Off:
                Assert.Equal(0, fs.CallCount("readdirplus"));
                Assert.True(fs.CallCount("readdir") > 0);
                break;
            case FuseReaddirPlusMode.Always:
                Assert.Equal(0, fs.CallCount("readdir"));
                Assert.True(fs.CallCount("readdirplus") > 0);
                break;
        }
    }

    [FuseFact]
    public void Stat_reports_mode_size_links_owner_and_nanosecond_times()
    {
        var fs = SampleTree();
        var file = fs.Find("hello.txt")!;
        file.Mode = (uint)FuseFileType.Regular | 0b110_100_000;
        file.UserId = 1234;
        file.GroupId = 5678;
        file.LinkCount = 3;
        file.ModificationTime = new FuseTimestamp(1_700_000_000, 123_456_789);
        using var mount = TestMount.Start(fs);

        var stat = TestMount.Tool("stat", "-c", "%F|%a|%s|%h|%u|%g|%Y|%y", mount.In("hello.txt")).EnsureSuccess("stat").StdoutText.Trim();
        Assert.Equal("regular file|640|12|3|1234|5678|1700000000|2023-11-14 22:13:20.123456789 +0000", stat);
        Assert.Equal(12, new FileInfo(mount.In("hello.txt")).Length);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead, File.GetUnixFileMode(mount.In("hello.txt")));
        Assert.Equal(new DateTime(2023, 11, 14, 22, 13, 20, DateTimeKind.Utc).AddTicks(1_234_567), File.GetLastWriteTimeUtc(mount.In("hello.txt")));
        Assert.Equal("directory|755|2", TestMount.Tool("stat", "-c", "%F|%a|%h", mount.In("sub")).StdoutText.Trim());
        // st_ino falls back to the node id when the filesystem leaves it 0.
        Assert.Equal(file.Id.ToString(), TestMount.Tool("stat", "-c", "%i", mount.In("hello.txt")).StdoutText.Trim());
    }

    [FuseFact]
    public void Reads_at_any_offset_match_the_file_byte_for_byte()
    {
        using var mount = TestMount.Start(SampleTree());
        var path = mount.In("big.bin");

        Assert.Equal(BigFile.Length, new FileInfo(path).Length);
        Assert.True(File.ReadAllBytes(path).AsSpan().SequenceEqual(BigFile));
        using (var handle = File.OpenHandle(path))
        {
            foreach (long offset in new long[] { 0, 1, 4095, 4096, 131_071, (1 << 20) + 17, BigFile.Length - 100, BigFile.Length })
            {
                var buffer = new byte[200_000];
                int read = RandomAccess.Read(handle, buffer, offset);
                int expected = (int)Math.Min(buffer.Length, BigFile.Length - offset);
                Assert.Equal(expected, read);
                Assert.True(buffer.AsSpan(0, read).SequenceEqual(BigFile.AsSpan((int)offset, expected)), $"bytes at offset {offset}");
            }
        }
        var cat = TestMount.Tool("cat", path).EnsureSuccess("cat");
        Assert.Equal(SHA256.HashData(BigFile), SHA256.HashData(cat.Stdout));
    }

    [FuseFact]
    public void Readlink_returns_the_target()
    {
        var fs = SampleTree();
        fs.AddSymlink("sub/absolute", "/nix/store/abc-x/bin/y");
        using var mount = TestMount.Start(fs);

        Assert.Equal("hello.txt", new FileInfo(mount.In("link")).LinkTarget);
        Assert.Equal("hello world\n", File.ReadAllText(mount.In("link")));
        Assert.Equal("/nix/store/abc-x/bin/y", TestMount.Tool("readlink", mount.In("sub/absolute")).StdoutText.Trim());
    }

    [FuseFact]
    public void Writes_creates_renames_and_removals_land_in_the_model()
    {
        var fs = SampleTree();
        using var mount = TestMount.Start(fs);

        File.WriteAllText(mount.In("new.txt"), "first");
        File.AppendAllText(mount.In("new.txt"), " second");
        Assert.Equal("first second", Encoding.UTF8.GetString(fs.Find("new.txt")!.Data));

        Directory.CreateDirectory(mount.In("made"));
        Assert.True(fs.Find("made")!.IsDirectory);
        File.Move(mount.In("new.txt"), mount.In("made/moved.txt"));
        Assert.Null(fs.Find("new.txt"));
        Assert.Equal("first second", Encoding.UTF8.GetString(fs.Find("made/moved.txt")!.Data));
        Assert.Equal("first second", File.ReadAllText(mount.In("made/moved.txt")));

        File.WriteAllText(mount.In("hello.txt"), "replaced");
        Assert.Equal("replaced", Encoding.UTF8.GetString(fs.Find("hello.txt")!.Data));

        File.Delete(mount.In("made/moved.txt"));
        Assert.Null(fs.Find("made/moved.txt"));
        Directory.Delete(mount.In("made"));
        Assert.Null(fs.Find("made"));
        Assert.False(Directory.Exists(mount.In("made")));
        Assert.Equal(Errno.ENOTEMPTY, ErrnoOf(() => Directory.Delete(mount.In("sub"))));
    }

    [FuseFact]
    public void Setattr_changes_mode_size_and_times_with_now_and_omit()
    {
        var fs = SampleTree();
        using var mount = TestMount.Start(fs);
        var path = mount.In("hello.txt");
        var file = fs.Find("hello.txt")!;
        var atime = file.AccessTime;

        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserExecute);
        Assert.Equal((uint)FuseFileType.Regular | 0b101_000_000, file.Mode);

        using (var stream = new FileStream(path, FileMode.Open, FileAccess.Write))
            stream.SetLength(5);
        Assert.Equal("hello", Encoding.UTF8.GetString(file.Data));

        // touch -m sends UTIME_OMIT for the access time.
        TestMount.Tool("touch", "-m", "-d", "@1600000000.25", path).EnsureSuccess("touch -m");
        Assert.Equal(new FuseTimestamp(1_600_000_000, 250_000_000), file.ModificationTime);
        Assert.Equal(atime, file.AccessTime);

        // touch without a date sends UTIME_NOW for both.
        var before = DateTimeOffset.UtcNow.AddSeconds(-5);
        TestMount.Tool("touch", path).EnsureSuccess("touch");
        Assert.True(file.ModificationTime.ToDateTimeOffset() > before);
        Assert.True(file.AccessTime.ToDateTimeOffset() > before);
        Assert.Equal("1600000000", TestMount.Tool("stat", "-c", "%X", mount.In("sub/inner.txt")).StdoutText.Trim());
    }

    [FuseFact]
    public void Links_symlinks_fifos_and_rename_flags()
    {
        var fs = SampleTree();
        using var mount = TestMount.Start(fs);

        TestMount.Tool("ln", mount.In("hello.txt"), mount.In("hard")).EnsureSuccess("ln");
        Assert.Equal(fs.Find("hello.txt")!.Id, fs.Find("hard")!.Id);
        Assert.Equal("2", TestMount.Tool("stat", "-c", "%h", mount.In("hello.txt")).StdoutText.Trim());

        File.CreateSymbolicLink(mount.In("made-link"), "sub/inner.txt");
        Assert.Equal("sub/inner.txt", fs.Find("made-link")!.Target);
        Assert.Equal("inner", File.ReadAllText(mount.In("made-link")));

        TestMount.Tool("mkfifo", mount.In("pipe")).EnsureSuccess("mkfifo");
        Assert.Equal(FuseFileType.Fifo, (FuseFileType)(fs.Find("pipe")!.Mode & 0xF000));
        Assert.Equal("fifo", TestMount.Tool("stat", "-c", "%F", mount.In("pipe")).StdoutText.Trim());

        Assert.Equal(Errno.EEXIST, Syscalls.RenameErrno(mount.In("hello.txt"), mount.In("sub/inner.txt"), Syscalls.RenameNoReplace));
        Assert.Equal(0, Syscalls.RenameErrno(mount.In("hello.txt"), mount.In("sub/inner.txt"), Syscalls.RenameExchange));
        Assert.Equal("inner", File.ReadAllText(mount.In("hello.txt")));
        Assert.Equal("hello world\n", File.ReadAllText(mount.In("sub/inner.txt")));
    }

    [FuseFact]
    public void Extended_attributes_answer_size_probes_and_small_buffers()
    {
        var fs = SampleTree();
        using var mount = TestMount.Start(fs);
        var path = mount.In("hello.txt");

        Assert.Equal(0, Syscalls.SetXattrErrno(path, "user.greeting", "hello"u8.ToArray()));
        Assert.Equal(0, Syscalls.SetXattrErrno(path, "user.empty", []));
        Assert.Equal(Errno.EEXIST, Syscalls.SetXattrErrno(path, "user.greeting", [1], flags: 1));
        Assert.Equal("hello"u8.ToArray(), fs.Find("hello.txt")!.ExtendedAttributes["user.greeting"]);

        Assert.Equal((5L, 0), Take2(Syscalls.GetXattr(path, "user.greeting", 0)));
        Assert.Equal(Errno.ERANGE, Syscalls.GetXattr(path, "user.greeting", 2).Errno);
        Assert.Equal("hello"u8.ToArray(), Syscalls.GetXattr(path, "user.greeting", 64).Value);
        Assert.Equal((0L, 0), Take2(Syscalls.GetXattr(path, "user.empty", 64)));
        Assert.Equal(Errno.ENODATA, Syscalls.GetXattr(path, "user.missing", 64).Errno);

        int listLength = "user.greeting\0user.empty\0".Length;
        Assert.Equal((listLength, 0), Take2(Syscalls.ListXattr(path, 0)));
        Assert.Equal(Errno.ERANGE, Syscalls.ListXattr(path, 3).Errno);
        Assert.Equal(["user.empty", "user.greeting"], Syscalls.ListXattr(path, 256).Names.Order(StringComparer.Ordinal));

        Assert.Equal(0, Syscalls.RemoveXattrErrno(path, "user.greeting"));
        Assert.Equal(Errno.ENODATA, Syscalls.RemoveXattrErrno(path, "user.greeting"));
    }

    [FuseFact]
    public void Statfs_reports_the_filesystem_statistics()
    {
        using var mount = TestMount.Start(SampleTree());
        var statfs = TestMount.Tool("stat", "-f", "-c", "%S %b %f %a %d %l", mount.Path).EnsureSuccess("stat -f").StdoutText.Trim();
        Assert.Equal("4096 1000 400 300 100 255", statfs);
    }

    [FuseFact]
    public void A_FuseException_reaches_the_caller_as_its_errno()
    {
        var fs = SampleTree();
        fs.Intercept = (operation, name) => (operation, name) switch
        {
            ("lookup", "ghost") => throw new FuseException(Errno.ENOENT),
            ("open", "hello.txt") => throw new FuseException(Errno.EACCES),
            ("create", _) => throw new FuseException(Errno.EROFS),
            _ => ValueTask.CompletedTask,
        };
        using var mount = TestMount.Start(fs);

        Assert.Equal(Errno.ENOENT, Syscalls.StatErrno(mount.In("ghost")));
        Assert.Equal(Errno.EACCES, Syscalls.OpenErrno(mount.In("hello.txt")));
        Assert.Equal(Errno.EROFS, Syscalls.OpenErrno(mount.In("sub/new"), Syscalls.OCreat | Syscalls.OWronly));
        Assert.Equal(0, Syscalls.OpenErrno(mount.In("sub/inner.txt")));
        Assert.DoesNotContain("FuseException", mount.Log);
    }

    [FuseFact]
    public void Any_other_exception_is_logged_and_answered_EIO_and_the_mount_keeps_working()
    {
        var fs = SampleTree();
        bool broken = true;
        fs.Intercept = (operation, name) => broken && operation == "open" && name == "hello.txt"
            ? throw new InvalidOperationException("the handler broke")
            : ValueTask.CompletedTask;
        using var mount = TestMount.Start(fs);

        Assert.Equal(Errno.EIO, Syscalls.OpenErrno(mount.In("hello.txt")));
        Assert.Contains("open: System.InvalidOperationException: the handler broke", mount.Log);
        Assert.Equal("inner", File.ReadAllText(mount.In("sub/inner.txt")));
        broken = false;
        Assert.Equal("hello world\n", File.ReadAllText(mount.In("hello.txt")));
    }

    [FuseFact]
    public void Handlers_that_throw_synchronously_and_unimplemented_operations()
    {
        using var mount = TestMount.Start(new ThrowingFileSystem());

        Assert.Equal(Errno.EACCES, Syscalls.StatErrno(mount.In("denied")));
        Assert.Equal(Errno.EIO, Syscalls.StatErrno(mount.In("boom")));
        Assert.Contains("lookup: System.InvalidOperationException: synchronous boom", mount.Log);
        Assert.Equal(Errno.ENOENT, Syscalls.StatErrno(mount.In("absent")));
        // mkdir has no implementation: the default answers ENOSYS.
        Assert.Equal(Errno.ENOSYS, ErrnoOf(() => Directory.CreateDirectory(mount.In("absent"))));
        Assert.Empty(Directory.GetFileSystemEntries(mount.Path));
    }

    internal static MemoryFileSystem SampleTree()
    {
        var fs = new MemoryFileSystem();
        fs.AddFile("hello.txt", "hello world\n"u8.ToArray());
        fs.AddFile("big.bin", BigFile);
        fs.AddSymlink("link", "hello.txt");
        fs.AddDirectory("sub");
        fs.AddDirectory("many");
        var inner = fs.AddFile("sub/inner.txt", "inner"u8.ToArray());
        inner.AccessTime = new FuseTimestamp(1_600_000_000, 0);
        return fs;
    }

    internal static byte[] RandomBytes(int length, int seed)
    {
        var bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    /// <summary>The errno behind the IOException a .NET file API threw.</summary>
    private static int ErrnoOf(Action action)
    {
        var error = Assert.ThrowsAny<IOException>(action);
        return error.HResult & 0xFFFF;
    }

    private static (long, int) Take2<T>((long Result, int Errno, T Value) result) => (result.Result, result.Errno);

    /// <summary>A read-only filesystem whose handlers are not async: they throw before returning a task.</summary>
    private sealed class ThrowingFileSystem : IFuseFileSystem
    {
        public ValueTask<FuseEntry> LookupAsync(FuseRequestContext context, ulong parent, string name) => name switch
        {
            "denied" => throw new FuseException(Errno.EACCES),
            "boom" => throw new InvalidOperationException("synchronous boom"),
            _ => ValueTask.FromResult(FuseEntry.Negative(TimeSpan.Zero)),
        };

        public void Forget(ulong nodeId, ulong lookupCount)
        {
        }

        public ValueTask<FuseAttributeResult> GetAttributesAsync(FuseRequestContext context, ulong nodeId, ulong? fileHandle) =>
            ValueTask.FromResult(new FuseAttributeResult(new FuseAttributes { Mode = (uint)FuseFileType.Directory | 0b111_101_101, LinkCount = 2 }, TimeSpan.Zero));

        public ValueTask<FuseOpenResult> OpenAsync(FuseRequestContext context, ulong nodeId, int flags) => throw new FuseException(Errno.EISDIR);

        public ValueTask<int> ReadAsync(FuseRequestContext context, ulong nodeId, ulong fileHandle, long offset, Memory<byte> buffer) =>
            throw new FuseException(Errno.EISDIR);

        public ValueTask<FuseOpenResult> OpenDirectoryAsync(FuseRequestContext context, ulong nodeId, int flags) => ValueTask.FromResult(default(FuseOpenResult));

        public ValueTask ReadDirectoryAsync(FuseRequestContext context, ulong nodeId, ulong fileHandle, long offset, FuseDirectoryBuffer buffer) =>
            ValueTask.CompletedTask;

        public ValueTask ReadDirectoryPlusAsync(FuseRequestContext context, ulong nodeId, ulong fileHandle, long offset, FuseDirectoryPlusBuffer buffer) =>
            ValueTask.CompletedTask;
    }
}
