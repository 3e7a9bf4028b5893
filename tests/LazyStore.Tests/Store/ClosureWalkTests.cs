using LazyStore.Nix;
using LazyStore.Nix.Compression;
using LazyStore.Nix.Signatures;
using LazyStore.Store.Catalog;
using LazyStore.Store.Serving;
using LazyStore.Store.Substituters;
using LazyStore.Tests.Support;

namespace LazyStore.Tests.Store;

/// <summary>
/// Closure walks and registration against a loopback cache: what the server is asked, and when. Nothing is
/// timed: the server holds requests and the tests look at which others arrive meanwhile.
/// </summary>
public sealed class ClosureWalkTests : IDisposable
{
    /// <summary>Where the code before the work queue waited for ever (the held request is released only by what it waits for).</summary>
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(20);

    private readonly TempDir _dir = new("lazystore-closure-walk-");
    private readonly SecretKey _key = SecretKey.Generate("closure-walk-1");
    private readonly BinaryCacheWriter _writer;

    public ClosureWalkTests()
    {
        _writer = new BinaryCacheWriter(_dir.Sub("cache"), CompressionMethod.None, _key);
    }

    private NarInfo Add(string name, params NarInfo[] references)
    {
        var source = _dir.Sub("src/" + name);
        Directory.CreateDirectory(source);
        File.WriteAllText(Path.Combine(source, "file"), name + "\n" + string.Concat(references.Select(r => r.StorePath.ToFullPath() + "\n")));
        return _writer.AddTree(source, name, references.Select(r => r.StorePath).ToList());
    }

    private static string NarInfoFile(NarInfo info) => info.StorePath.HashPart + ".narinfo";

    [Fact]
    public async Task A_slow_narinfo_holds_up_only_what_it_refers_to_not_the_rest_of_the_walk()
    {
        var slowLeaf = Add("slow-leaf");
        var slow = Add("slow", slowLeaf);
        var fourth = Add("fourth");
        var third = Add("third", fourth);
        var second = Add("second", third);
        var first = Add("first", second);
        using var server = new BinaryCacheServer(_dir.Sub("cache"));
        // The slow root's narinfo is answered only once the end of the other root's chain has been asked for.
        var endOfChainAsked = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var bound = new CancellationTokenSource(Bound);
        bound.Token.Register(() => endOfChainAsked.TrySetResult());
        server.Faults = r =>
        {
            if (r.Path == NarInfoFile(fourth))
                endOfChainAsked.TrySetResult();
            return r.Path == NarInfoFile(slow) ? new ServerFault.Hold(endOfChainAsked.Task) : null;
        };
        using var store = new StoreHarness([server.BaseUri.ToString()], [_key.PublicKey]);

        var closure = await store.Engine.Substituters.QueryClosureAsync([slow.StorePath, first.StorePath], parallelism: 4, CancellationToken.None)
            .WaitAsync(Bound + Bound);

        Assert.False(bound.IsCancellationRequested, "the chain of the other root was not walked while the slow narinfo was outstanding");
        Assert.Equal(new[] { slowLeaf, slow, fourth, third, second, first }.Select(i => i.StorePath).Order(), closure.Select(p => p.Path));
        var narinfos = server.Requests.Where(r => r.Path.EndsWith(".narinfo", StringComparison.Ordinal)).Select(r => r.Path).ToList();
        Assert.Equal(6, narinfos.Count);
        Assert.Equal(6, narinfos.Distinct().Count());
        Assert.True(narinfos.IndexOf(NarInfoFile(fourth)) < narinfos.IndexOf(NarInfoFile(slowLeaf)), string.Join(", ", narinfos));

        // Every answer was remembered: a second walk asks nothing.
        var asked = server.Requests.Count;
        await store.Engine.Substituters.QueryClosureAsync([slow.StorePath, first.StorePath], parallelism: 4, CancellationToken.None);
        Assert.Equal(asked, server.Requests.Count);
    }

    [Fact]
    public async Task A_walk_keeps_as_many_narinfo_requests_in_flight_as_it_may_while_one_is_slow_and_remembers_misses()
    {
        var leaves = Enumerable.Range(0, 30).Select(i => Add($"leaf-{i:D2}")).ToArray();
        var top = Add("top", leaves);
        var slow = Add("slow");
        var missing = StorePath.FromBaseName(new string('1', 32) + "-missing");
        using var server = new BinaryCacheServer(_dir.Sub("cache"));
        // Everything but the top's narinfo is held (the slow root's first) until 12 requests are held at once.
        using var held = new HeldRequests(r => r.Path.EndsWith(".narinfo", StringComparison.Ordinal) && r.Path != NarInfoFile(top), target: 12, Bound);
        server.Faults = held.Fault;
        using var store = new StoreHarness([server.BaseUri.ToString()], [_key.PublicKey]);

        var closure = await store.Engine.Substituters.QueryClosureAsync([top.StorePath, slow.StorePath], parallelism: 12, CancellationToken.None)
            .WaitAsync(Bound + Bound);
        Assert.True(held.ReachedTarget, $"only {held.MostHeld} narinfo requests were in flight at once: {string.Join(", ", held.Held)}");
        Assert.Equal(12, held.MostHeld);
        Assert.Contains(NarInfoFile(slow), held.Held);
        Assert.Equal(32, closure.Count);

        var error = await Assert.ThrowsAsync<PathNotSubstitutableException>(() =>
            store.Engine.Substituters.QueryClosureAsync([top.StorePath, missing], parallelism: 12, CancellationToken.None));
        Assert.Contains(missing.ToFullPath(), error.Message, StringComparison.Ordinal);
        Assert.NotNull(store.Engine.Catalog.GetNarInfoLookup(store.Engine.Substituters.Caches[0].Url, missing.HashPart));
    }

    [Theory]
    [InlineData("register")]
    [InlineData("fetch")]
    public async Task Closure_walks_of_the_command_line_keep_http_connections_lookups_in_flight_unless_j_says_otherwise(string command)
    {
        var leaves = Enumerable.Range(0, 30).Select(i => Add($"leaf-{i:D2}")).ToArray();
        var top = Add("top", leaves);
        using var server = new BinaryCacheServer(_dir.Sub("cache"));
        var environment = new Dictionary<string, string?> { ["NIX_CONFIG"] = "http-connections = 12" };

        async Task<int> MostInFlight(string state, int target, TimeSpan bound, params string[] jobs)
        {
            using var held = new HeldRequests(r => r.Path.EndsWith(".narinfo", StringComparison.Ordinal) && r.Path != NarInfoFile(top), target, bound);
            server.Faults = held.Fault;
            // register has no mount to serve the paths, so it registers nothing: only its closure walk matters here.
            string[] args =
            [
                command, "--closure", .. jobs, top.StorePath.ToFullPath(), "--substituter", server.BaseUri.ToString(),
                "--trusted-public-key", _key.PublicKey.ToString(), "--state-dir", _dir.Sub(state), .. command == "register" ? ["--store-root", _dir.Sub("root")] : Array.Empty<string>(),
            ];
            var result = await Task.Run(() => CliProcess.Run(args, environment)).WaitAsync(Bound + Bound + Bound);
            Assert.DoesNotContain("not available from any substituter", result.Stderr, StringComparison.Ordinal);
            Assert.True(command == "register" || result.ExitCode == 0, result.Stderr);
            return held.MostHeld;
        }

        Assert.Equal(12, await MostInFlight("state-default", target: 12, Bound));
        // Held until a fourth arrives, which -j 3 never sends: the hold ends after a few seconds.
        Assert.Equal(3, await MostInFlight("state-j3", target: 4, TimeSpan.FromSeconds(3), "-j", "3"));
    }

    [Fact]
    public async Task Registering_a_closure_asks_the_cache_for_narinfos_only_never_a_listing()
    {
        var leaf = Add("leaf");
        var top = Add("top", leaf);
        using var server = new BinaryCacheServer(_dir.Sub("cache"));
        using var store = new StoreHarness([server.BaseUri.ToString()], [_key.PublicKey]);
        var found = await store.Engine.Substituters.QueryClosureAsync([top.StorePath], parallelism: 4, CancellationToken.None);
        var pending = new PendingRegistration("1:1", "");

        var registered = await store.Engine.RegisterAsync(found, pending, CancellationToken.None);

        Assert.Equal(new[] { leaf.StorePath, top.StorePath }.Order(), registered.Paths.Select(p => p.Path).Order());
        Assert.All(registered.Paths, p => Assert.True(p is { Registered: true, Pending: true, Nar.Tree: NarTree.None }));
        var asked = server.Requests.Select(r => r.Path).Where(p => p != "nix-cache-info").Order(StringComparer.Ordinal).ToList();
        Assert.Equal(new[] { NarInfoFile(leaf), NarInfoFile(top) }.Order(StringComparer.Ordinal), asked);
    }

    public void Dispose() => _dir.Dispose();
}
