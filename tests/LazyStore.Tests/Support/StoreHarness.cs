using LazyStore.Nix;
using LazyStore.Nix.Nar;
using LazyStore.Nix.Signatures;
using LazyStore.Store;
using LazyStore.Store.Catalog;
using LazyStore.Store.Configuration;
using LazyStore.Store.Substituters;

namespace LazyStore.Tests.Support;

/// <summary>A fresh state directory and an engine over the given caches, with fast retries.</summary>
public sealed class StoreHarness : IDisposable
{
    private readonly TempDir _dir = new("lazystore-state-");

    public StoreHarness(IEnumerable<string> caches, IEnumerable<PublicKey> trustedKeys, bool requireSignatures = true,
        TimeProvider? time = null, TransportOptions? transport = null, StoreDirectory? storeDirectory = null, ListingLimits? listings = null)
    {
        Engine = LazyStoreEngine.Open(new LazyStoreOptions
        {
            StateDirectory = _dir.Sub("state"),
            Substituters = new SubstituterSettings
            {
                Substituters = caches.Select(c => new Uri(c.Contains("://", StringComparison.Ordinal) ? c : "file://" + c)).ToList(),
                TrustedPublicKeys = trustedKeys.ToList(),
                RequireSignatures = requireSignatures,
            },
            Transport = transport ?? FastTransport,
            Time = time,
            StoreDirectory = storeDirectory ?? StoreDirectory.Default,
            Listings = listings ?? ListingLimits.Default,
        });
    }

    public static TransportOptions FastTransport { get; } = new()
    {
        Attempts = 3,
        RetryDelay = TimeSpan.FromMilliseconds(5),
        ConnectTimeout = TimeSpan.FromSeconds(10),
        StalledDownloadTimeout = TimeSpan.FromSeconds(5),
    };

    public LazyStoreEngine Engine { get; }

    public StateDirectory State => Engine.Catalog.State;

    public Task<LazyPath> GetAsync(string fullPath) => Engine.GetPathAsync(Engine.ParsePathArgument(fullPath).Path, register: false, CancellationToken.None);

    public async Task<NarRecord> FetchAsync(string fullPath) => await Engine.EnsureFetchedAsync(await GetAsync(fullPath), CancellationToken.None);

    /// <summary>Reads a whole file of a store path through the engine's positional reads, in odd-sized pieces.</summary>
    public async Task<byte[]> ReadAllAsync(string fullPath)
    {
        var (path, inside) = Engine.ParsePathArgument(fullPath);
        using var output = new MemoryStream();
        var buffer = new byte[70_001];
        long offset = 0;
        int n;
        while ((n = await Engine.ReadAsync(path, inside, offset, buffer, CancellationToken.None)) > 0)
        {
            output.Write(buffer, 0, n);
            offset += n;
        }
        return output.ToArray();
    }

    /// <summary>Asserts that nothing of a NAR was kept: no blob, no temporary file, no payload offsets.</summary>
    public void AssertNothingStored(NarInfo info)
    {
        Assert.Empty(Directory.EnumerateFiles(State.NarsPath));
        Assert.Empty(Directory.EnumerateFiles(State.TempPath));
        var record = Engine.Catalog.GetNar(info.NarHash.ToString());
        if (record is not null)
        {
            Assert.False(record.IsFetched);
            Assert.NotEqual(NarTree.Nar, record.Tree);
            Assert.All(Engine.Catalog.GetTree(record.Id), e => Assert.Null(e.PayloadOffset));
        }
    }

    /// <summary>
    /// Compares the stored tree of a path with the NAR of a directory on disk: names, types, sizes,
    /// executability, link targets, and — once the NAR was fetched — every payload offset.
    /// </summary>
    public void AssertTreeMatches(NarRecord nar, string source)
    {
        var expected = NarListing.FromNar(DumpToMemory(source));
        var actual = NarIndexEntry.ToListing(Engine.Catalog.GetTree(nar.Id));
        if (nar.Tree != NarTree.Nar)
            expected = StripOffsets(expected);
        Assert.Equal(NarListing.ToJson(expected), NarListing.ToJson(actual));
    }

    private static MemoryStream DumpToMemory(string source)
    {
        var stream = new MemoryStream();
        NarWriter.Dump(source, stream);
        stream.Position = 0;
        return stream;
    }

    private static NarListingNode StripOffsets(NarListingNode node) => node switch
    {
        NarListingRegular r => new NarListingRegular(r.Size, r.IsExecutable, null),
        NarListingDirectory d => Rebuild(d),
        _ => node,
    };

    private static NarListingDirectory Rebuild(NarListingDirectory d)
    {
        var copy = new NarListingDirectory();
        foreach (var (name, child) in d.Entries)
            copy.Entries.Add(name, StripOffsets(child));
        return copy;
    }

    public void Dispose()
    {
        Engine.Dispose();
        _dir.Dispose();
    }
}
