using LazyStore.Nix.Compression;

namespace LazyStore.Tests.Nix.Compression;

public sealed class NarCompressionParseTests
{
    [Theory]
    [InlineData("none", CompressionMethod.None)]
    [InlineData("", CompressionMethod.None)]
    [InlineData("xz", CompressionMethod.Xz)]
    [InlineData("zstd", CompressionMethod.Zstd)]
    [InlineData("bzip2", CompressionMethod.Bzip2)]
    [InlineData("br", CompressionMethod.Brotli)]
    [InlineData("gzip", CompressionMethod.Gzip)]
    public void Parse_accepts_every_narinfo_spelling(string value, CompressionMethod expected)
    {
        Assert.Equal(expected, NarCompression.Parse(value));
    }

    [Theory]
    [InlineData("lzip")]
    [InlineData("XZ")]
    [InlineData("zst")]
    [InlineData("brotli")]
    [InlineData(" xz")]
    public void Parse_rejects_unknown_values_naming_them(string value)
    {
        var e = Assert.Throws<UnsupportedCompressionException>(() => NarCompression.Parse(value));
        Assert.Equal(value, e.Value);
        Assert.Contains($"'{value}'", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(AllMethods))]
    public void ToNarInfoValue_round_trips_through_Parse(CompressionMethod method)
    {
        Assert.Equal(method, NarCompression.Parse(NarCompression.ToNarInfoValue(method)));
    }

    [Theory]
    [InlineData(CompressionMethod.None, ".nar")]
    [InlineData(CompressionMethod.Xz, ".nar.xz")]
    [InlineData(CompressionMethod.Zstd, ".nar.zst")]
    [InlineData(CompressionMethod.Bzip2, ".nar.bz2")]
    [InlineData(CompressionMethod.Brotli, ".nar.br")]
    [InlineData(CompressionMethod.Gzip, ".nar")] // Nix gives gzip no extension of its own.
    public void NarFileExtension_matches_the_urls_nix_writes(CompressionMethod method, string extension)
    {
        Assert.Equal(extension, NarCompression.NarFileExtension(method));
    }

    public static TheoryData<CompressionMethod> AllMethods() => CompressionTestData.Methods(includeNone: true);
}
