using System.Reflection;
using System.Text;
using LazyStore.Nix.Compression;

namespace LazyStore.Tests.Nix.Compression;

internal static class CompressionTestData
{
    public static readonly CompressionMethod[] AllMethods = Enum.GetValues<CompressionMethod>();

    public static readonly CompressionMethod[] CompressedMethods = AllMethods.Where(m => m != CompressionMethod.None).ToArray();

    private static readonly Lazy<byte[]> LargeText = new(BuildLargeText);

    /// <summary>
    /// About 1.2 MiB of text shaped like source listings (type and member signatures of CoreLib):
    /// realistic redundancy, deterministic for a runtime version, never random bytes.
    /// </summary>
    public static byte[] Large => LargeText.Value;

    public static byte[] OfSize(int size) => size <= Large.Length ? Large.AsSpan(0, size).ToArray() : throw new ArgumentOutOfRangeException(nameof(size));

    public static TheoryData<CompressionMethod> Methods(bool includeNone)
    {
        var data = new TheoryData<CompressionMethod>();
        foreach (var m in includeNone ? AllMethods : CompressedMethods)
            data.Add(m);
        return data;
    }

    /// <summary>The codec's own command-line tool and the flags that make it write to stdout.</summary>
    public static (string Tool, string[] CompressArgs) Cli(CompressionMethod method) => method switch
    {
        CompressionMethod.Xz => ("xz", ["-c", "-6"]),
        CompressionMethod.Zstd => ("zstd", ["-q", "-c", "-19"]),
        CompressionMethod.Bzip2 => ("bzip2", ["-c"]),
        CompressionMethod.Brotli => ("brotli", ["-c", "-q", "9"]),
        CompressionMethod.Gzip => ("gzip", ["-c", "-n"]),
        _ => throw new ArgumentOutOfRangeException(nameof(method)),
    };

    public static byte[] Compress(CompressionMethod method, ReadOnlySpan<byte> data, int? level = null)
    {
        var output = new MemoryStream();
        using (var compressor = NarCompression.Compress(method, output, leaveOpen: true, level))
            compressor.Write(data);
        return output.ToArray();
    }

    public static byte[] Decompress(CompressionMethod method, byte[] compressed)
    {
        using var decompressor = NarCompression.Decompress(method, new MemoryStream(compressed));
        var output = new MemoryStream();
        decompressor.CopyTo(output);
        return output.ToArray();
    }

    /// <summary>Level used where a test only needs valid output quickly (Brotli's default, 11, is slow).</summary>
    public static int? QuickLevel(CompressionMethod method) => method == CompressionMethod.Brotli ? 5 : null;

    private static byte[] BuildLargeText()
    {
        var text = new StringBuilder();
        foreach (var type in typeof(object).Assembly.GetExportedTypes().OrderBy(t => t.FullName, StringComparer.Ordinal))
        {
            text.Append("type ").Append(type.FullName).Append('\n');
            foreach (var member in type.GetMembers(BindingFlags.Public | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly)
                         .Select(m => m.ToString()).Order(StringComparer.Ordinal))
            {
                text.Append("  ").Append(member).Append('\n');
            }
            if (text.Length > 1_200_000)
                break;
        }
        return Encoding.UTF8.GetBytes(text.ToString());
    }
}
