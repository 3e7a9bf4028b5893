using LazyStore.Nix;
using LazyStore.Nix.Signatures;
using LazyStore.Store.Catalog;
using LazyStore.Store.Demo;
using LazyStore.Store.Serving;
using LazyStore.Tests.Support;

namespace LazyStore.Tests.Store;

public sealed class DemoCacheTests : IDisposable
{
    private readonly TempDir _dir = new("lazystore-demo-cache-");

    [Fact]
    public async Task The_demo_cache_is_served_verified_and_its_program_runs()
    {
        using var key = SecretKey.Generate("demo-1");
        var storeDir = new StoreDirectory(_dir.Sub("store"));
        var contents = DemoCache.Build(_dir.Sub("cache"), _dir.Sub("staging"), storeDir, key);
        using var server = new BinaryCacheServer(_dir.Sub("cache"));
        using var store = new StoreHarness([server.BaseUri.AbsoluteUri], [key.PublicKey], storeDirectory: storeDir);

        var closure = await store.Engine.Substituters.QueryClosureAsync([contents.Environment.StorePath], 4, CancellationToken.None);
        Assert.Equal(contents.All.Select(i => i.StorePath).Order(), closure.Select(p => p.Path).Order());

        var program = await store.Engine.GetPathAsync(contents.Program.StorePath, register: false, CancellationToken.None);
        var listed = await store.Engine.EnsureTreeAsync(program, fetchIfUnlisted: false, CancellationToken.None);
        Assert.Equal(NarTree.Listing, listed.Tree);
        var entry = store.Engine.Resolve(listed, contents.ProgramFile.Split('/'))!;
        Assert.True(entry.IsExecutable);
        Assert.Equal(0, server.CountRequests(p => p.StartsWith("nar/", StringComparison.Ordinal)));

        // The program's bytes come back verified and it runs.
        var bytes = await store.ReadAllAsync(contents.Program.StorePath.ToFullPath(storeDir) + "/" + contents.ProgramFile);
        var copy = _dir.Sub(Path.GetFileName(contents.ProgramFile));
        File.WriteAllBytes(copy, bytes);
        File.SetUnixFileMode(copy, UnixFileMode.UserRead | UnixFileMode.UserExecute);
        var run = ExternalTool.Run(copy, contents.ProgramArguments);
        Assert.Equal(0, run.ExitCode);
        Assert.NotEmpty(run.StdoutText);
        Assert.Equal(1, server.CountRequests(p => p.StartsWith("nar/", StringComparison.Ordinal)));
    }

    public void Dispose() => _dir.Dispose();
}
