using LazyStore.Fuse;
using LazyStore.Tests.Support;

namespace LazyStore.Tests.Fuse;

/// <summary>
/// Directories opened by the kernel without OPENDIR (<see cref="FuseCapabilities.NoOpendirSupport"/>
/// wanted): no opendir or releasedir reaches the filesystem, readdir carries handle 0, the kernel keeps
/// listings unless they are marked uncacheable.
/// </summary>
public sealed class FuseZeroMessageOpendirTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);

    [FuseTheory]
    [InlineData(FuseReaddirPlusMode.Off)]
    [InlineData(FuseReaddirPlusMode.Auto)]
    public void Directories_open_without_requests_and_the_kernel_keeps_their_listings(FuseReaddirPlusMode mode)
    {
        var fs = ManyEntries();
        // Attributes that do not expire: the kernel has no reason to look at the directory's mtime again.
        fs.CacheTimeout = TimeSpan.FromDays(1);
        fs.OnInitialize = connection => Assert.True(connection.TryEnable(FuseCapabilities.NoOpendirSupport));
        using var mount = TestMount.Start(fs, new FuseMountOptions { ReaddirPlus = mode });

        Assert.Equal(ExpectedMany(), Names(mount.In("many")));
        Assert.Equal(["big.bin", "hello.txt", "link", "many", "sub"], Names(mount.Path));
        int reads = ListingReads(fs);
        Assert.True(reads > 1, "a 300-entry listing takes more than one readdir");

        Assert.Equal(ExpectedMany(), Names(mount.In("many")));
        Assert.Equal(["big.bin", "hello.txt", "link", "many", "sub"], Names(mount.Path));
        Assert.Equal(reads, ListingReads(fs));
        Assert.Equal(0, fs.CallCount("opendir"));
        Assert.Equal(0, fs.CallCount("releasedir"));
        Assert.Equal([0UL], fs.DirectoryHandlesRead);

        // A change the kernel did not see stays out of the kept listing; one made through the mount drops it.
        fs.AddFile("many/behind-the-kernel", [1]);
        Assert.DoesNotContain("behind-the-kernel", Names(mount.In("many")));
        File.WriteAllText(mount.In("many/through-the-mount"), "x");
        var after = Names(mount.In("many"));
        Assert.Contains("behind-the-kernel", after);
        Assert.Contains("through-the-mount", after);
        Assert.True(ListingReads(fs) > reads);
        Assert.Equal("", mount.Log);
    }

    [FuseFact]
    public void An_uncacheable_listing_is_asked_for_again_at_every_listing()
    {
        var fs = ManyEntries();
        fs.CacheTimeout = TimeSpan.FromDays(1);
        fs.UncacheableListings = true;
        fs.OnInitialize = connection => Assert.True(connection.TryEnable(FuseCapabilities.NoOpendirSupport));
        using var mount = TestMount.Start(fs);

        Assert.Equal(ExpectedMany(), Names(mount.In("many")));
        int reads = ListingReads(fs);
        Assert.Equal(ExpectedMany(), Names(mount.In("many")));
        Assert.Equal(2 * reads, ListingReads(fs));

        fs.AddFile("many/behind-the-kernel", [1]);
        Assert.Equal(ExpectedMany().Append("behind-the-kernel").Order(StringComparer.Ordinal), Names(mount.In("many")));
        fs.AddFile("late", [2]);
        Assert.Contains("late", Names(mount.Path));
        Assert.Equal(0, fs.CallCount("opendir"));
        Assert.Equal("", mount.Log);
    }

    [FuseFact]
    public void Without_the_capability_opendir_and_releasedir_still_reach_the_filesystem()
    {
        var fs = ManyEntries();
        fs.UncacheableListings = true;
        using var mount = TestMount.Start(fs);

        Assert.Equal(ExpectedMany(), Names(mount.In("many")));
        Assert.Equal(1, fs.CallCount("opendir"));
        Assert.DoesNotContain(0UL, fs.DirectoryHandlesRead);
        Assert.False(fs.Connection!.Wanted.HasFlag(FuseCapabilities.NoOpendirSupport));
    }

    [FuseTheory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Concurrent_listings_each_get_every_entry_once(bool completeAsynchronously)
    {
        var fs = ManyEntries();
        for (int d = 0; d < 8; d++)
        {
            fs.AddDirectory($"dir-{d}");
            for (int i = 0; i < 40; i++)
                fs.AddFile($"dir-{d}/entry-{i:D3}-{new string('y', 60)}", [(byte)i]);
        }
        // Uncacheable, so that every listing reaches the filesystem and its end drops the kernel's pages.
        fs.UncacheableListings = true;
        if (completeAsynchronously)
            fs.Intercept = (operation, _) => operation is "readdir" or "readdirplus" ? new ValueTask(Task.Run(() => { })) : ValueTask.CompletedTask;
        fs.OnInitialize = connection => Assert.True(connection.TryEnable(FuseCapabilities.NoOpendirSupport));
        using var mount = TestMount.Start(fs, new FuseMountOptions { MaxThreads = 4 });

        var expected = Enumerable.Range(0, 40).Select(i => $"entry-{i:D3}-{new string('y', 60)}").ToList();
        var listers = Enumerable.Range(0, 8).Select(t => Task.Factory.StartNew(
            () =>
            {
                for (int round = 0; round < 25; round++)
                {
                    Assert.Equal(expected, Names(mount.In($"dir-{(t + round) % 8}")));
                    Assert.Equal(ExpectedMany(), Names(mount.In("many")));
                }
            },
            TaskCreationOptions.LongRunning)).ToArray();
        await Task.WhenAll(listers).WaitAsync(Patience);

        Assert.Equal(0, fs.CallCount("opendir"));
        Assert.Equal(0, fs.CallCount("releasedir"));
        Assert.Equal("", mount.Log);
    }

    private static MemoryFileSystem ManyEntries()
    {
        var fs = FuseOperationTests.SampleTree();
        // Longer names than one 4 KiB readdir reply holds, so listings continue from offset cookies.
        for (int i = 0; i < 300; i++)
            fs.AddFile($"many/entry-{i:D4}-{new string('x', 40)}", [(byte)i]);
        return fs;
    }

    private static List<string> ExpectedMany() =>
        Enumerable.Range(0, 300).Select(i => $"entry-{i:D4}-{new string('x', 40)}").ToList();

    private static int ListingReads(MemoryFileSystem fs) => fs.CallCount("readdir") + fs.CallCount("readdirplus");

    /// <summary>A listing's names in order, each at most once (a duplicate fails the test).</summary>
    private static List<string> Names(string directory)
    {
        var names = Directory.GetFileSystemEntries(directory).Select(p => Path.GetFileName(p)!).ToList();
        Assert.Equal(names.Count, names.Distinct(StringComparer.Ordinal).Count());
        return names.Order(StringComparer.Ordinal).ToList();
    }
}
