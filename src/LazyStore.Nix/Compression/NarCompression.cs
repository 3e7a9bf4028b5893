using System.IO.Compression;
using ICSharpCode.SharpZipLib.BZip2;
using ICSharpCode.SharpZipLib.GZip;
using LazyStore.Nix.Interop;

namespace LazyStore.Nix.Compression;

/// <summary>
/// The compressions a binary cache may apply to NARs (narinfo <c>Compression:</c>), and streams that
/// decode and encode them. Decoding streams throw <see cref="InvalidDataException"/>, naming the
/// codec, for corrupt, truncated or empty input; they never end early with a clean end of stream.
/// </summary>
public static class NarCompression
{
    /// <summary>
    /// Parses a narinfo <c>Compression:</c> value. The spellings are Nix's; a missing or empty field
    /// means <c>none</c>, as a narinfo without the field is read by Nix (nar-info.cc).
    /// </summary>
    /// <exception cref="UnsupportedCompressionException">Any other value.</exception>
    public static CompressionMethod Parse(string narInfoValue)
    {
        ArgumentNullException.ThrowIfNull(narInfoValue);
        return narInfoValue switch
        {
            "" or "none" => CompressionMethod.None,
            "xz" => CompressionMethod.Xz,
            "zstd" => CompressionMethod.Zstd,
            "bzip2" => CompressionMethod.Bzip2,
            "br" => CompressionMethod.Brotli,
            "gzip" => CompressionMethod.Gzip,
            _ => throw new UnsupportedCompressionException(narInfoValue),
        };
    }

    /// <summary>The narinfo spelling of <paramref name="method"/>.</summary>
    public static string ToNarInfoValue(CompressionMethod method) => method switch
    {
        CompressionMethod.None => "none",
        CompressionMethod.Xz => "xz",
        CompressionMethod.Zstd => "zstd",
        CompressionMethod.Bzip2 => "bzip2",
        CompressionMethod.Brotli => "br",
        CompressionMethod.Gzip => "gzip",
        _ => throw new ArgumentOutOfRangeException(nameof(method), method, null),
    };

    /// <summary>
    /// The suffix Nix gives the NAR file in a binary cache (<c>nar/&lt;filehash&gt;.nar.xz</c>). Nix maps
    /// only xz, bzip2, zstd, lzip, lz4 and br to an extension (binary-cache-store.cc); a gzip NAR is
    /// named <c>.nar</c>, as Nix 2.8's <c>nix copy --to file://…?compression=gzip</c> confirms.
    /// </summary>
    public static string NarFileExtension(CompressionMethod method) => method switch
    {
        CompressionMethod.None => ".nar",
        CompressionMethod.Xz => ".nar.xz",
        CompressionMethod.Zstd => ".nar.zst",
        CompressionMethod.Bzip2 => ".nar.bz2",
        CompressionMethod.Brotli => ".nar.br",
        CompressionMethod.Gzip => ".nar",
        _ => throw new ArgumentOutOfRangeException(nameof(method), method, null),
    };

    /// <summary>A read-only stream of the uncompressed NAR bytes of <paramref name="compressed"/>.</summary>
    public static Stream Decompress(CompressionMethod method, Stream compressed, bool leaveOpen = false)
    {
        ArgumentNullException.ThrowIfNull(compressed);
        return method switch
        {
            CompressionMethod.None => leaveOpen ? new BorrowedStream(compressed) : compressed,
            CompressionMethod.Xz => new DecompressionStream(new XzDecoder(), compressed, leaveOpen),
            CompressionMethod.Zstd => new DecompressionStream(new ZstdDecoder(), compressed, leaveOpen),
            CompressionMethod.Brotli => new DecompressionStream(new BrotliNarDecoder(), compressed, leaveOpen),
            CompressionMethod.Bzip2 => new ManagedDecompressionStream("bzip2", compressed, input => new BZip2InputStream(input) { IsStreamOwner = false }, leaveOpen),
            // SharpZipLib rather than GZipStream: the framework's inflater returns a clean end on truncated input.
            CompressionMethod.Gzip => new ManagedDecompressionStream("gzip", compressed, input => new GZipInputStream(input, DecompressionStream.DefaultBufferSize) { IsStreamOwner = false }, leaveOpen),
            _ => throw new ArgumentOutOfRangeException(nameof(method), method, null),
        };
    }

    /// <summary>
    /// A write-only stream compressing into <paramref name="output"/>; disposing it writes the end of
    /// the compressed stream. <paramref name="level"/> is the codec's own scale (xz preset 0–9,
    /// zstd −7–22, bzip2 block size 1–9, Brotli quality 0–11, gzip 0–9); null takes the CLI tool's default.
    /// </summary>
    public static Stream Compress(CompressionMethod method, Stream output, bool leaveOpen = false, int? level = null)
    {
        ArgumentNullException.ThrowIfNull(output);
        return method switch
        {
            CompressionMethod.None => leaveOpen ? new BorrowedStream(output) : output,
            CompressionMethod.Xz => new CompressionStream(new XzEncoder(level ?? XzEncoder.DefaultPreset), output, leaveOpen),
            CompressionMethod.Zstd => new CompressionStream(new ZstdEncoder(level ?? Zstd.DefaultLevel), output, leaveOpen),
            CompressionMethod.Bzip2 => new BZip2OutputStream(output, CheckLevel(level ?? 9, 1, 9)) { IsStreamOwner = !leaveOpen },
            CompressionMethod.Brotli => new BrotliStream(output, new BrotliCompressionOptions { Quality = CheckLevel(level ?? 11, 0, 11) }, leaveOpen),
            // SharpZipLib rather than GZipStream: the framework writes nothing at all for empty input, not an empty gzip member.
            CompressionMethod.Gzip => GzipOutput(output, leaveOpen, CheckLevel(level ?? 6, 0, 9)),
            _ => throw new ArgumentOutOfRangeException(nameof(method), method, null),
        };
    }

    private static GZipOutputStream GzipOutput(Stream output, bool leaveOpen, int level)
    {
        var gzip = new GZipOutputStream(output, CompressionStream.DefaultBufferSize) { IsStreamOwner = !leaveOpen };
        gzip.SetLevel(level);
        return gzip;
    }

    private static int CheckLevel(int level, int min, int max)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(level, min, nameof(level));
        ArgumentOutOfRangeException.ThrowIfGreaterThan(level, max, nameof(level));
        return level;
    }
}
