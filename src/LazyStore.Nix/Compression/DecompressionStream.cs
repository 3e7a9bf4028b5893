using LazyStore.Nix.IO;
using System.Buffers;
using System.Diagnostics;

namespace LazyStore.Nix.Compression;

/// <summary>
/// A read-only stream that decodes <see cref="INarDecoder"/> output straight into the caller's buffer.
/// Compressed input is read in large chunks into a pooled buffer. Sync and async reads share
/// <see cref="TryDecode"/>; they differ only in how the input buffer is refilled.
/// </summary>
internal sealed class DecompressionStream : ReadOnlyStream
{
    internal const int DefaultBufferSize = 256 * 1024;

    private readonly Stream _compressed;
    private readonly bool _leaveOpen;
    private readonly INarDecoder _decoder;
    private byte[]? _buffer;
    private int _start;
    private int _count;
    private bool _inputEnded;
    private bool _finished;

    public DecompressionStream(INarDecoder decoder, Stream compressed, bool leaveOpen, int bufferSize = DefaultBufferSize)
    {
        ArgumentNullException.ThrowIfNull(compressed);
        if (!compressed.CanRead)
            throw new ArgumentException("the compressed stream must be readable", nameof(compressed));
        _decoder = decoder;
        _compressed = compressed;
        _leaveOpen = leaveOpen;
        _buffer = ArrayPool<byte>.Shared.Rent(bufferSize);
    }

    public override bool CanRead => _buffer is not null;

    public override int Read(Span<byte> buffer)
    {
        var input = Input;
        if (buffer.IsEmpty)
            return 0;
        int written;
        while (!TryDecode(buffer, out written))
            OnRefilled(_compressed.Read(input, _count, input.Length - _count));
        return written;
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
    {
        ValidateBufferArguments(buffer, offset, count);
        return ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        var input = Input;
        if (buffer.IsEmpty)
            return 0;
        int written;
        while (!TryDecode(buffer.Span, out written))
            OnRefilled(await _compressed.ReadAsync(input.AsMemory(_count), cancellationToken).ConfigureAwait(false));
        return written;
    }

    /// <summary>
    /// Decodes buffered input into <paramref name="destination"/>. Returns true when the read is
    /// complete (<paramref name="written"/> is 0 only at the end of the data); false when the input
    /// buffer has been compacted to offset 0 and must be refilled from <c>_count</c> on.
    /// </summary>
    private bool TryDecode(Span<byte> destination, out int written)
    {
        if (_finished)
        {
            written = 0;
            return true;
        }
        var input = Input;
        var status = _decoder.Decompress(input.AsSpan(_start, _count), destination, out int consumed, out written, _inputEnded);
        _start += consumed;
        _count -= consumed;
        switch (status)
        {
            case OperationStatus.Done:
                _finished = true;
                return true;
            case OperationStatus.DestinationTooSmall:
                Debug.Assert(written > 0, "a decoder reports a full destination only after writing to it");
                return true;
            case OperationStatus.NeedMoreData:
                if (written > 0)
                    return true;
                if (_inputEnded)
                    throw new InvalidDataException($"truncated {_decoder.Codec} stream: the input ended before the end of the compressed data");
                if (_count > 0)
                    input.AsSpan(_start, _count).CopyTo(input);
                Debug.Assert(_count < input.Length, "a decoder that needs more data has consumed its input");
                _start = 0;
                return false;
            default:
                throw new InvalidDataException($"{_decoder.Codec}: compressed data is corrupt ({status})");
        }
    }

    private void OnRefilled(int read)
    {
        if (read == 0)
            _inputEnded = true;
        else
            _count += read;
    }

    private byte[] Input => _buffer ?? throw new ObjectDisposedException(nameof(DecompressionStream));

    protected override void Dispose(bool disposing)
    {
        if (disposing && ReleaseResources() && !_leaveOpen)
            _compressed.Dispose();
        base.Dispose(disposing);
    }

    public override async ValueTask DisposeAsync()
    {
        if (ReleaseResources() && !_leaveOpen)
            await _compressed.DisposeAsync().ConfigureAwait(false);
        await base.DisposeAsync().ConfigureAwait(false);
    }

    private bool ReleaseResources()
    {
        var buffer = _buffer;
        if (buffer is null)
            return false;
        _buffer = null;
        _decoder.Dispose();
        ArrayPool<byte>.Shared.Return(buffer);
        return true;
    }
}
