using System.ComponentModel;
using System.Diagnostics;
using System.Text;
using LazyStore.Nix;
using LazyStore.Nix.Compression;
using LazyStore.Nix.Interop;
using LazyStore.Nix.Nar;
using LazyStore.Store.Catalog;
using LazyStore.Store.Mount;
using LazyStore.Store.Substituters;
using LazyStore.Tests.Fuse;
using LazyStore.Tests.Support;

namespace LazyStore.Tests.Mount;

/// <summary>
/// A cache whose unsigned <c>.ls</c> listing lies about a path that its signed narinfo and NAR describe
/// honestly. Before the NAR is verified the listing feeds only what cannot be acted on without coming back
/// to the mount (stat, readdir, lookups); a symlink's target, an open and an exec wait for the verified
/// NAR. Afterwards the mount serves the NAR's tree only, the kernel forgets what it cached from the
/// listing, and the disagreement is logged once.
/// </summary>
[Collection(MountCollection.Name)]
public sealed class ListingTrustTests(MountCaches caches) : IDisposable
{
    private const int EACCES = 13;
    private const int EINVAL = 22;
    private const string HonestTool = "#!/bin/sh\necho honest tool\n";
    private const string HonestPython = "print('honest')\n";

    private readonly TempDir _dir = new("lazystore-listing-trust-");

    /// <summary>The honest tree: bin/tool (an executable script), lib/data.txt, link → lib/data.txt, tool.py.</summary>
    private string Source
    {
        get
        {
            var root = _dir.Sub("source");
            if (!Directory.Exists(root))
            {
                Directory.CreateDirectory(Path.Combine(root, "bin"));
                Directory.CreateDirectory(Path.Combine(root, "lib"));
                var tool = Path.Combine(root, "bin", "tool");
                File.WriteAllText(tool, HonestTool);
                File.SetUnixFileMode(tool, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
                File.WriteAllText(Path.Combine(root, "lib", "data.txt"), "data\n");
                File.CreateSymbolicLink(Path.Combine(root, "link"), "lib/data.txt");
                File.WriteAllText(Path.Combine(root, "tool.py"), HonestPython);
            }
            return root;
        }
    }

    [FuseFact]
    public async Task A_file_listed_as_a_symlink_to_an_outside_script_never_runs_it()
    {
        var attacker = Path.Combine(Outside(), "attacker.sh");
        File.WriteAllText(attacker, "#!/bin/sh\necho attacker\n");
        File.SetUnixFileMode(attacker, UnixFileMode.UserRead | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
        using var lying = await MountLyingAsync(root => Replace(root, "bin/tool", new NarListingSymlink(attacker)));
        var tool = lying.In("bin/tool");

        // Before the NAR: lstat may show the listing's word, but its target is not served from it.
        Assert.Equal(PosixFileType.Symlink, Posix.StatAt(Posix.AtFdCwd, tool).Type);
        Assert.Equal(0, lying.Mount.NarRequests());
        var run = TestMount.Tool(tool);
        Assert.Equal("honest tool\n", run.StdoutText);
        Assert.Equal(1, lying.Mount.NarRequests());

        await lying.SettledAsync();
        Assert.Equal(PosixFileType.Regular, Posix.StatAt(Posix.AtFdCwd, tool).Type);
        Assert.Equal(EINVAL, Errno.Of(() => Posix.ReadLinkAt(Posix.AtFdCwd, tool)));
        Assert.Equal("honest tool\n", TestMount.Tool(tool).StdoutText);
        lying.AssertOnlyTheNarIsServed($"bin/tool is listed as a symlink to '{attacker}', the NAR has an executable file of {HonestTool.Length} bytes");

        // The catalog serves the verified tree too, to `lazystore ls` as to the mount.
        var ls = CliRunner.Run("ls", "-lR", "--substituter", lying.Mount.Server.BaseUri.ToString(), "--trusted-public-key",
            caches.Key.PublicKey.ToString(), "--state-dir", lying.Mount.StateDirectory, lying.Info.StorePath.ToFullPath());
        Assert.True(ls.ExitCode == 0, ls.Stderr);
        Assert.Matches(@"(?m)^-r-xr-xr-x +\d+ +\S*tool$", ls.StdoutText);
        Assert.DoesNotContain(attacker, ls.StdoutText);
    }

    [FuseFact]
    public async Task A_file_listed_as_a_symlink_to_an_absolute_path_never_reads_that_file()
    {
        var secret = Path.Combine(Outside(), "shadow");
        File.WriteAllText(secret, "root's secret\n");
        using var lying = await MountLyingAsync(root => Replace(root, "tool.py", new NarListingSymlink(secret)));
        var python = lying.In("tool.py");

        Assert.Equal(PosixFileType.Symlink, Posix.StatAt(Posix.AtFdCwd, python).Type);
        Assert.Equal(HonestPython, File.ReadAllText(python));
        Assert.Equal(1, lying.Mount.NarRequests());

        await lying.SettledAsync();
        Assert.Equal(PosixFileType.Regular, Posix.StatAt(Posix.AtFdCwd, python).Type);
        Assert.Equal(EINVAL, Errno.Of(() => Posix.ReadLinkAt(Posix.AtFdCwd, python)));
        lying.AssertOnlyTheNarIsServed($"tool.py is listed as a symlink to '{secret}', the NAR has a regular file of {HonestPython.Length} bytes");
    }

    [FuseFact]
    public async Task A_path_listed_as_a_symlink_to_the_root_directory_is_never_followed_there()
    {
        using var lying = await MountLyingAsync(_ => new NarListingSymlink("/"));
        var path = lying.In("");

        Assert.Equal(PosixFileType.Symlink, Posix.StatAt(Posix.AtFdCwd, path).Type);
        Assert.Equal(0, lying.Mount.NarRequests());
        // Followed, the link would lead to the machine's own /etc.
        Assert.False(Directory.Exists(Path.Combine(path, "etc")));
        Assert.Equal(1, lying.Mount.NarRequests());

        await lying.SettledAsync();
        Assert.Equal(PosixFileType.Directory, Posix.StatAt(Posix.AtFdCwd, path).Type);
        Assert.Equal(EINVAL, Errno.Of(() => Posix.ReadLinkAt(Posix.AtFdCwd, path)));
        Assert.Contains(lying.Info.StorePath.BaseName, LazyTreeTests.RootNames(lying.Mount));
        lying.AssertOnlyTheNarIsServed("is listed as a symlink to '/', the NAR has a directory");
    }

    [FuseFact]
    public async Task A_directory_listed_as_a_file_is_the_NARs_directory_once_opened()
    {
        using var lying = await MountLyingAsync(root => Replace(root, "lib", new NarListingRegular(5, false, null)));
        var lib = lying.In("lib");

        var listed = Posix.StatAt(Posix.AtFdCwd, lib);
        Assert.Equal((PosixFileType.Regular, 5L), (listed.Type, listed.Size));
        // Opening it needs the verified NAR, which has a directory there.
        Assert.Equal(Errno.EISDIR, Errno.OfOpenAndRead(lib));
        Assert.Equal(1, lying.Mount.NarRequests());

        await lying.SettledAsync();
        Assert.Equal(PosixFileType.Directory, Posix.StatAt(Posix.AtFdCwd, lib).Type);
        Assert.Equal("data\n", File.ReadAllText(Path.Combine(lib, "data.txt")));
        lying.AssertOnlyTheNarIsServed("lib is listed as a regular file of 5 bytes, the NAR has a directory");
    }

    [FuseFact]
    public async Task A_file_listed_as_a_directory_is_the_NARs_file_once_opened()
    {
        using var lying = await MountLyingAsync(root =>
        {
            var fake = new NarListingDirectory();
            fake.Entries.Add("inside", new NarListingRegular(1, false, null));
            return Replace(root, "tool.py", fake);
        });
        var python = lying.In("tool.py");

        Assert.Equal(PosixFileType.Directory, Posix.StatAt(Posix.AtFdCwd, python).Type);
        Assert.Equal(["inside"], LazyNames(python));
        Assert.Equal(0, lying.Mount.NarRequests());
        Assert.Equal(Errno.ENOTDIR, Errno.OfOpenAndRead(Path.Combine(python, "inside")));
        Assert.Equal(1, lying.Mount.NarRequests());

        await lying.SettledAsync();
        Assert.Equal(PosixFileType.Regular, Posix.StatAt(Posix.AtFdCwd, python).Type);
        Assert.Equal(HonestPython, File.ReadAllText(python));
        lying.AssertOnlyTheNarIsServed($"tool.py is listed as a directory, the NAR has a regular file of {HonestPython.Length} bytes");
    }

    [FuseFact]
    public async Task A_wrong_size_is_never_what_a_read_gets()
    {
        using var lying = await MountLyingAsync(root => Replace(root, "tool.py", new NarListingRegular(3, false, null)));
        var python = lying.In("tool.py");

        Assert.Equal(3, Posix.StatAt(Posix.AtFdCwd, python).Size);
        Assert.Equal(HonestPython, File.ReadAllText(python));
        Assert.Equal(1, lying.Mount.NarRequests());

        await lying.SettledAsync();
        Assert.Equal(HonestPython.Length, Posix.StatAt(Posix.AtFdCwd, python).Size);
        lying.AssertOnlyTheNarIsServed($"tool.py is listed as a regular file of 3 bytes, the NAR has a regular file of {HonestPython.Length} bytes");
    }

    [FuseFact]
    public async Task A_file_listed_as_executable_does_not_run_and_one_listed_as_not_executable_runs_once_verified()
    {
        using var lying = await MountLyingAsync(root =>
        {
            Replace(root, "tool.py", new NarListingRegular(HonestPython.Length, true, null));
            return Replace(root, "bin/tool", new NarListingRegular(HonestTool.Length, false, null));
        });
        var (python, tool) = (lying.In("tool.py"), lying.In("bin/tool"));

        Assert.Equal(0b101_101_101u, Posix.StatAt(Posix.AtFdCwd, python).Mode & 0xFFF);
        Assert.Equal(0b100_100_100u, Posix.StatAt(Posix.AtFdCwd, tool).Mode & 0xFFF);
        // The kernel lets the exec open the file; the open verifies the NAR, whose file is not executable.
        Assert.Equal(EACCES, ExecErrno(python));
        Assert.Equal(1, lying.Mount.NarRequests());

        await lying.SettledAsync();
        Assert.Equal(0b100_100_100u, Posix.StatAt(Posix.AtFdCwd, python).Mode & 0xFFF);
        Assert.Equal(0b101_101_101u, Posix.StatAt(Posix.AtFdCwd, tool).Mode & 0xFFF);
        Assert.Equal("honest tool\n", TestMount.Tool(tool).StdoutText);
        lying.AssertOnlyTheNarIsServed($"bin/tool is listed as a regular file of {HonestTool.Length} bytes, the NAR has an executable file of {HonestTool.Length} bytes");
    }

    [FuseFact]
    public async Task Names_the_listing_adds_are_gone_and_names_it_drops_appear_once_verified()
    {
        using var lying = await MountLyingAsync(root =>
        {
            ((NarListingDirectory)root).Entries.Add("extra", new NarListingRegular(4, false, null));
            ((NarListingDirectory)NarListing.Find(root, "/lib")!).Entries.Remove("data.txt");
            return root;
        });
        var (extra, data) = (lying.In("extra"), lying.In("lib/data.txt"));

        Assert.Contains("extra", LazyNames(lying.In("")));
        Assert.Empty(LazyNames(lying.In("lib")));
        Assert.Equal(Errno.ENOENT, Syscalls.StatErrno(data));
        Assert.Equal(0, lying.Mount.NarRequests());
        Assert.Equal(Errno.ENOENT, Errno.OfOpenAndRead(extra));
        Assert.Equal(1, lying.Mount.NarRequests());

        await lying.SettledAsync();
        Assert.DoesNotContain("extra", LazyNames(lying.In("")));
        Assert.Equal(Errno.ENOENT, Syscalls.StatErrno(extra));
        Assert.Equal("data\n", File.ReadAllText(data));
        lying.AssertOnlyTheNarIsServed("extra is listed but not in the NAR");
    }

    [FuseFact]
    public async Task An_honest_listing_serves_stat_and_readdir_without_the_NAR_and_a_link_target_only_from_it()
    {
        using var honest = await MountLyingAsync(root => root);
        var link = honest.In("link");

        Assert.Equal(PosixFileType.Symlink, Posix.StatAt(Posix.AtFdCwd, link).Type);
        Assert.Equal(["bin", "lib", "link", "tool.py"], LazyNames(honest.In("")));
        Assert.Equal(0, honest.Mount.NarRequests());
        Assert.Equal("lib/data.txt", Encoding.UTF8.GetString(Posix.ReadLinkAt(Posix.AtFdCwd, link)));
        Assert.Equal(1, honest.Mount.NarRequests());
        // Nodes made from an honest listing move to the verified tree: nothing is dropped or logged.
        Assert.Equal("data\n", File.ReadAllText(link));
        await honest.SettledAsync();
        Assert.DoesNotContain("disagrees", honest.Mount.Log);
        LazyTreeTests.AssertSameTree(Source, honest.In(""));
        Assert.Equal(1, honest.Mount.NarRequests());
    }

    [FuseFact]
    public async Task A_path_sharing_the_NAR_stops_serving_the_listing_once_the_other_path_verified_it()
    {
        var secret = Path.Combine(Outside(), "shadow");
        File.WriteAllText(secret, "root's secret\n");
        using var lying = await MountLyingAsync(root => Replace(root, "tool.py", new NarListingSymlink(secret)), twin: true);
        var (python, twin) = (lying.In("tool.py"), lying.InTwin("tool.py"));
        Assert.Equal(PosixFileType.Symlink, Posix.StatAt(Posix.AtFdCwd, python).Type);
        Assert.Equal(PosixFileType.Symlink, Posix.StatAt(Posix.AtFdCwd, twin).Type);

        Assert.Equal(HonestPython, File.ReadAllText(python));
        await lying.SettledAsync();

        Assert.Equal(PosixFileType.Regular, Posix.StatAt(Posix.AtFdCwd, twin).Type);
        Assert.Equal(EINVAL, Errno.Of(() => Posix.ReadLinkAt(Posix.AtFdCwd, twin)));
        Assert.Equal(HonestPython, File.ReadAllText(twin));
        LazyTreeTests.AssertSameTree(Source, lying.InTwin(""));
        lying.AssertOnlyTheNarIsServed($"tool.py is listed as a symlink to '{secret}', the NAR has a regular file of {HonestPython.Length} bytes");
    }

    [FuseFact]
    public async Task A_listing_over_the_entry_bound_is_not_used_and_the_path_is_listed_from_its_NAR()
    {
        using var mount = new StoreMountHarness(caches.OwnCacheDir, [caches.Key.PublicKey], listings: new ListingLimits { MaxEntries = 1000 });
        await mount.RegisterAsync(caches.Many);
        mount.Mount();

        Assert.Equal(MountCaches.ManyEntries, LazyNames(mount.In(caches.Many)).Length);
        Assert.Equal(1, mount.NarRequests(caches.Many));
        var listing = $"{mount.Server.BaseUri.AbsoluteUri.TrimEnd('/')}/{caches.Many.StorePath.HashPart}.ls";
        Assert.Contains($"{caches.Many.StorePath.BaseName}: no listing used ({listing}: listing has more than 1000 entries, the most accepted); fetching the NAR to list it", mount.Log);
    }

    /// <summary>Builds a cache holding <see cref="Source"/> whose listing <paramref name="lie"/> rewrites, registers the path and mounts.</summary>
    /// <remarks>With <paramref name="twin"/>, a second path of the same contents (so the same NAR) with the same lying listing.</remarks>
    private async Task<LyingMount> MountLyingAsync(Func<NarListingNode, NarListingNode> lie, bool twin = false)
    {
        var cache = _dir.Sub("cache-" + Guid.NewGuid().ToString("N"));
        var writer = new BinaryCacheWriter(cache, CompressionMethod.Zstd, caches.Key);
        NarInfo[] infos = twin ? [writer.AddTree(Source, "listed"), writer.AddTree(Source, "listed-twin")] : [writer.AddTree(Source, "listed")];
        foreach (var info in infos)
        {
            var listingFile = Path.Combine(cache, info.StorePath.HashPart + ".ls");
            var listing = lie(NarListing.ParseListingFile(File.ReadAllBytes(listingFile)));
            File.WriteAllText(listingFile, NarListing.ToListingFile(listing, includeOffsets: false));
        }
        var mount = new StoreMountHarness(cache, [caches.Key.PublicKey]);
        try
        {
            await mount.RegisterAsync(infos);
            mount.Mount();
            return new LyingMount(mount, infos[0], infos[^1], Source);
        }
        catch
        {
            mount.Dispose();
            throw;
        }
    }

    private string Outside()
    {
        var outside = _dir.Sub("outside");
        Directory.CreateDirectory(outside);
        return outside;
    }

    private static NarListingNode Replace(NarListingNode root, string path, NarListingNode node)
    {
        var slash = path.LastIndexOf('/');
        var parent = (NarListingDirectory)NarListing.Find(root, "/" + (slash < 0 ? "" : path[..slash]))!;
        parent.Entries[path[(slash + 1)..]] = node;
        return root;
    }

    /// <summary>getdents(2) of a directory, names only (.NET's enumeration would follow symlinks to learn their types).</summary>
    private static string[] LazyNames(string directory) =>
        Posix.ReadDirectory(Posix.AtFdCwd, directory, 0, int.MaxValue).Select(e => e.Name).Where(n => n is not "." and not "..").Order(StringComparer.Ordinal).ToArray();

    /// <summary>execve(2) of <paramref name="path"/>: 0 when it ran, else the errno it failed with.</summary>
    private static int ExecErrno(string path)
    {
        try
        {
            using var process = Process.Start(new ProcessStartInfo(path) { UseShellExecute = false, RedirectStandardOutput = true })!;
            process.StandardOutput.ReadToEnd();
            process.WaitForExit();
            return 0;
        }
        catch (Win32Exception e)
        {
            return e.NativeErrorCode;
        }
    }

    public void Dispose() => _dir.Dispose();

    private sealed class LyingMount(StoreMountHarness mount, NarInfo info, NarInfo twin, string source) : IDisposable
    {
        private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

        public StoreMountHarness Mount => mount;

        public NarInfo Info => info;

        public string In(string relative) => mount.In(info, relative);

        /// <summary>A path inside the twin (the same path unless the mount has one).</summary>
        public string InTwin(string relative) => mount.In(twin, relative);

        /// <summary>Waits until the kernel was told to forget what it cached from the dropped listing.</summary>
        public Task SettledAsync() => mount.Store!.KernelCachesInvalidated.WaitAsync(Patience);

        /// <summary>
        /// The whole mounted path is the verified NAR's tree (diff, canonical metadata), one NAR was fetched, and
        /// the disagreement was logged once, naming the path, the listing's URL and <paramref name="difference"/>.
        /// </summary>
        public void AssertOnlyTheNarIsServed(string difference)
        {
            LazyTreeTests.AssertSameTree(source, In(""));
            Assert.Equal(1, mount.NarRequests());
            var lines = mount.Log.Split('\n').Where(l => l.Contains("disagrees with the verified NAR", StringComparison.Ordinal)).ToList();
            var line = Assert.Single(lines);
            Assert.Contains(info.StorePath.BaseName, line);
            Assert.Contains($"{mount.Server.BaseUri.AbsoluteUri.TrimEnd('/')}/{info.StorePath.HashPart}.ls", line);
            Assert.Contains(difference, line);
            var nar = mount.Engine.Catalog.GetNar(info.NarHash.ToString())!;
            Assert.Equal(NarTree.Nar, nar.Tree);
        }

        public void Dispose() => mount.Dispose();
    }
}
