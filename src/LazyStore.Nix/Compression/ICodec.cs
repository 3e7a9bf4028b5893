using System.Buffers;

namespace LazyStore.Nix.Compression;

/// <summary>
/// A span-based decoder driven by <see cref="DecompressionStream"/>. Contract: malformed input throws
/// <see cref="InvalidDataException"/>; <see cref="OperationStatus.Done"/> is returned only once
/// <c>isFinalBlock</c> is set and the whole input formed complete streams; a final block that leaves a
/// stream unfinished throws (truncated input), never returns a clean end.
/// </summary>
internal interface INarDecoder : IDisposable
{
    /// <summary>The narinfo spelling, used in error messages.</summary>
    string Codec { get; }

    OperationStatus Decompress(ReadOnlySpan<byte> source, Span<byte> destination, out int bytesConsumed, out int bytesWritten, bool isFinalBlock);
}

/// <summary>
/// A span-based encoder driven by <see cref="CompressionStream"/>, shaped like
/// <see cref="System.IO.Compression.BrotliEncoder"/>: <c>Compress</c> with <c>isFinalBlock</c> and
/// <c>Flush</c> return <see cref="OperationStatus.Done"/> once all output has been written.
/// </summary>
internal interface INarEncoder : IDisposable
{
    OperationStatus Compress(ReadOnlySpan<byte> source, Span<byte> destination, out int bytesConsumed, out int bytesWritten, bool isFinalBlock);

    OperationStatus Flush(Span<byte> destination, out int bytesWritten);
}
