using System.Security.Cryptography;
using System.Text;
using LazyStore.Nix;
using LazyStore.Nix.Compression;
using LazyStore.Nix.Interop;
using LazyStore.Nix.Nar;
using LazyStore.Store.Mount;
using LazyStore.Store.Serving;
using LazyStore.Store.Substituters;
using LazyStore.Tests.Fuse;
using LazyStore.Tests.Support;

namespace LazyStore.Tests.Mount;

/// <summary>Lazy store paths through a real mount: contents, canonical metadata, fetch-on-open, failures.</summary>
[Collection(MountCollection.Name)]
public sealed class LazyTreeTests(MountCaches caches)
{
    private StoreMountHarness Own() => new(caches.OwnCacheDir, [caches.Key.PublicKey]);

    [FuseFact]
    public async Task Lazy_paths_from_our_own_cache_are_identical_to_their_sources_with_canonical_metadata()
    {
        using var mount = Own();
        await mount.RegisterAsync(caches.Tree, caches.Large);
        var store = mount.Mount();

        AssertSameTree(caches.SourceTree, mount.In(caches.Tree));
        AssertSameTree(caches.SourceLarge, mount.In(caches.Large));
        Assert.True(new FileInfo(mount.In(caches.Large, "large.bin")).Length >= MountCaches.LargeFileBytes);
        Assert.Equal(1, mount.NarRequests(caches.Tree));
        Assert.Equal(1, mount.NarRequests(caches.Large));
        Assert.Equal(2, store.Statistics.NarsFetched);
        Assert.True(store.Statistics.BytesDownloaded > 0);
    }

    [RealNixFuseFact]
    public async Task Lazy_paths_from_a_cache_written_by_nix_copy_are_identical_to_their_sources_with_canonical_metadata()
    {
        var nix = caches.RealNix;
        using var mount = new StoreMountHarness(nix.CacheDir, [nix.TrustedKey]);
        await mount.RegisterAsync(nix.Tree, nix.Large);
        mount.Mount();

        AssertSameTree(nix.SourceTree, mount.In(nix.Tree));
        AssertSameTree(nix.SourceLarge, mount.In(nix.Large));
        Assert.Equal(1, mount.NarRequests(nix.Tree));
        Assert.Equal(1, mount.NarRequests(nix.Large));
    }

    [FuseFact]
    public async Task A_static_binary_runs_from_a_lazy_path()
    {
        using var mount = Own();
        await mount.RegisterAsync(caches.Busybox);
        mount.Mount();

        var run = TestMount.Tool(mount.In(caches.Busybox, "bin/busybox"), "echo", "hi from a lazy path");
        Assert.Equal(0, run.ExitCode);
        Assert.Equal("hi from a lazy path\n", run.StdoutText);
        // Through the symlink, busybox sees argv[0] "sh" and runs as the shell.
        var shell = TestMount.Tool(mount.In(caches.Busybox, "bin/sh"), "-c", "echo $((6 * 7))");
        Assert.Equal("42\n", shell.StdoutText);
        Assert.Equal(1, mount.NarRequests(caches.Busybox));
    }

    [FuseFact]
    public async Task Ls_R_and_a_stat_walk_of_listed_paths_download_no_nar_and_ls_l_fetches_it_for_the_link_targets()
    {
        using var mount = Own();
        await mount.RegisterAsync(caches.Tree, caches.Large);
        var store = mount.Mount();

        // Names, types, modes and sizes come from the listings: `ls -R` and lstat of every entry need no NAR.
        var ls = TestMount.Tool("ls", "-R", mount.In(caches.Tree), mount.In(caches.Large));
        var find = TestMount.Tool("find", mount.In(caches.Tree), mount.In(caches.Large), "-printf", "%y %m %s %P\n");

        Assert.True(ls.ExitCode == 0, ls.Stderr);
        Assert.True(find.ExitCode == 0, find.Stderr);
        Assert.Contains("rel-link\n", ls.StdoutText);
        Assert.Equal(0, mount.NarRequests());
        Assert.Equal(0, store.Statistics.NarsFetched);
        Assert.Equal(0, mount.Engine.Nars.DownloadsStarted);
        var walked = find.StdoutText.Split('\n', StringSplitOptions.RemoveEmptyEntries).ToHashSet(StringComparer.Ordinal);
        foreach (var file in Directory.EnumerateFiles(Path.Combine(caches.SourceTree, "sizes")))
            Assert.Contains($"f 444 {new FileInfo(file).Length} sizes/{Path.GetFileName(file)}", walked);
        Assert.Contains("f 555 20 tool.sh", walked);
        Assert.Contains("l 777 9 rel-link", walked);
        Assert.Contains($"f 444 {new FileInfo(Path.Combine(caches.SourceLarge, "large.bin")).Length} large.bin", walked);
        Assert.Contains(walked, line => line.StartsWith("d 555 ", StringComparison.Ordinal) && line.EndsWith(" empty-dir", StringComparison.Ordinal));

        // A link target is what the kernel follows without asking again: it comes from the verified NAR only.
        var withTargets = TestMount.Tool("ls", "-lnR", "--time-style=+%s", mount.In(caches.Tree), mount.In(caches.Large));
        Assert.True(withTargets.ExitCode == 0, withTargets.Stderr);
        var top = LsSections(withTargets.StdoutText)[mount.In(caches.Tree)];
        Assert.Equal("-r-xr-xr-x 1 0 0 20 1", top["tool.sh"]);
        Assert.Equal("lrwxrwxrwx 1 0 0 9 1", top["rel-link -> plain.txt"]);
        Assert.Equal(1, mount.NarRequests(caches.Tree));
        // The large path has no symlink, so its NAR is still not needed.
        Assert.Equal(0, mount.NarRequests(caches.Large));
        Assert.Equal(1, store.Statistics.NarsFetched);
    }

    [FuseFact]
    public async Task Sixteen_concurrent_readers_get_the_right_bytes_from_one_download_per_nar()
    {
        using var mount = Own();
        await mount.RegisterAsync(caches.Tree, caches.Large);
        var store = mount.Mount();
        string[] files =
        [
            "large.bin", "large.bin", "large.bin", "large.bin",
            "sizes/f300001", "sizes/f300001", "sizes/f300001", "sizes/f65537",
            "sizes/f4096", "plain.txt", "plain.txt", "names/日本語", "tool.sh", "sizes/f1", "empty", "sizes/f65536",
        ];
        var expected = files.Select(f => Source(f)).Distinct().ToDictionary(f => f, f => SHA256.HashData(File.ReadAllBytes(f)));
        using var start = new Barrier(files.Length);

        var readers = files.Select(f => Task.Factory.StartNew(() =>
        {
            start.SignalAndWait();
            using var stream = new FileStream(Mounted(f), FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1, FileOptions.None);
            return SHA256.HashData(stream);
        }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default)).ToArray();
        var hashes = await Task.WhenAll(readers).WaitAsync(TimeSpan.FromSeconds(90));

        for (int i = 0; i < files.Length; i++)
            Assert.True(expected[Source(files[i])].AsSpan().SequenceEqual(hashes[i]), $"reader {i} of {files[i]} got other bytes");
        Assert.Equal(1, mount.NarRequests(caches.Tree));
        Assert.Equal(1, mount.NarRequests(caches.Large));
        Assert.Equal(2, store.Statistics.NarsFetched);

        string Source(string f) => Path.Combine(f == "large.bin" ? caches.SourceLarge : caches.SourceTree, f);
        string Mounted(string f) => f == "large.bin" ? mount.In(caches.Large, f) : mount.In(caches.Tree, f);
    }

    [FuseFact]
    public async Task A_corrupt_nar_fails_its_reads_with_EIO_serves_nothing_of_it_and_the_mount_keeps_working()
    {
        using var scratch = new TempDir("lazystore-corrupt-");
        var cache = caches.CopyPlainCache(scratch.Sub("cache"));
        var nar = File.ReadAllBytes(CacheDamage.NarFile(cache, caches.PlainTree));
        var plain = (NarListingRegular)NarListing.Find(NarListing.FromNar(new MemoryStream(nar)), "/plain.txt")!;
        nar[plain.NarOffset!.Value] ^= 0x20;
        CacheDamage.ReplaceNarFile(cache, caches.PlainTree, caches.Key, nar);
        using var mount = new StoreMountHarness(cache, [caches.Key.PublicKey]);
        await mount.RegisterAsync(caches.PlainTree, caches.PlainLate);
        var store = mount.Mount();

        Assert.Equal(Errno.EIO, Errno.OfOpenAndRead(mount.In(caches.PlainTree, "plain.txt")));
        Assert.Equal(Errno.EIO, Errno.OfOpenAndRead(mount.In(caches.PlainTree, "sizes/f4096")));

        // Metadata comes from the listing, so the broken path can still be looked at.
        var stat = Posix.StatAt(Posix.AtFdCwd, mount.In(caches.PlainTree, "plain.txt"));
        Assert.Equal(6, stat.Size);
        Assert.Contains("plain.txt", Directory.GetFileSystemEntries(mount.In(caches.PlainTree)).Select(Path.GetFileName));
        // Other paths of the same cache still read.
        Assert.Equal(File.ReadAllText(Path.Combine(caches.SourceLate, "greeting")), File.ReadAllText(mount.In(caches.PlainLate, "greeting")));
        Assert.True(StoreMountHarness.IsMounted(mount.MountPoint));
        Assert.False(store.Completion.IsCompleted);
        Assert.True(store.Statistics.FailedOpens >= 2, $"FailedOpens = {store.Statistics.FailedOpens}");
        Assert.Contains("NarHash mismatch", mount.Log);
        // Nothing of the corrupt NAR was kept where a later read could find it.
        var record = mount.Engine.Catalog.GetNar(caches.PlainTree.NarHash.ToString());
        Assert.False(record?.IsFetched ?? false);
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(mount.StateDirectory, "tmp")));
        Assert.Single(Directory.EnumerateFiles(Path.Combine(mount.StateDirectory, "nars")));
    }

    [FuseFact]
    public async Task A_failed_fetch_is_answered_from_the_back_off_without_asking_the_cache_again()
    {
        using var mount = Own();
        int failing = 1;
        // Not a transfer failure (a 503 after every attempt would have the cache skipped for a minute): a wrong file.
        mount.Server.Faults = r => Volatile.Read(ref failing) == 1 && r.Path == caches.Late.Url ? new ServerFault.Body([1, 2, 3]) : null;
        await mount.RegisterAsync(caches.Late);
        var store = mount.Mount(new StoreMountOptions { LowerDirectory = mount.LowerDirectory, FailureBackoff = TimeSpan.FromHours(1) });
        var greeting = mount.In(caches.Late, "greeting");

        Assert.Equal(Errno.EIO, Errno.OfOpenAndRead(greeting));
        var asked = mount.NarRequests(caches.Late);
        Assert.True(asked >= 1);
        Volatile.Write(ref failing, 0);

        Assert.Equal(Errno.EIO, Errno.OfOpenAndRead(greeting));
        Assert.Equal(asked, mount.NarRequests(caches.Late));
        Assert.Equal(0, Syscalls.StatErrno(greeting));
        Assert.True(store.Statistics.FailedOpens >= 2, $"FailedOpens = {store.Statistics.FailedOpens}");
        // No NAR arrived, so the mount has fetched none.
        Assert.Equal(0, store.Statistics.NarsFetched);
    }

    [FuseFact]
    public async Task A_failed_fetch_backs_off_its_own_source_only_and_a_path_with_the_same_NAR_from_another_file_is_fetched()
    {
        using var scratch = new TempDir("lazystore-backoff-");
        var cache = scratch.Sub("cache");
        var writer = new BinaryCacheWriter(cache, CompressionMethod.Zstd, caches.Key);
        var broken = writer.AddTree(caches.SourceLate, "late-broken");
        var good = writer.AddTree(caches.SourceLate, "late-good");
        Assert.Equal(broken.NarHash, good.NarHash);
        // The narinfo's URL is not part of what is signed; the NarHash the NAR must match is.
        broken = CacheDamage.RewriteNarInfo(cache, broken, caches.Key, ("URL", "nar/absent.nar.zst"));
        using var mount = new StoreMountHarness(cache, [caches.Key.PublicKey]);
        await mount.RegisterAsync(broken, good);
        mount.Mount(new StoreMountOptions { LowerDirectory = mount.LowerDirectory, FailureBackoff = TimeSpan.FromHours(1) });

        Assert.Equal(Errno.EIO, Errno.OfOpenAndRead(mount.In(broken, "greeting")));
        Assert.Equal(1, mount.NarRequests(broken));
        Assert.Equal("registered while mounted\n", File.ReadAllText(mount.In(good, "greeting")));
        Assert.Equal(1, mount.NarRequests(good));
        // The NAR is verified and stored now: the broken source's back-off no longer stands in the way.
        Assert.Equal("registered while mounted\n", File.ReadAllText(mount.In(broken, "greeting")));
        Assert.Equal(1, mount.NarRequests(broken));
    }

    [FuseFact]
    public async Task A_failed_fetch_is_tried_again_once_the_back_off_is_over_and_then_served()
    {
        using var mount = Own();
        int failing = 1;
        // Not a transfer failure (a 503 after every attempt would have the cache skipped for a minute): a wrong file.
        mount.Server.Faults = r => Volatile.Read(ref failing) == 1 && r.Path == caches.Late.Url ? new ServerFault.Body([1, 2, 3]) : null;
        await mount.RegisterAsync(caches.Late);
        var store = mount.Mount(new StoreMountOptions { LowerDirectory = mount.LowerDirectory, FailureBackoff = TimeSpan.Zero });
        var greeting = mount.In(caches.Late, "greeting");

        Assert.Equal(Errno.EIO, Errno.OfOpenAndRead(greeting));
        var asked = mount.NarRequests(caches.Late);
        Volatile.Write(ref failing, 0);

        Assert.Equal("registered while mounted\n", File.ReadAllText(greeting));
        Assert.Equal(asked + 1, mount.NarRequests(caches.Late));
        Assert.True(store.Statistics.FailedOpens >= 1, $"FailedOpens = {store.Statistics.FailedOpens}");
    }

    [FuseFact]
    public async Task A_path_registered_by_another_engine_while_mounted_appears_without_a_remount()
    {
        using var mount = Own();
        await mount.RegisterAsync(caches.Tree);
        mount.Mount();
        var late = mount.In(caches.Late);
        Assert.Equal(Errno.ENOENT, Syscalls.StatErrno(late));
        Assert.DoesNotContain(caches.Late.StorePath.BaseName, RootNames(mount));

        using (var other = mount.OpenSecondEngine())
        {
            // Known to the catalog is not enough: only registration puts a path in the mount.
            await other.GetPathAsync(caches.Late.StorePath, register: false, CancellationToken.None);
            Assert.Equal(Errno.ENOENT, Syscalls.StatErrno(late));
            await other.GetPathAsync(caches.Late.StorePath, register: true, CancellationToken.None);
        }

        // The kernel lists the root again rather than keeping its listing, and then the name resolves.
        Assert.Contains(caches.Late.StorePath.BaseName, RootNames(mount));
        Assert.Equal(0, Syscalls.StatErrno(late));
        Assert.Equal("registered while mounted\n", File.ReadAllText(Path.Combine(late, "greeting")));
    }

    [FuseFact]
    public async Task Every_change_to_a_lazy_path_but_deletion_fails_with_EROFS()
    {
        using var mount = Own();
        await mount.RegisterAsync(caches.Tree);
        mount.Mount();
        string Lazy(string relative) => mount.In(caches.Tree, relative);

        var outcomes = new (string What, int Errno)[]
        {
            ("create a file", Errno.OfOpen(Lazy("new-file"), Posix.OWriteOnly | Posix.OCreate)),
            ("create a file in a subdirectory", Errno.OfOpen(Lazy("empty-dir/new-file"), Posix.OWriteOnly | Posix.OCreate | Posix.OExclusive)),
            ("open a file for writing", Errno.OfOpen(Lazy("plain.txt"), Posix.OWriteOnly)),
            ("open a file for reading and writing", Errno.OfOpen(Lazy("plain.txt"), Posix.OReadWrite)),
            ("truncate a file", Errno.Of(() => Posix.Truncate(Lazy("plain.txt"), 0))),
            ("chmod a file", Errno.Of(() => Posix.ChmodAt(Posix.AtFdCwd, Lazy("plain.txt"), 0b111_111_111))),
            ("chmod the path itself", Errno.Of(() => Posix.ChmodAt(Posix.AtFdCwd, mount.In(caches.Tree), 0b111_111_111))),
            ("chmod a directory beyond u+w", Errno.Of(() => Posix.ChmodAt(Posix.AtFdCwd, Lazy("empty-dir"), 0b111_101_111))),
            ("chown a file", Errno.Of(() => Posix.ChownAt(Posix.AtFdCwd, Lazy("plain.txt"), 1, 1, 0))),
            ("set times", Errno.Of(() => Posix.SetTimesAt(Posix.AtFdCwd, Lazy("plain.txt"), new PosixTime(5, 0), new PosixTime(5, 0), 0))),
            ("mkdir", Errno.Of(() => Posix.MakeDirectoryAt(Posix.AtFdCwd, Lazy("new-dir"), 0b111_101_101))),
            ("symlink", Errno.Of(() => Posix.SymlinkAt("plain.txt", Posix.AtFdCwd, Lazy("new-link")))),
            ("hard link", Errno.Of(() => Posix.LinkAt(Posix.AtFdCwd, Lazy("plain.txt"), Posix.AtFdCwd, Lazy("new-hard-link"), 0))),
            ("rename within the path", Errno.Of(() => Posix.RenameAt(Posix.AtFdCwd, Lazy("plain.txt"), Posix.AtFdCwd, Lazy("renamed.txt"), 0))),
            ("rename onto another entry", Errno.Of(() => Posix.RenameAt(Posix.AtFdCwd, Lazy("plain.txt"), Posix.AtFdCwd, Lazy("empty"), 0))),
            ("rename the store path itself", Errno.Of(() => Posix.RenameAt(Posix.AtFdCwd, mount.In(caches.Tree), Posix.AtFdCwd, Path.Combine(mount.MountPoint, "moved"), 0))),
            ("set an xattr", Errno.Of(() => Posix.SetExtendedAttribute(Lazy("plain.txt"), "user.test", "x"u8, 0))),
        };

        var wrong = outcomes.Where(o => o.Errno != Errno.EROFS).Select(o => $"{o.What}: errno {o.Errno}").ToList();
        Assert.True(wrong.Count == 0, "expected EROFS (30), got: " + string.Join("; ", wrong));
        // A lazy file has no lower inode to link to: EPERM, on which Nix copies instead.
        Assert.Equal(Errno.EPERM, Errno.Of(() => Posix.LinkAt(Posix.AtFdCwd, Lazy("plain.txt"), Posix.AtFdCwd, Path.Combine(mount.MountPoint, "linked"), 0)));
        Assert.Equal("hello\n", File.ReadAllText(Lazy("plain.txt")));
        AssertSameTree(caches.SourceTree, mount.In(caches.Tree));
    }

    [FuseFact]
    public async Task On_demand_an_unregistered_path_a_cache_has_is_found_by_name_and_an_unknown_one_is_ENOENT()
    {
        var absent = StorePath.FromBaseName(new string('0', 32) + "-absent").BaseName;
        using (var registeredOnly = Own())
        {
            registeredOnly.Mount(new StoreMountOptions { LowerDirectory = registeredOnly.LowerDirectory, OnDemand = false });
            Assert.Equal(Errno.ENOENT, Syscalls.StatErrno(registeredOnly.In(caches.Late)));
            Assert.Equal(Errno.ENOENT, Syscalls.StatErrno(Path.Combine(registeredOnly.MountPoint, absent)));
        }

        using var onDemand = Own();
        onDemand.Mount(new StoreMountOptions { LowerDirectory = onDemand.LowerDirectory, OnDemand = true });
        Assert.DoesNotContain(caches.Late.StorePath.BaseName, RootNames(onDemand));
        Assert.Equal(0, Syscalls.StatErrno(onDemand.In(caches.Late)));
        Assert.Equal("registered while mounted\n", File.ReadAllText(onDemand.In(caches.Late, "greeting")));
        Assert.Equal(Errno.ENOENT, Syscalls.StatErrno(Path.Combine(onDemand.MountPoint, absent)));
        Assert.Equal(Errno.ENOENT, Syscalls.StatErrno(Path.Combine(onDemand.MountPoint, "not-a-store-path")));
        Assert.Equal(1, onDemand.NarRequests(caches.Late));
    }

    internal static string[] RootNames(StoreMountHarness mount) =>
        Directory.GetFileSystemEntries(mount.MountPoint).Select(p => Path.GetFileName(p)).ToArray();

    /// <summary>
    /// GNU diff (symlinks compared as links) between a source tree and its mounted lazy path, then every
    /// entry's metadata against Nix's canonical form: owner root, mtime 1, 0444/0555 files by the
    /// executable bit, 0555 directories, 0777 symlinks, sizes as in the source.
    /// </summary>
    internal static void AssertSameTree(string source, string mounted)
    {
        var diff = TestMount.Tool("diff", "-r", "--no-dereference", source, mounted);
        Assert.True(diff.ExitCode == 0, $"diff -r --no-dereference {source} {mounted} exited with {diff.ExitCode}:\n{diff.StdoutText}{diff.Stderr}");

        var options = new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0, ReturnSpecialDirectories = false };
        var entries = Directory.EnumerateFileSystemEntries(source, "*", options).Select(e => Path.GetRelativePath(source, e)).Prepend("").ToList();
        var problems = new StringBuilder();
        foreach (var relative in entries)
        {
            var expected = Posix.StatAt(Posix.AtFdCwd, Path.Combine(source, relative));
            var actual = Posix.StatAt(Posix.AtFdCwd, relative.Length == 0 ? mounted : Path.Combine(mounted, relative));
            uint permissions = expected.Type switch
            {
                PosixFileType.Directory => 0b101_101_101,
                PosixFileType.Symlink => 0b111_111_111,
                _ => (expected.Mode & 0b001_000_000) != 0 ? 0b101_101_101u : 0b100_100_100u,
            };
            var want = (Type: expected.Type, Permissions: permissions, Uid: 0u, Gid: 0u, Mtime: 1L, Size: expected.Type == PosixFileType.Directory ? -1 : expected.Size);
            var got = (Type: actual.Type, Permissions: actual.Mode & 0xFFF, Uid: actual.Uid, Gid: actual.Gid, Mtime: actual.Modification.Seconds, Size: actual.Type == PosixFileType.Directory ? -1 : actual.Size);
            if (want != got)
                problems.AppendLine($"'{relative}': expected {want}, got {got}");
        }
        Assert.True(problems.Length == 0, problems.ToString());
    }

    /// <summary>Splits <c>ls -lnR --time-style=+%s</c> output into directories, each mapping an entry name to "mode links uid gid size mtime".</summary>
    private static Dictionary<string, Dictionary<string, string>> LsSections(string output)
    {
        var sections = new Dictionary<string, Dictionary<string, string>>(StringComparer.Ordinal);
        Dictionary<string, string>? current = null;
        foreach (var line in output.Split('\n'))
        {
            if (line.EndsWith(':') && line.StartsWith('/'))
            {
                sections[line[..^1]] = current = new Dictionary<string, string>(StringComparer.Ordinal);
                continue;
            }
            var fields = line.Split(' ', 7, StringSplitOptions.RemoveEmptyEntries);
            if (current is null || fields.Length < 7 || line.StartsWith("total ", StringComparison.Ordinal))
                continue;
            current[fields[6]] = string.Join(' ', fields[..6]);
        }
        return sections;
    }
}
