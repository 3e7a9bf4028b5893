using System.Buffers;
using LazyStore.Nix.Interop;

namespace LazyStore.Nix.Compression;

/// <summary>
/// Decodes the .xz format with liblzma. Concatenated streams and stream padding are accepted, as
/// <c>xz -d</c> does (LZMA_CONCATENATED); every stream's integrity check is verified.
/// </summary>
public sealed class XzDecoder : INarDecoder
{
    private readonly LzmaStreamHandle _stream = new();

    /// <param name="threads">
    /// Worker threads for the threaded decoder (liblzma 5.4+). Only .xz files written in several
    /// blocks (<c>xz -T</c>) decode in parallel; single-block files decode on one thread either way.
    /// 1 selects the plain single-threaded decoder.
    /// </param>
    public XzDecoder(int threads = 1)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        if (threads == 1)
        {
            Lzma.ThrowIfError(Lzma.lzma_stream_decoder(_stream, ulong.MaxValue, Lzma.LZMA_CONCATENATED), "lzma_stream_decoder");
            return;
        }
        var options = new Lzma.MultiThreadOptions
        {
            flags = Lzma.LZMA_CONCATENATED | Lzma.LZMA_FAIL_FAST,
            threads = (uint)threads,
            // container.h suggests a quarter of physical memory as the point where threading stops.
            memlimit_threading = Lzma.lzma_physmem() / 4,
            memlimit_stop = ulong.MaxValue,
        };
        Lzma.ThrowIfError(Lzma.lzma_stream_decoder_mt(_stream, options), "lzma_stream_decoder_mt");
    }

    string INarDecoder.Codec => "xz";

    public OperationStatus Decompress(ReadOnlySpan<byte> source, Span<byte> destination, out int bytesConsumed, out int bytesWritten, bool isFinalBlock)
    {
        var result = _stream.Code(source, destination, isFinalBlock ? Lzma.Action.LZMA_FINISH : Lzma.Action.LZMA_RUN, out bytesConsumed, out bytesWritten);
        if (result == Lzma.Return.LZMA_STREAM_END)
            return OperationStatus.Done;
        if (bytesWritten == destination.Length && destination.Length > 0)
            return OperationStatus.DestinationTooSmall;
        if (isFinalBlock && bytesConsumed == 0 && bytesWritten == 0)
        {
            // With LZMA_FINISH and output space, no progress means the input ended inside a stream;
            // liblzma itself reports LZMA_BUF_ERROR on the next call (base.h).
            Lzma.ThrowIfError(Lzma.Return.LZMA_BUF_ERROR, "lzma_code");
        }
        return OperationStatus.NeedMoreData;
    }

    public void Dispose() => _stream.Dispose();
}
