using System.Buffers;
using System.Diagnostics;

namespace LazyStore.Nix.Compression;

/// <summary>
/// A write-only stream that encodes with an <see cref="INarEncoder"/> straight from the caller's
/// buffer into a pooled output buffer, written out when full. <see cref="Flush()"/> makes everything
/// written so far decodable (a sync flush, as <see cref="System.IO.Compression.BrotliStream"/> does);
/// disposing finishes the stream. Sync and async writes share <see cref="Encode"/>; they differ
/// only in how the output buffer is drained.
/// </summary>
internal sealed class CompressionStream : Stream
{
    internal const int DefaultBufferSize = 256 * 1024;

    private enum Step
    {
        Write,
        Flush,
        Finish,
    }

    private readonly Stream _output;
    private readonly bool _leaveOpen;
    private readonly INarEncoder _encoder;
    private byte[]? _buffer;
    private int _pending;

    public CompressionStream(INarEncoder encoder, Stream output, bool leaveOpen, int bufferSize = DefaultBufferSize)
    {
        ArgumentNullException.ThrowIfNull(output);
        if (!output.CanWrite)
            throw new ArgumentException("the output stream must be writable", nameof(output));
        _encoder = encoder;
        _output = output;
        _leaveOpen = leaveOpen;
        _buffer = ArrayPool<byte>.Shared.Rent(bufferSize);
    }

    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => _buffer is not null;
    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public override void Write(byte[] buffer, int offset, int count)
    {
        ValidateBufferArguments(buffer, offset, count);
        Write(buffer.AsSpan(offset, count));
    }

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        while (!Encode(Step.Write, buffer, out int consumed))
        {
            buffer = buffer[consumed..];
            Drain();
        }
    }

    public override void WriteByte(byte value) => Write([value]);

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
    {
        ValidateBufferArguments(buffer, offset, count);
        return WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();
    }

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        while (!Encode(Step.Write, buffer.Span, out int consumed))
        {
            buffer = buffer[consumed..];
            await DrainAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    public override void Flush()
    {
        while (!Encode(Step.Flush, [], out _))
            Drain();
        Drain();
        _output.Flush();
    }

    public override async Task FlushAsync(CancellationToken cancellationToken)
    {
        while (!Encode(Step.Flush, [], out _))
            await DrainAsync(cancellationToken).ConfigureAwait(false);
        await DrainAsync(cancellationToken).ConfigureAwait(false);
        await _output.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Runs the encoder into the free part of the output buffer. Returns true when the step is
    /// complete: all of <paramref name="source"/> consumed, or the flush or finish done. False means
    /// the output buffer must be drained before calling again with the unconsumed rest.
    /// </summary>
    private bool Encode(Step step, ReadOnlySpan<byte> source, out int consumed)
    {
        var buffer = _buffer ?? throw new ObjectDisposedException(nameof(CompressionStream));
        var free = buffer.AsSpan(_pending);
        if (free.IsEmpty)
        {
            consumed = 0;
            return step == Step.Write && source.IsEmpty;
        }
        int written;
        OperationStatus status;
        switch (step)
        {
            case Step.Write:
                status = _encoder.Compress(source, free, out consumed, out written, isFinalBlock: false);
                break;
            case Step.Flush:
                consumed = 0;
                status = _encoder.Flush(free, out written);
                break;
            default:
                status = _encoder.Compress([], free, out consumed, out written, isFinalBlock: true);
                break;
        }
        _pending += written;
        Debug.Assert(status != OperationStatus.InvalidData, "encoders throw on errors");
        return step == Step.Write ? consumed == source.Length : status == OperationStatus.Done;
    }

    private void Drain()
    {
        if (_pending == 0)
            return;
        _output.Write(_buffer.AsSpan(0, _pending));
        _pending = 0;
    }

    private async ValueTask DrainAsync(CancellationToken cancellationToken)
    {
        if (_pending == 0 || _buffer is null)
            return;
        await _output.WriteAsync(_buffer.AsMemory(0, _pending), cancellationToken).ConfigureAwait(false);
        _pending = 0;
    }

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        try
        {
            if (disposing && _buffer is not null)
            {
                while (!Encode(Step.Finish, [], out _))
                    Drain();
                Drain();
            }
        }
        finally
        {
            if (disposing && ReleaseResources() && !_leaveOpen)
                _output.Dispose();
            base.Dispose(disposing);
        }
    }

    public override async ValueTask DisposeAsync()
    {
        try
        {
            if (_buffer is not null)
            {
                while (!Encode(Step.Finish, [], out _))
                    await DrainAsync(default).ConfigureAwait(false);
                await DrainAsync(default).ConfigureAwait(false);
            }
        }
        finally
        {
            if (ReleaseResources() && !_leaveOpen)
                await _output.DisposeAsync().ConfigureAwait(false);
            GC.SuppressFinalize(this);
        }
    }

    private bool ReleaseResources()
    {
        var buffer = _buffer;
        if (buffer is null)
            return false;
        _buffer = null;
        _encoder.Dispose();
        ArrayPool<byte>.Shared.Return(buffer);
        return true;
    }
}
