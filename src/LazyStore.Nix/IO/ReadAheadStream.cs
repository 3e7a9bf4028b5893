using System.Buffers;
using System.Threading.Channels;

namespace LazyStore.Nix.IO;

/// <summary>
/// Reads its source on a background task, a bounded number of buffers ahead of the consumer, so that
/// producing the bytes (download, decompression) and consuming them (hashing, writing, parsing) use two
/// cores. Memory is bounded by <c>bufferSize × depth</c>. An exception of the source is rethrown to the
/// consumer at the point the data ran out.
/// </summary>
public sealed class ReadAheadStream : ReadOnlyStream
{
    private readonly Channel<Chunk> _chunks;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _producer;
    private Chunk? _current;
    private int _currentOffset;
    private bool _finished;
    private bool _disposed;

    public ReadAheadStream(Stream source, int bufferSize = 256 * 1024, int depth = 8)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(bufferSize, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(depth, 1);
        _chunks = Channel.CreateBounded<Chunk>(new BoundedChannelOptions(depth) { SingleReader = true, SingleWriter = true });
        // A thread of its own: decoders block in Read, and a download may last minutes.
        _producer = Task.Factory.StartNew(() => Produce(source, bufferSize, _stop.Token), CancellationToken.None,
            TaskCreationOptions.LongRunning, TaskScheduler.Default);
    }

    private sealed record Chunk(byte[] Buffer, int Length);

    private void Produce(Stream source, int bufferSize, CancellationToken cancellationToken)
    {
        try
        {
            while (true)
            {
                var buffer = ArrayPool<byte>.Shared.Rent(bufferSize);
                int filled = 0;
                int n;
                // Fill whole buffers: decoders return small pieces, and fewer, larger chunks cost less to hand over.
                while (filled < bufferSize && (n = source.Read(buffer.AsSpan(filled, bufferSize - filled))) > 0)
                {
                    filled += n;
                    cancellationToken.ThrowIfCancellationRequested();
                }
                if (filled == 0)
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                    break;
                }
                var chunk = new Chunk(buffer, filled);
                while (!_chunks.Writer.TryWrite(chunk))
                {
                    if (!_chunks.Writer.WaitToWriteAsync(cancellationToken).AsTask().GetAwaiter().GetResult())
                        return;
                }
                if (filled < bufferSize)
                    break;
            }
            _chunks.Writer.TryComplete();
        }
        catch (Exception e)
        {
            _chunks.Writer.TryComplete(e is OperationCanceledException && cancellationToken.IsCancellationRequested ? null : e);
        }
    }

    public override int Read(Span<byte> buffer)
    {
        if (buffer.Length == 0 || !EnsureChunk())
            return 0;
        return CopyOut(buffer);
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (buffer.Length == 0 || _finished)
            return 0;
        if (_current is null)
        {
            if (!await _chunks.Reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
            {
                Finish();
                return 0;
            }
            _chunks.Reader.TryRead(out _current);
            _currentOffset = 0;
        }
        return CopyOut(buffer.Span);
    }

    private bool EnsureChunk()
    {
        if (_finished)
            return false;
        if (_current is not null)
            return true;
        if (_chunks.Reader.TryRead(out _current))
        {
            _currentOffset = 0;
            return true;
        }
        if (!_chunks.Reader.WaitToReadAsync().AsTask().GetAwaiter().GetResult())
        {
            Finish();
            return false;
        }
        _chunks.Reader.TryRead(out _current);
        _currentOffset = 0;
        return true;
    }

    private void Finish()
    {
        _finished = true;
        // Rethrows the source's failure, if it had one.
        _chunks.Reader.Completion.GetAwaiter().GetResult();
    }

    private int CopyOut(Span<byte> destination)
    {
        var chunk = _current!;
        var n = Math.Min(destination.Length, chunk.Length - _currentOffset);
        chunk.Buffer.AsSpan(_currentOffset, n).CopyTo(destination);
        _currentOffset += n;
        if (_currentOffset == chunk.Length)
        {
            ArrayPool<byte>.Shared.Return(chunk.Buffer);
            _current = null;
        }
        return n;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing && !_disposed)
        {
            _disposed = true;
            _stop.Cancel();
            // Unblock a producer waiting for room, then wait for it so the source is no longer in use.
            while (_chunks.Reader.TryRead(out var chunk))
                ArrayPool<byte>.Shared.Return(chunk.Buffer);
            try
            {
                _producer.Wait();
            }
            catch (AggregateException)
            {
                // The failure was reported to the reader, or nobody is left to care.
            }
            while (_chunks.Reader.TryRead(out var chunk))
                ArrayPool<byte>.Shared.Return(chunk.Buffer);
            if (_current is not null)
                ArrayPool<byte>.Shared.Return(_current.Buffer);
            _current = null;
            _stop.Dispose();
        }
        base.Dispose(disposing);
    }
}
