using LazyStore.Fuse;
using LazyStore.Tests.Support;

namespace LazyStore.Tests.Fuse;

/// <summary>Asynchronous handlers, parallel requests, and the lookup counts the kernel hands back.</summary>
public sealed class FuseConcurrencyTests
{
    private const string DropCaches = "/proc/sys/vm/drop_caches";
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);

    [FuseFact]
    public async Task Handlers_waiting_asynchronously_hold_no_worker_so_other_requests_proceed()
    {
        const int Slow = 4;
        var fs = FuseOperationTests.SampleTree();
        for (int i = 0; i < Slow; i++)
            fs.AddFile($"slow-{i}", [(byte)('a' + i)]);
        int entered = 0;
        var allEntered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource();
        fs.Intercept = (operation, name) =>
        {
            if (operation != "open" || !name.StartsWith("slow-", StringComparison.Ordinal))
                return ValueTask.CompletedTask;
            if (Interlocked.Increment(ref entered) == Slow)
                allEntered.TrySetResult();
            return new ValueTask(release.Task);
        };
        // One libfuse worker: if a pending handler held it, nothing below could be answered.
        using var mount = TestMount.Start(fs, new FuseMountOptions { MaxThreads = 1 });
        var slow = Enumerable.Range(0, Slow)
            .Select(i => Task.Factory.StartNew(() => File.ReadAllText(mount.In($"slow-{i}")), TaskCreationOptions.LongRunning))
            .ToArray();
        await allEntered.Task.WaitAsync(Patience);

        await Task.Run(() =>
        {
            for (int i = 0; i < 20; i++)
                Assert.Equal("hello world\n", File.ReadAllText(mount.In("hello.txt")));
            Assert.Equal(5 + Slow, Directory.GetFileSystemEntries(mount.Path).Length);
            Assert.True(File.ReadAllBytes(mount.In("big.bin")).Length > 0);
        }).WaitAsync(Patience);
        Assert.All(slow, t => Assert.False(t.IsCompleted));

        // The replies go out from this thread, inside SetResult.
        release.SetResult();
        var texts = await Task.WhenAll(slow).WaitAsync(Patience);
        Assert.Equal(["a", "b", "c", "d"], texts);
    }

    [FuseTheory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Sixteen_concurrent_readers_each_get_the_right_bytes(bool completeAsynchronously)
    {
        var fs = FuseOperationTests.SampleTree();
        if (completeAsynchronously)
            fs.Intercept = (operation, _) => operation == "read" ? new ValueTask(Task.Run(() => { })) : ValueTask.CompletedTask;
        var expected = fs.Find("big.bin")!.Data;
        using var mount = TestMount.Start(fs);

        var readers = Enumerable.Range(0, 16).Select(reader => Task.Factory.StartNew(
            () =>
            {
                using var handle = File.OpenHandle(mount.In("big.bin"));
                var buffer = new byte[(64 << 10) + (reader * 1000)];
                long start = (long)reader * 524_287 % expected.Length;
                for (long done = 0; done < expected.Length;)
                {
                    long offset = (start + done) % expected.Length;
                    int want = (int)Math.Min(buffer.Length, expected.Length - offset);
                    int read = RandomAccess.Read(handle, buffer.AsSpan(0, want), offset);
                    Assert.Equal(want, read);
                    Assert.True(buffer.AsSpan(0, read).SequenceEqual(expected.AsSpan((int)offset, read)), $"reader {reader} at {offset}");
                    done += read;
                }
            },
            TaskCreationOptions.LongRunning)).ToArray();

        await Task.WhenAll(readers).WaitAsync(Patience);
        Assert.Equal("", mount.Log);
    }

    [FuseFact]
    public async Task Every_lookup_is_forgotten_once_the_kernel_drops_its_caches()
    {
        var fs = FuseOperationTests.SampleTree();
        for (int i = 0; i < 50; i++)
            fs.AddFile($"many/f{i}", [(byte)i]);
        using var mount = TestMount.Start(fs, new FuseMountOptions { ReaddirPlus = FuseReaddirPlusMode.Always });

        TestMount.Tool("ls", "-laR", mount.Path).EnsureSuccess("ls -laR");
        Assert.Equal("inner", File.ReadAllText(mount.In("sub/inner.txt")));
        File.WriteAllText(mount.In("sub/new"), "x");
        File.Move(mount.In("sub/new"), mount.In("many/moved"));
        File.Delete(mount.In("many/f0"));
        Assert.Equal(Errno.ENOENT, Syscalls.StatErrno(mount.In("absent")));
        Assert.True(fs.OutstandingLookups > 50);

        // Containers often mount /proc/sys read-only; then only the absence of over-forgetting is checked.
        if (IsWritable(DropCaches))
        {
            // Unused dentries and inodes are evicted, and each evicted inode sends FORGET with its count.
            // A parent is only unused once its children are gone, so a second pass may be needed.
            for (int pass = 0; pass < 3 && !fs.AllForgotten.IsCompleted; pass++)
            {
                File.WriteAllText(DropCaches, "2");
                await CompletesWithin(fs.AllForgotten, TimeSpan.FromSeconds(10));
            }
            Assert.True(fs.AllForgotten.IsCompleted, $"{fs.OutstandingLookups} lookups still held after dropping caches");
            Assert.Equal(0, fs.OutstandingLookups);
        }

        mount.Dispose();
        Assert.Empty(fs.Violations);
    }

    private static async Task CompletesWithin(Task task, TimeSpan timeout)
    {
        try
        {
            await task.WaitAsync(timeout);
        }
        catch (TimeoutException)
        {
            // The caller checks the task's state and decides whether to try again.
        }
    }

    private static bool IsWritable(string path)
    {
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Write);
            return true;
        }
        catch (Exception e) when (e is UnauthorizedAccessException or IOException)
        {
            return false;
        }
    }
}
