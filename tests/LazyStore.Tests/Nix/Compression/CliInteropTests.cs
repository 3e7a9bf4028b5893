using LazyStore.Nix.Compression;
using LazyStore.Tests.Support;

namespace LazyStore.Tests.Nix.Compression;

/// <summary>Cross-checks against the reference command-line tools of each format.</summary>
public sealed class CliInteropTests
{
    public static TheoryData<CompressionMethod> CompressedMethods() => CompressionTestData.Methods(includeNone: false);

    private static byte[] CliCompress(CompressionMethod method, byte[] data)
    {
        var (tool, args) = CompressionTestData.Cli(method);
        return ExternalTool.Run(RequiredTools.Require(tool), args, stdin: new MemoryStream(data)).EnsureSuccess($"{tool} {string.Join(' ', args)}").Stdout;
    }

    private static byte[] CliDecompress(CompressionMethod method, byte[] compressed)
    {
        var (tool, _) = CompressionTestData.Cli(method);
        return ExternalTool.Run(RequiredTools.Require(tool), ["-d", "-c"], stdin: new MemoryStream(compressed)).EnsureSuccess($"{tool} -d -c").Stdout;
    }

    [ToolTheory("xz", "zstd", "bzip2", "brotli", "gzip")]
    [MemberData(nameof(CompressedMethods))]
    public void Decodes_what_the_cli_tool_wrote(CompressionMethod method)
    {
        var data = CompressionTestData.Large;
        Assert.Equal(data, CompressionTestData.Decompress(method, CliCompress(method, data)));
    }

    [ToolTheory("xz", "zstd", "bzip2", "brotli", "gzip")]
    [MemberData(nameof(CompressedMethods))]
    public void Cli_tool_decodes_what_the_encoder_wrote(CompressionMethod method)
    {
        var data = CompressionTestData.Large;
        Assert.Equal(data, CliDecompress(method, CompressionTestData.Compress(method, data, CompressionTestData.QuickLevel(method))));
    }

    [ToolTheory("xz", "zstd", "bzip2", "brotli", "gzip")]
    [MemberData(nameof(CompressedMethods))]
    public void Cli_tool_decodes_the_encoding_of_empty_input(CompressionMethod method)
    {
        Assert.Empty(CliDecompress(method, CompressionTestData.Compress(method, [])));
    }

    /// <summary>
    /// Concatenated .xz streams, zstd frames, bzip2 streams and gzip members decode as the
    /// concatenation of their contents, as the CLI tools do. Brotli has no such form.
    /// </summary>
    [ToolTheory("xz", "zstd", "bzip2", "gzip")]
    [InlineData(CompressionMethod.Xz)]
    [InlineData(CompressionMethod.Zstd)]
    [InlineData(CompressionMethod.Bzip2)]
    [InlineData(CompressionMethod.Gzip)]
    public void Concatenated_streams_decode_in_order(CompressionMethod method)
    {
        var first = CompressionTestData.OfSize(300_000);
        var second = CompressionTestData.Large.AsSpan(500_000, 200_000).ToArray();
        byte[] concatenated = [.. CliCompress(method, first), .. CliCompress(method, []), .. CompressionTestData.Compress(method, second)];
        byte[] expected = [.. first, .. second];
        Assert.Equal(expected, CliDecompress(method, concatenated));
        Assert.Equal(expected, CompressionTestData.Decompress(method, concatenated));
    }

    [ToolFact("xz")]
    public void Xz_stream_padding_between_streams_is_accepted()
    {
        var data = CompressionTestData.OfSize(10_000);
        // .xz file format 1.1.0, section 2.2: Stream Padding is a multiple of four null bytes.
        byte[] padded = [.. CliCompress(CompressionMethod.Xz, data), 0, 0, 0, 0, .. CliCompress(CompressionMethod.Xz, data), 0, 0, 0, 0];
        Assert.Equal([.. data, .. data], CompressionTestData.Decompress(CompressionMethod.Xz, padded));
    }

    [ToolFact("xz")]
    public void Multi_block_xz_from_threaded_cli_decodes_with_and_without_threads()
    {
        var data = CompressionTestData.Large;
        var compressed = ExternalTool.Run(RequiredTools.Require("xz"), ["-c", "-1", "-T2", "--block-size=200000"], stdin: new MemoryStream(data)).EnsureSuccess("xz -T2").Stdout;
        Assert.Equal(data, CompressionTestData.Decompress(CompressionMethod.Xz, compressed));
        using var stream = new DecompressionStream(new XzDecoder(threads: 2), new MemoryStream(compressed), leaveOpen: false);
        var output = new MemoryStream();
        stream.CopyTo(output);
        Assert.Equal(data, output.ToArray());
    }
}
