using System.Buffers;
using LazyStore.Nix.Interop;

namespace LazyStore.Nix.Compression;

/// <summary>Writes one .xz stream with liblzma's LZMA2 presets and a CRC64 check, as <c>xz</c> does by default.</summary>
public sealed class XzEncoder : INarEncoder
{
    /// <summary>The preset <c>xz</c> and Nix use when none is given.</summary>
    public const int DefaultPreset = 6;

    private readonly LzmaStreamHandle _stream = new();

    /// <param name="preset">0 (fastest) to 9 (smallest).</param>
    /// <param name="extreme">Adds LZMA_PRESET_EXTREME (<c>xz -e</c>).</param>
    public XzEncoder(int preset = DefaultPreset, bool extreme = false)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(preset, 0);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(preset, 9);
        uint flags = (uint)preset | (extreme ? 1u << 31 : 0u);
        Lzma.ThrowIfError(Lzma.lzma_easy_encoder(_stream, flags, Lzma.Check.LZMA_CHECK_CRC64), "lzma_easy_encoder");
    }

    public OperationStatus Compress(ReadOnlySpan<byte> source, Span<byte> destination, out int bytesConsumed, out int bytesWritten, bool isFinalBlock)
    {
        var result = _stream.Code(source, destination, isFinalBlock ? Lzma.Action.LZMA_FINISH : Lzma.Action.LZMA_RUN, out bytesConsumed, out bytesWritten);
        if (result == Lzma.Return.LZMA_STREAM_END)
            return OperationStatus.Done;
        if (isFinalBlock || bytesConsumed < source.Length)
            return OperationStatus.DestinationTooSmall;
        return OperationStatus.NeedMoreData;
    }

    /// <summary>LZMA_SYNC_FLUSH: everything written so far becomes decodable; the stream stays open.</summary>
    public OperationStatus Flush(Span<byte> destination, out int bytesWritten)
    {
        var result = _stream.Code([], destination, Lzma.Action.LZMA_SYNC_FLUSH, out _, out bytesWritten);
        return result == Lzma.Return.LZMA_STREAM_END ? OperationStatus.Done : OperationStatus.DestinationTooSmall;
    }

    public void Dispose() => _stream.Dispose();
}
