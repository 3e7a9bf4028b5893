namespace LazyStore.Nix.Compression;

/// <summary>The compression of a NAR file in a binary cache, the narinfo <c>Compression:</c> field.</summary>
public enum CompressionMethod
{
    /// <summary><c>none</c>: the NAR as is.</summary>
    None,

    /// <summary><c>xz</c>: the .xz container, LZMA2.</summary>
    Xz,

    /// <summary><c>zstd</c>: Zstandard frames.</summary>
    Zstd,

    /// <summary><c>bzip2</c>.</summary>
    Bzip2,

    /// <summary><c>br</c>: Brotli.</summary>
    Brotli,

    /// <summary><c>gzip</c>.</summary>
    Gzip,
}
