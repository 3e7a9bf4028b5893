namespace LazyStore.Nix.Compression;

/// <summary>
/// A narinfo names a compression this library cannot decode (Nix also knows <c>lzip</c>, <c>lz4</c>,
/// <c>grzip</c>, <c>lrzip</c> and others through libarchive). It derives from
/// <see cref="NotSupportedException"/>, not <see cref="InvalidDataException"/> (which is sealed):
/// the narinfo may be perfectly valid for Nix, so a substituter should skip this cache entry for
/// another source rather than report the cache as corrupt.
/// </summary>
public sealed class UnsupportedCompressionException : NotSupportedException
{
    public UnsupportedCompressionException(string value)
        : base($"unsupported NAR compression '{value}' (supported: none, xz, zstd, bzip2, br, gzip)")
    {
        Value = value;
    }

    /// <summary>The narinfo <c>Compression:</c> value as found.</summary>
    public string Value { get; }
}
