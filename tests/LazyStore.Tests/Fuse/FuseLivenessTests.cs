using LazyStore.Fuse;
using LazyStore.Fuse.Interop;
using LazyStore.Tests.Support;

namespace LazyStore.Tests.Fuse;

/// <summary>
/// A handler that never finishes holds up nothing else: other names of its directory are looked up
/// and listed meanwhile, and a caller killed while it waits goes away. The callers run as child
/// processes, since a thread blocked on an unanswered request cannot be stopped.
/// </summary>
public sealed class FuseLivenessTests
{
    /// <summary>Where the binding without these fixes waited until the unmount.</summary>
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(15);

    [FuseFact]
    public async Task A_lookup_waiting_in_its_handler_holds_up_no_lookup_or_listing_of_its_directory()
    {
        // A name not in the directory, as a lookup on demand would be: a listing never waits for a
        // lookup of a name it does not show (one it shows would, in the kernel's d_alloc_parallel).
        var fs = FuseOperationTests.SampleTree();
        var entered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        fs.Intercept = (operation, name) =>
        {
            if (operation != "lookup" || name != "slow")
                return ValueTask.CompletedTask;
            entered.TrySetResult();
            return new ValueTask(release.Task);
        };
        using var mount = TestMount.Start(fs);
        try
        {
            using var slow = ChildProcess.Start("stat", mount.In("slow"));
            await entered.Task.WaitAsync(Bound);

            using var other = ChildProcess.Start("stat", mount.In("hello.txt"));
            Assert.Equal(0, (await other.ExitsWithinAsync(Bound)).ExitCode);
            using var listing = ChildProcess.Start("ls", mount.Path);
            var ls = await listing.ExitsWithinAsync(Bound);
            Assert.Equal(0, ls.ExitCode);
            Assert.Contains("hello.txt", ls.StdoutText);
            Assert.False(slow.HasExited);

            release.SetResult();
            Assert.NotEqual(0, (await slow.ExitsWithinAsync(Bound)).ExitCode);
        }
        finally
        {
            release.TrySetResult();
        }
    }

    [FuseFact]
    public async Task A_reader_killed_while_its_open_waits_is_gone_at_once_and_the_handler_sees_the_interrupt()
    {
        var fs = FuseOperationTests.SampleTree();
        fs.AddFile("hang", [1]);
        var entered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var interrupted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        fs.InterceptInterruptible = async (operation, name, token) =>
        {
            if (operation != "open" || name != "hang")
                return;
            entered.TrySetResult();
            try
            {
                await Task.Delay(Timeout.InfiniteTimeSpan, token);
            }
            catch (OperationCanceledException)
            {
                interrupted.TrySetResult();
                throw;
            }
        };
        using var mount = TestMount.Start(fs);

        using var reader = ChildProcess.Start("cat", mount.In("hang"));
        await entered.Task.WaitAsync(Bound);
        reader.Kill();

        Assert.NotNull(await reader.WaitAsync(Bound));
        Assert.True(reader.HasExited);
        await interrupted.Task.WaitAsync(Bound);
        // The interrupted request was answered (EINTR) and nothing was logged as a failure; the mount serves on.
        using var next = ChildProcess.Start("cat", mount.In("hello.txt"));
        Assert.Equal("hello world\n", (await next.ExitsWithinAsync(Bound)).StdoutText);
        Assert.Equal("", mount.Log);
    }

    [Fact]
    public unsafe void The_INIT_reply_gets_the_parallel_directory_operations_flag_and_no_other_message_does()
    {
        var header = new LibFuse.OutHeader { Length = 16 + 64, Error = 0, Unique = 2 };
        var init = new uint[16];
        init[0] = 7;
        init[1] = 45;
        init[3] = 0x1;
        fixed (uint* body = init)
        {
            var iov = stackalloc Libc.Iovec[2];
            iov[0] = new Libc.Iovec { Base = (byte*)&header, Length = (nuint)sizeof(LibFuse.OutHeader) };
            iov[1] = new Libc.Iovec { Base = (byte*)body, Length = 64 };
            Assert.True(FuseDeviceIo.AddParallelDirops(iov, 2));
            Assert.Equal(0x1u | (1u << 18), init[3]);

            init[3] = 0;
            header.Error = -Errno.EIO;
            Assert.False(FuseDeviceIo.AddParallelDirops(iov, 2));
            header.Error = 0;
            header.Unique = 0; // a notification
            Assert.False(FuseDeviceIo.AddParallelDirops(iov, 2));
            header.Unique = 2;
            init[0] = 0x4000; // not a fuse_init_out
            Assert.False(FuseDeviceIo.AddParallelDirops(iov, 2));
            Assert.False(FuseDeviceIo.AddParallelDirops(iov, 1));
            Assert.Equal(0u, init[3]);
        }
    }
}
