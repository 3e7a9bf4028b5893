using LazyStore.Store.Substituters;
using LazyStore.Tests.Support;

namespace LazyStore.Tests.Store.Substituters;

public sealed class FileBinaryCacheTransportTests
{
    [Fact]
    public async Task Reads_a_file_of_the_cache()
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir.Sub("cache/nar"));
        File.WriteAllText(dir.Sub("cache/nar/x.nar"), "nar bytes");
        using var transport = new FileBinaryCacheTransport(new Uri(dir.Sub("cache")));
        Assert.Equal("nar bytes"u8.ToArray(), await transport.TryGetBytesAsync("nar/x.nar", 100, default));
        using var response = await transport.TryOpenAsync("nar/x.nar", default);
        Assert.Equal(9, response?.Length);
    }

    [Fact]
    public async Task An_absent_file_is_not_in_this_cache()
    {
        using var dir = new TempDir();
        using var transport = new FileBinaryCacheTransport(new Uri(dir.Path));
        Assert.Null(await transport.TryGetBytesAsync("0123.narinfo", 100, default));
        Assert.Null(await transport.TryOpenAsync("nar/no/such.nar", default));
    }

    [Theory]
    [InlineData("../secret")]
    [InlineData("nar/../../secret")]
    [InlineData("/etc/hostname")]
    public async Task Paths_leaving_the_cache_directory_are_refused(string relativePath)
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir.Sub("cache"));
        File.WriteAllText(dir.Sub("secret"), "secret");
        using var transport = new FileBinaryCacheTransport(new Uri(dir.Sub("cache")));
        var e = await Assert.ThrowsAsync<BinaryCacheException>(() => transport.TryGetBytesAsync(relativePath, 100, default));
        Assert.Contains("leaves the cache directory", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task More_than_maxBytes_is_refused()
    {
        using var dir = new TempDir();
        File.WriteAllBytes(dir.Sub("x.narinfo"), new byte[101]);
        using var transport = new FileBinaryCacheTransport(new Uri(dir.Path));
        await Assert.ThrowsAsync<BinaryCacheException>(() => transport.TryGetBytesAsync("x.narinfo", 100, default));
    }
}
