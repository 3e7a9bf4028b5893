using LazyStore.Nix.Compression;

namespace LazyStore.Tests.Nix.Compression;

public sealed class RoundTripTests
{
    public static TheoryData<CompressionMethod, int> MethodsAndSizes()
    {
        var data = new TheoryData<CompressionMethod, int>();
        foreach (var method in CompressionTestData.AllMethods)
        {
            foreach (var size in new[] { 0, 1, 4096, CompressionTestData.Large.Length })
                data.Add(method, size);
        }
        return data;
    }

    public static TheoryData<CompressionMethod> AllMethods() => CompressionTestData.Methods(includeNone: true);

    public static TheoryData<CompressionMethod> CompressedMethods() => CompressionTestData.Methods(includeNone: false);

    [Theory]
    [MemberData(nameof(MethodsAndSizes))]
    public void Round_trip_restores_the_input(CompressionMethod method, int size)
    {
        var data = CompressionTestData.OfSize(size);
        var compressed = CompressionTestData.Compress(method, data);
        Assert.Equal(data, CompressionTestData.Decompress(method, compressed));
    }

    [Theory]
    [MemberData(nameof(AllMethods))]
    public async Task Async_round_trip_restores_the_input(CompressionMethod method)
    {
        var data = CompressionTestData.Large;
        var compressed = new MemoryStream();
        await using (var compressor = NarCompression.Compress(method, compressed, leaveOpen: true, CompressionTestData.QuickLevel(method)))
        {
            for (int offset = 0; offset < data.Length; offset += 100_000)
                await compressor.WriteAsync(data.AsMemory(offset, Math.Min(100_000, data.Length - offset)));
        }
        compressed.Position = 0;
        await using var decompressor = NarCompression.Decompress(method, compressed);
        var output = new MemoryStream();
        await decompressor.CopyToAsync(output);
        Assert.Equal(data, output.ToArray());
    }

    [Theory]
    [MemberData(nameof(AllMethods))]
    public void Reading_one_byte_at_a_time_gives_identical_output(CompressionMethod method)
    {
        var data = CompressionTestData.OfSize(200_000);
        var compressed = CompressionTestData.Compress(method, data, CompressionTestData.QuickLevel(method));
        using var decompressor = NarCompression.Decompress(method, new MemoryStream(compressed));
        var output = new List<byte>(data.Length);
        var one = new byte[1];
        while (decompressor.Read(one, 0, 1) == 1)
            output.Add(one[0]);
        Assert.Equal(data, output.ToArray());
        Assert.Equal(-1, decompressor.ReadByte());
    }

    [Theory]
    [MemberData(nameof(AllMethods))]
    public void Writing_one_byte_at_a_time_gives_a_decodable_stream(CompressionMethod method)
    {
        var data = CompressionTestData.OfSize(20_000);
        var compressed = new MemoryStream();
        using (var compressor = NarCompression.Compress(method, compressed, leaveOpen: true, CompressionTestData.QuickLevel(method)))
        {
            foreach (var b in data)
                compressor.WriteByte(b);
        }
        Assert.Equal(data, CompressionTestData.Decompress(method, compressed.ToArray()));
    }

    [Theory]
    [MemberData(nameof(AllMethods))]
    public void Flush_makes_everything_written_so_far_decodable(CompressionMethod method)
    {
        var data = CompressionTestData.OfSize(50_000);
        var compressed = new MemoryStream();
        using var compressor = NarCompression.Compress(method, compressed, leaveOpen: true, CompressionTestData.QuickLevel(method));
        compressor.Write(data);
        compressor.Flush();
        if (method == CompressionMethod.Bzip2)
            return; // bzip2 has no sync flush: a block is emitted only when full or at the end.

        using var decompressor = NarCompression.Decompress(method, new MemoryStream(compressed.ToArray()));
        var prefix = new byte[data.Length];
        decompressor.ReadExactly(prefix);
        Assert.Equal(data, prefix);
    }

    [Theory]
    [MemberData(nameof(AllMethods))]
    public void LeaveOpen_controls_ownership_of_the_inner_stream(CompressionMethod method)
    {
        var data = CompressionTestData.OfSize(1000);
        var output = new MemoryStream();
        NarCompression.Compress(method, output, leaveOpen: true).Dispose();
        Assert.True(output.CanWrite);
        var compressed = CompressionTestData.Compress(method, data);
        var input = new MemoryStream(compressed);
        NarCompression.Decompress(method, input, leaveOpen: true).Dispose();
        Assert.True(input.CanRead);

        var owned = new MemoryStream();
        NarCompression.Compress(method, owned).Dispose();
        Assert.False(owned.CanWrite);
        var ownedInput = new MemoryStream(compressed);
        NarCompression.Decompress(method, ownedInput).Dispose();
        Assert.False(ownedInput.CanRead);
    }

    [Theory]
    [InlineData(CompressionMethod.Xz, 0)]
    [InlineData(CompressionMethod.Xz, 9)]
    [InlineData(CompressionMethod.Zstd, 1)]
    [InlineData(CompressionMethod.Zstd, 19)]
    [InlineData(CompressionMethod.Bzip2, 1)]
    [InlineData(CompressionMethod.Brotli, 1)]
    [InlineData(CompressionMethod.Gzip, 1)]
    [InlineData(CompressionMethod.Gzip, 9)]
    public void Levels_round_trip(CompressionMethod method, int level)
    {
        var data = CompressionTestData.OfSize(300_000);
        Assert.Equal(data, CompressionTestData.Decompress(method, CompressionTestData.Compress(method, data, level)));
    }

    [Theory]
    [InlineData(CompressionMethod.Xz, 10)]
    [InlineData(CompressionMethod.Zstd, 23)]
    [InlineData(CompressionMethod.Bzip2, 0)]
    [InlineData(CompressionMethod.Brotli, 12)]
    [InlineData(CompressionMethod.Gzip, 10)]
    public void Out_of_range_levels_are_rejected(CompressionMethod method, int level)
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => NarCompression.Compress(method, new MemoryStream(), level: level));
    }

    [Fact]
    public void Threaded_xz_decoder_reads_multi_block_streams()
    {
        var data = CompressionTestData.Large;
        var compressed = CompressionTestData.Compress(CompressionMethod.Xz, data, 1);
        using var decoder = new XzDecoder(threads: 4);
        var output = new byte[data.Length + 1];
        var status = decoder.Decompress(compressed, output, out int consumed, out int written, isFinalBlock: true);
        Assert.Equal(System.Buffers.OperationStatus.Done, status);
        Assert.Equal(compressed.Length, consumed);
        Assert.Equal(data, output.AsSpan(0, written).ToArray());
    }
}
