using LazyStore.Store.Catalog;

namespace LazyStore.Tests.Store;

/// <summary>Writes that arrive while another commits share the next transaction; a failed commit fails exactly its own writes.</summary>
public sealed class GroupCommitTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task Writes_arriving_during_a_commit_go_together_in_the_next_and_a_failure_reaches_only_its_batch()
    {
        var batches = new List<IReadOnlyList<int>>();
        var firstCommitting = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var releaseFirst = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var commits = new GroupCommit<int>(batch =>
        {
            lock (batches)
                batches.Add(batch);
            if (batch.Contains(0))
            {
                firstCommitting.SetResult();
                releaseFirst.Task.Wait(Bound);
            }
            if (batch.Contains(-1))
                throw new IOException("disk full");
        });

        var first = commits.WriteAsync(0);
        await firstCommitting.Task.WaitAsync(Bound);
        var during = Enumerable.Range(1, 5).Select(commits.WriteAsync).ToList();
        Assert.All(during, w => Assert.False(w.IsCompleted));
        releaseFirst.SetResult();
        await Task.WhenAll([first, .. during]).WaitAsync(Bound);
        Assert.Equal([[0], [1, 2, 3, 4, 5]], batches);

        var failed = await Assert.ThrowsAsync<IOException>(() => commits.WriteAsync(-1).WaitAsync(Bound));
        Assert.Equal("disk full", failed.Message);
        await commits.WriteAsync(6).WaitAsync(Bound);
        Assert.Equal([6], batches[^1]);
    }
}
