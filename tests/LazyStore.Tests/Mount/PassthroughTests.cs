using System.Security.Cryptography;
using System.Text;
using LazyStore.Nix.Interop;
using LazyStore.Store.Mount;
using LazyStore.Tests.Fuse;
using LazyStore.Tests.Support;

namespace LazyStore.Tests.Mount;

/// <summary>The lower directory through the mount: every write operation behaves as on the directory itself.</summary>
[Collection(MountCollection.Name)]
public sealed class PassthroughTests(MountCaches caches)
{
    private StoreMountHarness Own() => new(caches.OwnCacheDir, [caches.Key.PublicKey]);

    [FuseFact]
    public async Task A_sequence_of_writes_through_the_mount_ends_as_it_does_on_a_plain_directory_and_lands_in_the_lower_one()
    {
        using var mount = Own();
        var plain = mount.Scratch("plain");
        var plainObservations = RunSequence(plain);
        var expected = Snapshot(plain);
        Assert.Contains("work/renamed Regular 604 1234:5678 links=2 mtime=1.000000000 size=12", string.Join("\n", expected));

        await mount.RegisterAsync(caches.Tree);
        mount.Mount();
        var mountedObservations = RunSequence(mount.MountPoint);
        var throughMount = Snapshot(mount.MountPoint);
        await mount.UnmountAsync();

        Assert.Equal(plainObservations, mountedObservations);
        Assert.Equal(expected, throughMount);
        Assert.Equal(["work"], Directory.GetFileSystemEntries(mount.LowerDirectory).Select(p => Path.GetFileName(p)));
        Assert.Equal(expected, Snapshot(mount.LowerDirectory));
        Assert.Empty(StoreMountHarness.MountsUnder(mount.MountPoint));
        Assert.Equal(0, mount.NarRequests());
    }

    [FuseFact]
    public async Task Concurrent_listings_of_a_changing_lower_directory_each_show_every_unchanged_entry_once()
    {
        using var mount = Own();
        var lower = Path.Combine(mount.LowerDirectory, "big");
        Directory.CreateDirectory(lower);
        // Names long enough that a listing takes many readdir replies, so listings continue from cookies.
        var original = Enumerable.Range(0, 400).Select(i => $"original-{i:D3}-{new string('o', 80)}").ToList();
        foreach (var name in original)
            File.WriteAllText(Path.Combine(lower, name), "");
        await mount.RegisterAsync(caches.Tree);
        mount.Mount();
        var big = Path.Combine(mount.MountPoint, "big");

        using var stop = new CancellationTokenSource();
        var changer = Task.Factory.StartNew(
            () =>
            {
                for (int i = 0; !stop.IsCancellationRequested; i++)
                {
                    // Alternately through the mount and behind the kernel's back, in the lower directory.
                    File.WriteAllText(Path.Combine(i % 2 == 0 ? big : lower, $"added-{i:D5}"), "");
                    File.Delete(Path.Combine(i % 2 == 0 ? big : lower, $"added-{i:D5}"));
                }
            },
            TaskCreationOptions.LongRunning);
        var listers = Enumerable.Range(0, 6).Select(_ => Task.Factory.StartNew(
            () =>
            {
                for (int round = 0; round < 20; round++)
                {
                    var names = Directory.GetFileSystemEntries(big).Select(p => Path.GetFileName(p)!).ToList();
                    var unchanged = names.Where(n => n.StartsWith("original-", StringComparison.Ordinal)).ToList();
                    Assert.Equal(original, unchanged.Order(StringComparer.Ordinal));
                    Assert.Equal(names.Count, names.Distinct(StringComparer.Ordinal).Count());
                }
            },
            TaskCreationOptions.LongRunning)).ToArray();
        try
        {
            await Task.WhenAll(listers).WaitAsync(TimeSpan.FromSeconds(120));
        }
        finally
        {
            stop.Cancel();
            await changer.WaitAsync(TimeSpan.FromSeconds(60));
        }
        Assert.Equal(original, Directory.GetFileSystemEntries(big).Select(p => Path.GetFileName(p)!).Order(StringComparer.Ordinal));
    }

    [FuseFact]
    public async Task The_root_lists_lower_entries_and_registered_paths_and_a_lower_entry_shadows_a_lazy_one()
    {
        using var mount = Own();
        File.WriteAllText(Path.Combine(mount.LowerDirectory, "lower-file"), "lower\n");
        Directory.CreateDirectory(Path.Combine(mount.LowerDirectory, "lower-dir"));
        var shadowing = Path.Combine(mount.LowerDirectory, caches.Tree.StorePath.BaseName);
        Directory.CreateDirectory(shadowing);
        File.WriteAllText(Path.Combine(shadowing, "marker"), "the real one\n");
        await mount.RegisterAsync(caches.Tree, caches.Late);
        mount.Mount();

        var names = Directory.GetFileSystemEntries(mount.MountPoint).Select(p => Path.GetFileName(p)).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(
            new[] { "lower-dir", "lower-file", caches.Tree.StorePath.BaseName, caches.Late.StorePath.BaseName }.Order(StringComparer.Ordinal),
            names);
        Assert.Equal("lower\n", File.ReadAllText(Path.Combine(mount.MountPoint, "lower-file")));
        Assert.Equal("the real one\n", File.ReadAllText(mount.In(caches.Tree, "marker")));
        Assert.Equal(Errno.ENOENT, Syscalls.StatErrno(mount.In(caches.Tree, "plain.txt")));
        // The shadowing entry is the lower directory's, so it is writable.
        File.WriteAllText(mount.In(caches.Tree, "added"), "added\n");
        Assert.Equal("added\n", File.ReadAllText(Path.Combine(shadowing, "added")));
        Assert.Equal("registered while mounted\n", File.ReadAllText(mount.In(caches.Late, "greeting")));
        Assert.Equal(0, mount.NarRequests(caches.Tree));

        var fs = Errno.StatFileSystem(mount.MountPoint);
        Assert.True(fs.Blocks > 0 && fs.BlockSize > 0 && fs.NameMax >= 255, $"statfs of the mount: {fs}");
        var lazyFs = Errno.StatFileSystem(mount.In(caches.Late));
        Assert.True(lazyFs.NameMax >= 255, $"statfs inside a lazy path: {lazyFs}");
    }

    [FuseFact]
    public async Task Directories_longer_than_one_readdir_reply_list_every_entry_once()
    {
        using var mount = Own();
        var lowerNames = Enumerable.Range(0, 3000).Select(i => $"lower-entry-with-a-longish-name-{i:D5}").ToList();
        foreach (var name in lowerNames)
            File.WriteAllText(Path.Combine(mount.LowerDirectory, name), "");
        await mount.RegisterAsync(caches.Late, caches.Many);
        mount.Mount();

        var root = Directory.GetFileSystemEntries(mount.MountPoint).Select(p => Path.GetFileName(p)).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(lowerNames.Append(caches.Late.StorePath.BaseName).Append(caches.Many.StorePath.BaseName).Order(StringComparer.Ordinal), root);
        var many = Directory.GetFileSystemEntries(mount.In(caches.Many)).Select(p => Path.GetFileName(p)).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(Directory.GetFileSystemEntries(caches.SourceMany).Select(p => Path.GetFileName(p)).Order(StringComparer.Ordinal), many);
        var find = TestMount.Tool("find", mount.MountPoint, "-mindepth", "1", "-maxdepth", "2", "-printf", "%y %P\n");
        Assert.True(find.ExitCode == 0, find.Stderr);
        var found = find.StdoutText.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(3000 + 2 + 1 + MountCaches.ManyEntries, found.Length);
        Assert.Equal(found.Length, found.Distinct().Count());
        Assert.Equal(0, mount.NarRequests());
    }

    [FuseFact]
    public async Task Cp_a_of_a_lazy_path_into_the_lower_directory_through_the_mount_copies_it_exactly()
    {
        using var mount = Own();
        await mount.RegisterAsync(caches.Tree);
        mount.Mount();

        var cp = TestMount.Tool("cp", "-a", mount.In(caches.Tree), Path.Combine(mount.MountPoint, "copy"));

        Assert.True(cp.ExitCode == 0, cp.Stderr);
        var diff = TestMount.Tool("diff", "-r", "--no-dereference", caches.SourceTree, Path.Combine(mount.LowerDirectory, "copy"));
        Assert.True(diff.ExitCode == 0, diff.StdoutText + diff.Stderr);
        var copied = Posix.StatAt(Posix.AtFdCwd, Path.Combine(mount.LowerDirectory, "copy", "tool.sh"));
        Assert.Equal((0b101_101_101u, 1L), (copied.Mode & 0xFFF, copied.Modification.Seconds));
        Assert.Equal(1, mount.NarRequests(caches.Tree));
    }

    [FuseFact]
    public async Task Mounted_over_the_lower_directory_itself_its_files_stay_readable_and_writable_and_new_ones_stay_there()
    {
        using var mount = Own();
        var covered = mount.MountPoint;
        File.WriteAllText(Path.Combine(covered, "existing"), "before\n");
        Directory.CreateDirectory(Path.Combine(covered, "dir"));
        File.WriteAllText(Path.Combine(covered, "dir", "inner"), "inner\n");
        await mount.RegisterAsync(caches.Late);
        mount.Mount(new StoreMountOptions { LowerDirectory = null });

        Assert.True(StoreMountHarness.IsMounted(covered));
        Assert.Equal("before\n", File.ReadAllText(Path.Combine(covered, "existing")));
        Assert.Equal("inner\n", File.ReadAllText(Path.Combine(covered, "dir", "inner")));
        File.AppendAllText(Path.Combine(covered, "existing"), "after\n");
        File.WriteAllText(Path.Combine(covered, "dir", "new"), "new\n");
        Posix.MakeDirectoryAt(Posix.AtFdCwd, Path.Combine(covered, "made"), 0b111_101_101);
        Assert.Equal("registered while mounted\n", File.ReadAllText(mount.In(caches.Late, "greeting")));
        Assert.Equal("before\nafter\n", File.ReadAllText(Path.Combine(covered, "existing")));
        await mount.UnmountAsync();

        Assert.False(StoreMountHarness.IsMounted(covered));
        Assert.Equal(["dir", "existing", "made"], Directory.GetFileSystemEntries(covered).Select(p => Path.GetFileName(p)).Order(StringComparer.Ordinal));
        Assert.Equal("before\nafter\n", File.ReadAllText(Path.Combine(covered, "existing")));
        Assert.Equal("new\n", File.ReadAllText(Path.Combine(covered, "dir", "new")));
    }

    /// <summary>
    /// Creates, writes, appends, renames, links, changes modes, owners, times and sizes, makes and removes
    /// entries and extended attributes under <c>root/work</c>, returning what it read back on the way.
    /// </summary>
    private static List<string> RunSequence(string root)
    {
        var seen = new List<string>();
        string At(string relative) => Path.Combine(root, "work", relative);
        Posix.MakeDirectoryAt(Posix.AtFdCwd, Path.Combine(root, "work"), 0b111_101_101);
        Posix.MakeDirectoryAt(Posix.AtFdCwd, At("sub"), 0b111_000_000);

        Posix.OpenAt(Posix.AtFdCwd, At("file"), Posix.OWriteOnly | Posix.OCreate | Posix.OExclusive, 0b110_100_000).Dispose();
        File.WriteAllText(At("file"), "hello");
        Errno.AppendAndSync(At("file"), " world\n"u8);
        seen.Add(File.ReadAllText(At("file")));
        Posix.RenameAt(Posix.AtFdCwd, At("file"), Posix.AtFdCwd, At("renamed"), 0);
        Posix.LinkAt(Posix.AtFdCwd, At("renamed"), Posix.AtFdCwd, At("hard"), 0);
        Posix.SymlinkAt("renamed", Posix.AtFdCwd, At("sym"));
        Posix.SymlinkAt("../nowhere", Posix.AtFdCwd, At("dangling"));
        seen.Add(Encoding.UTF8.GetString(Posix.ReadLinkAt(Posix.AtFdCwd, At("sym"))));
        Posix.ChmodAt(Posix.AtFdCwd, At("renamed"), 0b110_000_100);
        Posix.ChownAt(Posix.AtFdCwd, At("renamed"), 1234, 5678, 0);
        Posix.ChownAt(Posix.AtFdCwd, At("dangling"), 4321, 8765, Posix.AtSymlinkNoFollow);

        File.WriteAllBytes(At("trunc"), FixtureTrees.RealBytes(10_000));
        Posix.Truncate(At("trunc"), 100);
        using (var extend = new FileStream(At("trunc"), FileMode.Open, FileAccess.ReadWrite))
            extend.SetLength(5000);
        seen.Add(Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(At("trunc")))));

        Posix.MakeDirectoryAt(Posix.AtFdCwd, At("gone"), 0b111_101_101);
        Posix.UnlinkAt(Posix.AtFdCwd, At("gone"), directory: true);
        File.WriteAllText(At("deleted"), "soon gone");
        Posix.UnlinkAt(Posix.AtFdCwd, At("deleted"), directory: false);
        Posix.RenameAt(Posix.AtFdCwd, At("sub"), Posix.AtFdCwd, At("moved-sub"), 0);
        File.WriteAllText(At("left"), "left");
        File.WriteAllText(At("right"), "right");
        seen.Add("noreplace errno " + Syscalls.RenameErrno(At("left"), At("right"), Syscalls.RenameNoReplace));
        seen.Add("exchange errno " + Syscalls.RenameErrno(At("left"), At("right"), Syscalls.RenameExchange));
        seen.Add(File.ReadAllText(At("left")));
        File.WriteAllText(At("moved-sub/inside"), "inside\n");

        Posix.SetExtendedAttribute(At("renamed"), "user.one", "1"u8, 0);
        Posix.SetExtendedAttribute(At("renamed"), "user.two", "two"u8, 0);
        var value = new byte[16];
        seen.Add(Encoding.UTF8.GetString(value, 0, Posix.GetExtendedAttribute(At("renamed"), "user.two", value)));
        seen.Add(string.Join(",", XattrNames(At("renamed"))));
        Posix.RemoveExtendedAttribute(At("renamed"), "user.two");
        seen.Add(string.Join(",", XattrNames(At("renamed"))));

        // Times last: every change above moves the mtime of what it touched.
        Posix.SetTimesAt(Posix.AtFdCwd, At("renamed"), new PosixTime(2, 0), new PosixTime(1, 0), 0);
        Posix.SetTimesAt(Posix.AtFdCwd, At("trunc"), new PosixTime(0, (uint)Posix.UtimeOmit), new PosixTime(1_700_000_000, 123_456_789), 0);
        Posix.SetTimesAt(Posix.AtFdCwd, At("dangling"), new PosixTime(3, 0), new PosixTime(3, 0), Posix.AtSymlinkNoFollow);
        Posix.SetTimesAt(Posix.AtFdCwd, At("moved-sub"), new PosixTime(1, 0), new PosixTime(1, 0), 0);
        Posix.SetTimesAt(Posix.AtFdCwd, Path.Combine(root, "work"), new PosixTime(1, 0), new PosixTime(1, 0), 0);
        return seen;
    }

    /// <summary>Entries whose mtime <see cref="RunSequence"/> set explicitly (others moved with the clock).</summary>
    private static readonly HashSet<string> TimedEntries = new(StringComparer.Ordinal) { "work", "work/renamed", "work/hard", "work/trunc", "work/dangling", "work/moved-sub" };

    /// <summary>
    /// Every entry of <c>root/work</c> (itself included) as one line: type, mode, owner, link count,
    /// explicit mtime, size and contents or target, user xattrs.
    /// </summary>
    private static List<string> Snapshot(string root)
    {
        var lines = new List<string>();
        var options = new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0 };
        var work = Path.Combine(root, "work");
        foreach (var path in Directory.EnumerateFileSystemEntries(work, "*", options).Prepend(work))
        {
            var relative = Path.GetRelativePath(root, path);
            var st = Posix.StatAt(Posix.AtFdCwd, path);
            var line = new StringBuilder($"{relative} {st.Type} {Convert.ToString(st.Mode & 0xFFF, 8)} {st.Uid}:{st.Gid} links={st.LinkCount}");
            if (TimedEntries.Contains(relative))
                line.Append($" mtime={st.Modification.Seconds}.{st.Modification.Nanoseconds:D9}");
            switch (st.Type)
            {
                case PosixFileType.Regular:
                    line.Append($" size={st.Size} sha256={Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(path)))}");
                    break;
                case PosixFileType.Symlink:
                    line.Append($" -> {Encoding.UTF8.GetString(Posix.ReadLinkAt(Posix.AtFdCwd, path))}");
                    break;
            }
            if (st.Type != PosixFileType.Symlink)
            {
                foreach (var name in XattrNames(path))
                {
                    var value = new byte[256];
                    line.Append($" {name}={Encoding.UTF8.GetString(value, 0, Posix.GetExtendedAttribute(path, name, value))}");
                }
            }
            lines.Add(line.ToString());
        }
        lines.Sort(StringComparer.Ordinal);
        return lines;
    }

    private static IEnumerable<string> XattrNames(string path)
    {
        var buffer = new byte[4096];
        var n = Posix.ListExtendedAttributes(path, buffer);
        return Encoding.UTF8.GetString(buffer, 0, n).Split('\0', StringSplitOptions.RemoveEmptyEntries)
            .Where(name => name.StartsWith("user.", StringComparison.Ordinal)).Order(StringComparer.Ordinal);
    }
}
