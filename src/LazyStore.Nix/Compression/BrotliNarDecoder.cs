using System.Buffers;
using System.IO.Compression;

namespace LazyStore.Nix.Compression;

/// <summary>
/// Puts the framework's <see cref="BrotliDecoder"/> under the <see cref="INarDecoder"/> contract:
/// <see cref="BrotliStream"/> returns a clean end on truncated input and ignores bytes after the
/// stream, so both are checked here. A Brotli stream has no checksum; corruption inside literals
/// is caught only by the NAR hash.
/// </summary>
internal sealed class BrotliNarDecoder : INarDecoder
{
    private BrotliDecoder _decoder;
    private bool _ended;
    private bool _sawInput;

    public string Codec => "br";

    public OperationStatus Decompress(ReadOnlySpan<byte> source, Span<byte> destination, out int bytesConsumed, out int bytesWritten, bool isFinalBlock)
    {
        if (!source.IsEmpty)
            _sawInput = true;
        if (_ended)
        {
            bytesConsumed = 0;
            bytesWritten = 0;
            if (!source.IsEmpty)
                throw new InvalidDataException("br: unexpected data after the end of the Brotli stream");
            return isFinalBlock ? OperationStatus.Done : OperationStatus.NeedMoreData;
        }
        var status = _decoder.Decompress(source, destination, out bytesConsumed, out bytesWritten);
        switch (status)
        {
            case OperationStatus.Done:
                _ended = true;
                if (bytesConsumed < source.Length)
                    throw new InvalidDataException("br: unexpected data after the end of the Brotli stream");
                return isFinalBlock ? OperationStatus.Done : OperationStatus.NeedMoreData;
            case OperationStatus.DestinationTooSmall:
                return status;
            case OperationStatus.NeedMoreData:
                if (isFinalBlock && bytesWritten == 0)
                {
                    throw new InvalidDataException(_sawInput
                        ? "truncated br stream: the input ended inside the Brotli stream"
                        : "truncated br stream: the input is empty");
                }
                return status;
            default:
                throw new InvalidDataException("br: compressed data is corrupt (BrotliDecoder reported invalid data)");
        }
    }

    public void Dispose() => _decoder.Dispose();
}
