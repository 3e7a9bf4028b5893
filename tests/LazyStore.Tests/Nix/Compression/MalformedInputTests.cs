using LazyStore.Nix.Compression;

namespace LazyStore.Tests.Nix.Compression;

public sealed class MalformedInputTests
{
    public static TheoryData<CompressionMethod> CompressedMethods() => CompressionTestData.Methods(includeNone: false);

    private static string Codec(CompressionMethod method) => NarCompression.ToNarInfoValue(method);

    [Theory]
    [MemberData(nameof(CompressedMethods))]
    public void Truncated_input_throws_at_every_cut(CompressionMethod method)
    {
        var data = CompressionTestData.OfSize(300_000);
        var compressed = CompressionTestData.Compress(method, data, CompressionTestData.QuickLevel(method));
        foreach (var cut in new[] { 0, 1, 5, compressed.Length / 3, compressed.Length / 2, compressed.Length - 8, compressed.Length - 4, compressed.Length - 1 })
        {
            var e = Assert.Throws<InvalidDataException>(() => CompressionTestData.Decompress(method, compressed[..cut]));
            Assert.Contains(Codec(method), e.Message, StringComparison.Ordinal);
        }
    }

    [Theory]
    [MemberData(nameof(CompressedMethods))]
    public async Task Truncated_input_throws_on_the_async_path(CompressionMethod method)
    {
        var compressed = CompressionTestData.Compress(method, CompressionTestData.OfSize(100_000), CompressionTestData.QuickLevel(method));
        await using var decompressor = NarCompression.Decompress(method, new MemoryStream(compressed[..^3]));
        await Assert.ThrowsAsync<InvalidDataException>(() => decompressor.CopyToAsync(Stream.Null));
    }

    [Theory]
    [MemberData(nameof(CompressedMethods))]
    public void Truncated_input_throws_with_one_byte_reads(CompressionMethod method)
    {
        var compressed = CompressionTestData.Compress(method, CompressionTestData.OfSize(10_000), CompressionTestData.QuickLevel(method));
        using var decompressor = NarCompression.Decompress(method, new MemoryStream(compressed[..^1]));
        Assert.Throws<InvalidDataException>(() =>
        {
            while (decompressor.ReadByte() >= 0)
            {
            }
        });
    }

    /// <summary>
    /// Flips bits in the middle of the compressed data. xz, zstd (content checksum on), bzip2 and gzip
    /// carry checksums, so any flip is detected.
    /// </summary>
    [Theory]
    [InlineData(CompressionMethod.Xz)]
    [InlineData(CompressionMethod.Zstd)]
    [InlineData(CompressionMethod.Bzip2)]
    [InlineData(CompressionMethod.Gzip)]
    public void Corrupted_input_throws_naming_the_codec(CompressionMethod method)
    {
        var compressed = CompressionTestData.Compress(method, CompressionTestData.OfSize(300_000));
        compressed[compressed.Length / 2] ^= 0x55;
        var e = Assert.Throws<InvalidDataException>(() => CompressionTestData.Decompress(method, compressed));
        Assert.Contains(Codec(method), e.Message, StringComparison.Ordinal);
    }

    /// <summary>Input that is not in the codec's format at all (here: an uncompressed NAR header).</summary>
    [Theory]
    [MemberData(nameof(CompressedMethods))]
    public void Foreign_input_throws_naming_the_codec(CompressionMethod method)
    {
        var nar = new byte[64];
        nar[0] = 13;
        "nix-archive-1"u8.CopyTo(nar.AsSpan(8));
        var e = Assert.Throws<InvalidDataException>(() => CompressionTestData.Decompress(method, nar));
        Assert.Contains(Codec(method), e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Brotli_rejects_data_after_the_end_of_the_stream()
    {
        var compressed = CompressionTestData.Compress(CompressionMethod.Brotli, CompressionTestData.OfSize(1000));
        var e = Assert.Throws<InvalidDataException>(() => CompressionTestData.Decompress(CompressionMethod.Brotli, [.. compressed, 1, 2, 3]));
        Assert.Contains("br", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(CompressionMethod.Xz)]
    [InlineData(CompressionMethod.Zstd)]
    public void Trailing_garbage_after_native_streams_throws(CompressionMethod method)
    {
        var compressed = CompressionTestData.Compress(method, CompressionTestData.OfSize(1000));
        Assert.Throws<InvalidDataException>(() => CompressionTestData.Decompress(method, [.. compressed, 1, 2, 3, 4, 5, 6, 7, 8]));
    }
}
