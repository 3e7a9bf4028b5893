using LazyStore.Nix.IO;
using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics;
using System.Text;

namespace LazyStore.Nix.Nar;

/// <summary>
/// Streaming, pull-style NAR parser: <see cref="GetNextEntry"/> yields each node, parents before children,
/// and null after the root node closes at the end of the stream. Enforces every rule of
/// <see cref="NarGrammar"/>; the first violation throws <see cref="NarFormatException"/> and leaves the
/// reader unusable. Memory use is bounded by the buffer and the nesting depth, never by file sizes.
/// </summary>
public sealed class NarReader : IDisposable
{
    private const int BufferSize = 64 * 1024;

    /// <summary>Longest keyword of the grammar ("nix-archive-1"); any longer string where a keyword belongs is wrong.</summary>
    private const int MaxKeywordLength = 16;

    private readonly Stream _stream;
    private readonly bool _leaveOpen;
    private readonly int _maxDepth;
    private readonly List<DirectoryFrame> _directories = [];
    private byte[] _buffer;
    private int _bufferStart;
    private int _bufferEnd;
    private long _position;
    private State _state = State.Start;
    private long _payloadRemaining;
    private int _payloadPadding;
    private int _generation;
    private Exception? _failure;
    private bool _disposed;

    public NarReader(Stream stream, bool leaveOpen = false, int maxDepth = NarGrammar.DefaultMaxDepth)
    {
        ArgumentNullException.ThrowIfNull(stream);
        if (!stream.CanRead)
            throw new ArgumentException("the NAR stream must be readable", nameof(stream));
        ArgumentOutOfRangeException.ThrowIfNegative(maxDepth);
        _stream = stream;
        _leaveOpen = leaveOpen;
        _maxDepth = maxDepth;
        _buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
    }

    private enum State
    {
        Start,
        InPayload,
        NodeDone,
        InDirectory,
        End,
    }

    /// <summary>Number of NAR bytes consumed so far.</summary>
    public long Position => _position;

    /// <summary>Reads the next node; null once the whole NAR, with nothing after it, was read.</summary>
    public NarEntry? GetNextEntry()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ThrowIfFailed();
        try
        {
            return _state switch
            {
                State.Start => ReadRoot(),
                State.InPayload => FinishRegular(),
                State.NodeDone => FinishNode(),
                State.InDirectory => ReadDirectoryItem(),
                _ => null,
            };
        }
        catch (Exception e)
        {
            _failure = e;
            throw;
        }
    }

    /// <summary>Reads all remaining entries, for callers that only want the NAR checked.</summary>
    public void ReadToEnd()
    {
        while (GetNextEntry() is not null)
        {
        }
    }

    public void Dispose()
    {
        if (_disposed)
            return;
        _disposed = true;
        ArrayPool<byte>.Shared.Return(_buffer);
        _buffer = [];
        if (!_leaveOpen)
            _stream.Dispose();
    }

    internal Stream OpenPayload(int generation)
    {
        if (generation != _generation || _state != State.InPayload)
            throw new InvalidOperationException("the entry's payload is no longer available: the reader has moved past it");
        return new PayloadStream(this, generation);
    }

    private NarEntry? ReadRoot()
    {
        ExpectKeyword(NarGrammar.MagicBytes, "the NAR magic 'nix-archive-1'");
        return ReadNode("", depth: 0);
    }

    private NarEntry ReadNode(string path, int depth)
    {
        ExpectKeyword(NarGrammar.Open, "'(' opening a node");
        ExpectKeyword(NarGrammar.Type, "'type'");
        long at = _position;
        var type = ReadKeyword("'regular', 'symlink' or 'directory'");
        if (type.SequenceEqual(NarGrammar.Regular))
            return ReadRegular(path, depth);
        if (type.SequenceEqual(NarGrammar.Symlink))
            return ReadSymlink(path, depth);
        if (type.SequenceEqual(NarGrammar.Directory))
        {
            _directories.Add(new DirectoryFrame(path, depth));
            _state = State.InDirectory;
            return NewEntry(path, depth, NarEntryType.Directory, false, 0, 0, null);
        }
        throw new NarFormatException(at, "'regular', 'symlink' or 'directory'", NarGrammar.Show(type));
    }

    private NarEntry ReadRegular(string path, int depth)
    {
        long at = _position;
        var keyword = ReadKeyword("'executable' or 'contents'");
        bool executable = false;
        if (keyword.SequenceEqual(NarGrammar.Executable))
        {
            executable = true;
            long markerAt = _position;
            ulong markerLength = ReadU64("the empty string after 'executable'");
            if (markerLength != 0)
                throw new NarFormatException(markerAt, "the empty string after 'executable'", $"a string of {markerLength} bytes");
            ExpectKeyword(NarGrammar.Contents, "'contents'");
        }
        else if (!keyword.SequenceEqual(NarGrammar.Contents))
        {
            throw new NarFormatException(at, "'executable' or 'contents'", NarGrammar.Show(keyword));
        }

        long sizeAt = _position;
        ulong size = ReadU64("the length of the file contents");
        if (size > long.MaxValue)
            throw new NarFormatException(sizeAt, "a file length below 2^63", size.ToString(System.Globalization.CultureInfo.InvariantCulture));
        _payloadRemaining = (long)size;
        _payloadPadding = NarGrammar.Padding(size);
        _state = State.InPayload;
        return NewEntry(path, depth, NarEntryType.Regular, executable, (long)size, _position, null);
    }

    private NarEntry ReadSymlink(string path, int depth)
    {
        ExpectKeyword(NarGrammar.Target, "'target'");
        long at = _position;
        var target = ReadString(NarGrammar.MaxTargetLength, "a symlink target");
        if (NarGrammar.CheckTarget(target) is { } rule)
            throw new NarFormatException(at, rule, NarGrammar.Show(target));
        var text = Encoding.UTF8.GetString(target);
        ExpectKeyword(NarGrammar.Close, "')' closing the symlink node");
        _state = State.NodeDone;
        return NewEntry(path, depth, NarEntryType.Symlink, false, 0, 0, text);
    }

    private NarEntry? FinishRegular()
    {
        SkipPayload();
        ReadPadding(_payloadPadding);
        ExpectKeyword(NarGrammar.Close, "')' closing the regular file node");
        return FinishNode();
    }

    /// <summary>A node just closed: either the whole NAR ends, or its enclosing directory entry closes.</summary>
    private NarEntry? FinishNode()
    {
        if (_directories.Count == 0)
            return FinishNar();
        ExpectKeyword(NarGrammar.Close, "')' closing the directory entry");
        return ReadDirectoryItem();
    }

    private NarEntry? ReadDirectoryItem()
    {
        while (true)
        {
            var frame = _directories[^1];
            long at = _position;
            var keyword = ReadKeyword("'entry' or ')'");
            if (keyword.SequenceEqual(NarGrammar.Close))
            {
                _directories.RemoveAt(_directories.Count - 1);
                if (_directories.Count == 0)
                    return FinishNar();
                ExpectKeyword(NarGrammar.Close, "')' closing the directory entry");
                continue;
            }
            if (!keyword.SequenceEqual(NarGrammar.Entry))
                throw new NarFormatException(at, "'entry' or ')'", NarGrammar.Show(keyword));
            if (frame.Depth + 1 > _maxDepth)
                throw new NarFormatException(at, $"directories nested at most {_maxDepth} deep");

            ExpectKeyword(NarGrammar.Open, "'(' opening the directory entry");
            ExpectKeyword(NarGrammar.Name, "'name'");
            long nameAt = _position;
            var name = ReadString(NarGrammar.MaxNameLength, "an entry name");
            if (NarGrammar.CheckName(name) is { } rule)
                throw new NarFormatException(nameAt, rule, NarGrammar.Show(name));
            if (frame.LastName is { } previous && NarGrammar.CompareNames(previous, name) >= 0)
                throw new NarFormatException(nameAt, $"an entry name sorting after {NarGrammar.Show(previous)}", NarGrammar.Show(name));
            frame.LastName = name.ToArray();
            var nameText = Encoding.UTF8.GetString(name);
            ExpectKeyword(NarGrammar.Node, "'node'");
            var path = frame.Path.Length == 0 ? nameText : string.Concat(frame.Path, "/", nameText);
            return ReadNode(path, frame.Depth + 1);
        }
    }

    private NarEntry? FinishNar()
    {
        if (Fill(1))
            throw new NarFormatException(_position, "the end of the NAR", "trailing bytes");
        _state = State.End;
        return null;
    }

    private NarEntry NewEntry(string path, int depth, NarEntryType type, bool executable, long size, long payloadOffset, string? target)
    {
        _generation++;
        return new NarEntry(this, _generation, path, depth, type, executable, size, payloadOffset, target);
    }

    private void ExpectKeyword(ReadOnlySpan<byte> keyword, string expected)
    {
        long at = _position;
        var found = ReadKeyword(expected);
        if (!found.SequenceEqual(keyword))
            throw new NarFormatException(at, expected, NarGrammar.Show(found));
    }

    private ReadOnlySpan<byte> ReadKeyword(string expected) => ReadString(MaxKeywordLength, expected);

    /// <summary>Reads a length-prefixed, zero-padded string of at most <paramref name="maxLength"/> bytes.</summary>
    private ReadOnlySpan<byte> ReadString(int maxLength, string expected)
    {
        Debug.Assert(maxLength + 8 + 8 <= BufferSize);
        long at = _position;
        ulong length = ReadU64(expected);
        if (length > (ulong)maxLength)
            throw new NarFormatException(at, expected, $"a string of {length} bytes (at most {maxLength} allowed here)");
        int padded = (int)length + NarGrammar.Padding(length);
        if (!Fill(padded))
            throw Truncated(expected);
        var value = _buffer.AsSpan(_bufferStart, (int)length);
        CheckZeroPadding(_buffer.AsSpan(_bufferStart + (int)length, padded - (int)length), _position + (long)length);
        Consume(padded);
        return value;
    }

    private ulong ReadU64(string expected)
    {
        if (!Fill(8))
            throw Truncated(expected);
        ulong value = BinaryPrimitives.ReadUInt64LittleEndian(_buffer.AsSpan(_bufferStart, 8));
        Consume(8);
        return value;
    }

    private void ReadPadding(int count)
    {
        if (count == 0)
            return;
        if (!Fill(count))
            throw Truncated("zero padding after the file contents");
        CheckZeroPadding(_buffer.AsSpan(_bufferStart, count), _position);
        Consume(count);
    }

    private static void CheckZeroPadding(ReadOnlySpan<byte> padding, long offset)
    {
        int nonZero = padding.IndexOfAnyExcept((byte)0);
        if (nonZero >= 0)
            throw new NarFormatException(offset + nonZero, "zero padding", $"byte 0x{padding[nonZero]:x2}");
    }

    private NarFormatException Truncated(string expected) => new(_position, expected, "the end of the stream");

    private void Consume(int count)
    {
        _bufferStart += count;
        _position += count;
    }

    /// <summary>Ensures <paramref name="count"/> contiguous buffered bytes; false at end of stream.</summary>
    private bool Fill(int count)
    {
        if (_bufferEnd - _bufferStart >= count)
            return true;
        if (_bufferStart > 0)
        {
            Buffer.BlockCopy(_buffer, _bufferStart, _buffer, 0, _bufferEnd - _bufferStart);
            _bufferEnd -= _bufferStart;
            _bufferStart = 0;
        }
        while (_bufferEnd < count)
        {
            int read = _stream.Read(_buffer, _bufferEnd, _buffer.Length - _bufferEnd);
            if (read == 0)
                return false;
            _bufferEnd += read;
        }
        return true;
    }

    private int ReadPayload(Span<byte> destination)
    {
        Debug.Assert(_state == State.InPayload);
        int wanted = (int)Math.Min(destination.Length, _payloadRemaining);
        if (wanted == 0)
            return 0;
        int buffered = _bufferEnd - _bufferStart;
        int n;
        if (buffered > 0)
        {
            n = Math.Min(wanted, buffered);
            _buffer.AsSpan(_bufferStart, n).CopyTo(destination);
            _bufferStart += n;
        }
        else if (wanted >= BufferSize)
        {
            n = _stream.Read(destination[..wanted]);
        }
        else
        {
            _bufferStart = _bufferEnd = 0;
            n = _stream.Read(_buffer, 0, _buffer.Length);
            _bufferEnd = n;
            n = Math.Min(n, wanted);
            _buffer.AsSpan(0, n).CopyTo(destination);
            _bufferStart = n;
        }
        if (n == 0)
            throw Truncated($"{_payloadRemaining} more bytes of file contents");
        _payloadRemaining -= n;
        _position += n;
        return n;
    }

    private void SkipPayload()
    {
        int buffered = (int)Math.Min(_bufferEnd - _bufferStart, _payloadRemaining);
        Consume(buffered);
        _payloadRemaining -= buffered;
        if (_payloadRemaining == 0)
            return;
        if (_stream.CanSeek)
        {
            long available = _stream.Length - _stream.Position;
            if (available < _payloadRemaining)
            {
                _position += available;
                _stream.Seek(available, SeekOrigin.Current);
                throw Truncated($"{_payloadRemaining - available} more bytes of file contents");
            }
            _stream.Seek(_payloadRemaining, SeekOrigin.Current);
            _position += _payloadRemaining;
            _payloadRemaining = 0;
            return;
        }
        while (_payloadRemaining > 0)
        {
            _bufferStart = _bufferEnd = 0;
            int read = _stream.Read(_buffer, 0, (int)Math.Min(_buffer.Length, _payloadRemaining));
            if (read == 0)
                throw Truncated($"{_payloadRemaining} more bytes of file contents");
            _payloadRemaining -= read;
            _position += read;
        }
    }

    private void ThrowIfFailed()
    {
        if (_failure is not null)
            throw new InvalidOperationException("the NAR reader already failed: " + _failure.Message, _failure);
    }

    private sealed class DirectoryFrame(string path, int depth)
    {
        public string Path { get; } = path;

        public int Depth { get; } = depth;

        public byte[]? LastName { get; set; }
    }

    /// <summary>Bounded view of the current regular file's payload.</summary>
    private sealed class PayloadStream(NarReader reader, int generation) : ReadOnlyStream
    {
        public override int Read(Span<byte> buffer)
        {
            if (generation != reader._generation || reader._state != State.InPayload)
                throw new InvalidOperationException("the entry's payload is no longer available: the reader has moved past it");
            reader.ThrowIfFailed();
            try
            {
                return reader.ReadPayload(buffer);
            }
            catch (Exception e)
            {
                reader._failure = e;
                throw;
            }
        }
    }
}
