using System.Buffers;
using LazyStore.Nix.Interop;

namespace LazyStore.Nix.Compression;

/// <summary>
/// Decodes Zstandard with libzstd. Consecutive frames (and skippable frames) are decoded one after
/// another, as <c>zstd -d</c> does; input that ends inside a frame is rejected. The window limit is
/// libzstd's default (2^27 bytes), the same as the CLI without <c>--long</c>/<c>--memory</c>.
/// </summary>
public sealed unsafe class ZstdDecoder : INarDecoder
{
    private readonly ZstdDecompressionContext _context;
    private bool _inFrame;
    private bool _sawFrame;

    public ZstdDecoder()
    {
        _context = Zstd.ZSTD_createDCtx();
        if (_context.IsInvalid)
            throw new OutOfMemoryException("zstd: ZSTD_createDCtx returned NULL");
    }

    string INarDecoder.Codec => "zstd";

    public OperationStatus Decompress(ReadOnlySpan<byte> source, Span<byte> destination, out int bytesConsumed, out int bytesWritten, bool isFinalBlock)
    {
        ObjectDisposedException.ThrowIf(_context.IsClosed, this);
        fixed (byte* input = source)
        fixed (byte* output = destination)
        {
            var inBuffer = new Zstd.InBuffer { src = input, size = (nuint)source.Length };
            var outBuffer = new Zstd.OutBuffer { dst = output, size = (nuint)destination.Length };
            while (true)
            {
                var before = inBuffer.pos + outBuffer.pos;
                var hint = Zstd.ThrowIfError(Zstd.ZSTD_decompressStream(_context, &outBuffer, &inBuffer), "ZSTD_decompressStream");
                if (inBuffer.pos + outBuffer.pos != before)
                {
                    _sawFrame = true;
                    // 0 means a frame was completely decoded and flushed; the context then starts the next
                    // frame (zstd.h). A call without progress returns the next frame's header size instead.
                    _inFrame = hint != 0;
                }
                bytesConsumed = (int)inBuffer.pos;
                bytesWritten = (int)outBuffer.pos;
                if (outBuffer.pos == outBuffer.size && destination.Length > 0 && _inFrame)
                    return OperationStatus.DestinationTooSmall;
                if (inBuffer.pos == inBuffer.size)
                    break;
                if (inBuffer.pos + outBuffer.pos == before)
                    return OperationStatus.DestinationTooSmall;
            }
        }
        if (!isFinalBlock)
            return OperationStatus.NeedMoreData;
        if (!_sawFrame)
            throw new InvalidDataException("truncated zstd stream: the input is empty");
        if (_inFrame)
        {
            if (bytesWritten == destination.Length && destination.Length > 0)
                return OperationStatus.DestinationTooSmall;
            throw new InvalidDataException("truncated zstd stream: the input ended inside a frame");
        }
        return OperationStatus.Done;
    }

    public void Dispose() => _context.Dispose();
}
