using LazyStore.Fuse;
using LazyStore.Nix.Interop;

namespace LazyStore.Tests.Fuse;

public sealed class FuseCallerGroupsTests
{
    // The main thread's id is the process id; its credentials are the process's.
    private static readonly int MainThread = Environment.ProcessId;

    [Fact]
    public void Reads_the_supplementary_groups_of_the_thread_that_asked()
    {
        var groups = FuseCallerGroups.Read(new FuseRequestContext(Posix.EffectiveUserId, Posix.EffectiveGroupId, MainThread, 0));

        Assert.NotNull(groups);
        Assert.Equal(Posix.GetGroups().Order(), groups.Order());
    }

    [Fact]
    public void Knows_nothing_of_a_thread_whose_ids_are_not_the_requests()
    {
        Assert.Null(FuseCallerGroups.Read(new FuseRequestContext(Posix.EffectiveUserId + 1, Posix.EffectiveGroupId, MainThread, 0)));
        Assert.Null(FuseCallerGroups.Read(new FuseRequestContext(Posix.EffectiveUserId, Posix.EffectiveGroupId + 1, MainThread, 0)));
    }

    [Fact]
    public void Knows_nothing_of_the_kernel_or_of_a_thread_that_is_gone()
    {
        Assert.Null(FuseCallerGroups.Read(new FuseRequestContext(0, 0, 0, 0)));
        // Above any pid_max (at most 2^22), so no thread has this id.
        Assert.Null(FuseCallerGroups.Read(new FuseRequestContext(Posix.EffectiveUserId, Posix.EffectiveGroupId, int.MaxValue, 0)));
    }
}
