using LazyStore.Nix.IO;
using System.Buffers;
using ICSharpCode.SharpZipLib;

namespace LazyStore.Nix.Compression;

/// <summary>
/// Runs a stream decoder from a managed library (SharpZipLib's bzip2 and gzip) under the same rules
/// as the native codecs: empty or truncated input and the library's own exceptions become
/// <see cref="InvalidDataException"/> naming the codec, and concatenated streams are decoded one after
/// another, as <c>bzip2 -d</c> and <c>gzip -d</c> do. The compressed input is buffered here, so a
/// decoder that reads byte by byte (bzip2) never reaches the underlying stream per byte, and no
/// byte past one stream's end is lost to the next.
/// </summary>
internal sealed class ManagedDecompressionStream : ReadOnlyStream
{
    private readonly string _codec;
    private readonly Func<Stream, Stream> _openStream;
    private readonly BufferedInput _input;
    private readonly bool _leaveOpen;
    private Stream? _current;
    private bool _sawStream;
    private bool _finished;
    private bool _disposed;

    /// <param name="openStream">Opens a decoder over the shared input that must not close it.</param>
    public ManagedDecompressionStream(string codec, Stream compressed, Func<Stream, Stream> openStream, bool leaveOpen)
    {
        ArgumentNullException.ThrowIfNull(compressed);
        if (!compressed.CanRead)
            throw new ArgumentException("the compressed stream must be readable", nameof(compressed));
        _codec = codec;
        _openStream = openStream;
        _input = new BufferedInput(compressed);
        _leaveOpen = leaveOpen;
    }

    public override bool CanRead => !_disposed;

    public override int Read(Span<byte> buffer)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (buffer.IsEmpty || _finished)
            return 0;
        try
        {
            while (true)
            {
                if (_current is null)
                {
                    if (_input.AtEnd())
                    {
                        if (!_sawStream)
                            throw new InvalidDataException($"truncated {_codec} stream: the input is empty");
                        _finished = true;
                        return 0;
                    }
                    _current = _openStream(_input);
                    _sawStream = true;
                }
                int read = _current.Read(buffer);
                if (read > 0)
                    return read;
                _current.Dispose();
                _current = null;
            }
        }
        catch (EndOfStreamException e)
        {
            throw new InvalidDataException($"truncated {_codec} stream: {e.Message}", e);
        }
        catch (SharpZipBaseException e)
        {
            throw new InvalidDataException($"{_codec}: compressed data is corrupt: {e.Message}", e);
        }
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
    {
        ValidateBufferArguments(buffer, offset, count);
        return ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();
    }

    /// <summary>
    /// The libraries decode synchronously; waiting for compressed input is what may take long, so
    /// the input buffer is refilled asynchronously first and decoding then runs on buffered bytes.
    /// </summary>
    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        await _input.FillAsync(cancellationToken).ConfigureAwait(false);
        return Read(buffer.Span);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing && !_disposed)
        {
            _disposed = true;
            _current?.Dispose();
            _input.Dispose();
            if (!_leaveOpen)
                _input.Inner.Dispose();
        }
        base.Dispose(disposing);
    }

    /// <summary>A read-only buffer over the compressed stream that can tell whether more input follows.</summary>
    private sealed class BufferedInput(Stream inner) : ReadOnlyStream
    {
        private byte[]? _buffer = ArrayPool<byte>.Shared.Rent(DecompressionStream.DefaultBufferSize);
        private int _start;
        private int _count;
        private bool _ended;

        public Stream Inner => inner;

        private byte[] Buffer => _buffer ?? throw new ObjectDisposedException(nameof(BufferedInput));

        public bool AtEnd()
        {
            if (_count == 0 && !_ended)
                Refilled(inner.Read(Buffer));
            return _count == 0;
        }

        public async ValueTask FillAsync(CancellationToken cancellationToken)
        {
            if (_count == 0 && !_ended)
                Refilled(await inner.ReadAsync(Buffer, cancellationToken).ConfigureAwait(false));
        }

        private void Refilled(int read)
        {
            _start = 0;
            _count = read;
            _ended = read == 0;
        }

        public override int Read(Span<byte> buffer)
        {
            if (buffer.IsEmpty || AtEnd())
                return 0;
            int n = Math.Min(buffer.Length, _count);
            Buffer.AsSpan(_start, n).CopyTo(buffer);
            _start += n;
            _count -= n;
            return n;
        }

        public override int ReadByte()
        {
            if (AtEnd())
                return -1;
            _count--;
            return Buffer[_start++];
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing && _buffer is not null)
            {
                ArrayPool<byte>.Shared.Return(_buffer);
                _buffer = null;
            }
            base.Dispose(disposing);
        }
    }
}
