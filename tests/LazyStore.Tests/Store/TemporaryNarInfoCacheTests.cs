using System.Security.Cryptography;
using LazyStore.Nix;
using LazyStore.Nix.Signatures;
using LazyStore.Store.Registration;

namespace LazyStore.Tests.Store;

public sealed class TemporaryNarInfoCacheTests
{
    private static readonly SecretKey FirstCache = SecretKey.Generate("first-cache-1");
    private static readonly SecretKey OtherCache = SecretKey.Generate("other-cache-1");

    private static NarInfo Info(string name, params StorePath[] references) => new()
    {
        StorePath = StorePath.FromParts(RandomNumberGenerator.GetBytes(StorePath.DigestLength), name),
        Url = "nar/x.nar",
        NarHash = NixHash.Parse("sha256:1jpg5v8rcf4d08rlpq51vnd1w800l64h34r0bw4vkb6z3qlk089k"),
        NarSize = 288,
        References = references,
    };

    [Fact]
    public async Task HoldsABinaryCacheOfTheNarinfosWithSignaturesAndIsRemovedOnDispose()
    {
        var leaf = Info("leaf").Sign(FirstCache);
        var top = Info("top", leaf.StorePath).Sign(FirstCache);
        var unsigned = Info("unsigned");
        string directory;
        await using (var cache = TemporaryNarInfoCache.Start([leaf, top, unsigned], StoreDirectory.Default))
        {
            directory = await cache.HoldAsync([leaf, top], CancellationToken.None);
            Assert.Equal("StoreDir: /nix/store\n", File.ReadAllText(Path.Combine(directory, NixCacheInfo.FileName)));
            Assert.Equal(new[] { NixCacheInfo.FileName, leaf.StorePath.HashPart + ".narinfo", top.StorePath.HashPart + ".narinfo" }.Order(StringComparer.Ordinal),
                Directory.EnumerateFileSystemEntries(directory).Select(Path.GetFileName).Order(StringComparer.Ordinal));
            Assert.Equal(top.ToString(), File.ReadAllText(Path.Combine(directory, top.StorePath.HashPart + ".narinfo")));
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(directory));
        }
        Assert.False(Directory.Exists(directory));
    }

    [Fact]
    public async Task DirectoriesOfRunsThatAreGoneAreRemovedAndThoseOfLiveRunsKept()
    {
        // This process with a start time it never had stands for a killed run whose pid was reused.
        var abandoned = Path.Combine(Path.GetTempPath(), $"lazystore-narinfos-{Environment.ProcessId}-0-{Guid.NewGuid():N}"[..40]);
        Directory.CreateDirectory(abandoned);
        File.WriteAllText(Path.Combine(abandoned, NixCacheInfo.FileName), "StoreDir: /nix/store\n");
        var path = Info("path").Sign(FirstCache);
        await using (var running = TemporaryNarInfoCache.Start([path], StoreDirectory.Default))
        {
            var live = await running.HoldAsync([path], CancellationToken.None);
            await using (var other = TemporaryNarInfoCache.Start([path], StoreDirectory.Default))
            {
                var second = await other.HoldAsync([path], CancellationToken.None);
                Assert.NotEqual(live, second);
                Assert.True(Directory.Exists(live));
            }
            Assert.False(Directory.Exists(abandoned));
            Assert.True(Directory.Exists(live));
        }
    }

    [Fact]
    public async Task ANarinfoDifferingFromTheOneWrittenReplacesIt()
    {
        // What was looked up, and what the catalog kept of the same path from another cache.
        var found = Info("path").Sign(FirstCache);
        var registered = new NarInfo { StorePath = found.StorePath, Url = "nar/y.nar", NarHash = found.NarHash, NarSize = found.NarSize }.Sign(OtherCache);
        await using var cache = TemporaryNarInfoCache.Start([found], StoreDirectory.Default);
        var directory = await cache.HoldAsync([registered], CancellationToken.None);
        var held = NarInfo.Parse(File.ReadAllText(Path.Combine(directory, found.StorePath.HashPart + ".narinfo")));
        Assert.Equal(registered.Signatures, held.Signatures);
        Assert.Equal("nar/y.nar", held.Url);
    }
}
