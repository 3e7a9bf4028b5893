using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using LazyStore.Nix.Interop;

namespace LazyStore.Nix.Nar;

/// <summary>
/// Writes a NAR node by node, enforcing <see cref="NarGrammar"/>: exactly one root node, entries
/// strictly ascending with valid names, every directory closed. <see cref="WritePath"/> serialises a
/// file-system tree exactly as <c>nix-store --dump</c> does.
/// </summary>
public sealed class NarWriter : IDisposable
{
    private const int BufferSize = 64 * 1024;

    private static readonly EnumerationOptions AllEntries = new()
    {
        AttributesToSkip = 0,
        IgnoreInaccessible = false,
        MatchType = MatchType.Simple,
        RecurseSubdirectories = false,
        ReturnSpecialDirectories = false,
    };

    private readonly Stream _output;
    private readonly bool _leaveOpen;
    private readonly Stack<DirectoryFrame> _directories = new();
    private byte[] _buffer;
    private int _buffered;
    private long _position;
    private bool _expectNode = true;
    private bool _complete;
    private bool _disposed;

    public NarWriter(Stream output, bool leaveOpen = false)
    {
        ArgumentNullException.ThrowIfNull(output);
        if (!output.CanWrite)
            throw new ArgumentException("the NAR output must be writable", nameof(output));
        _output = output;
        _leaveOpen = leaveOpen;
        _buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
        WriteString(NarGrammar.MagicBytes);
    }

    /// <summary>Bytes of NAR produced so far, including what is still buffered.</summary>
    public long Position => _position;

    /// <summary>True once the root node is finished; nothing more may be written.</summary>
    public bool IsComplete => _complete;

    /// <summary>Serialises <paramref name="path"/> (not following a symlink there) to <paramref name="output"/>.</summary>
    public static void Dump(string path, Stream output)
    {
        using var writer = new NarWriter(output, leaveOpen: true);
        writer.WritePath(path);
        writer.Flush();
    }

    public void WriteRegular(ReadOnlySpan<byte> contents, bool executable = false)
    {
        BeginRegular(contents.Length, executable);
        WriteRaw(contents);
        EndRegular(contents.Length);
    }

    /// <summary>Writes a regular file whose <paramref name="size"/> bytes come from <paramref name="contents"/>.</summary>
    public void WriteRegular(Stream contents, long size, bool executable = false, string? sourceName = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(size);
        BeginRegular(size, executable);
        long remaining = size;
        while (remaining > 0)
        {
            if (_buffered == _buffer.Length)
                FlushBuffer();
            int n = contents.Read(_buffer, _buffered, (int)Math.Min(_buffer.Length - _buffered, remaining));
            if (n == 0)
                throw new IOException($"{sourceName ?? "file contents"}: ended {remaining} bytes short of the announced {size} bytes");
            _buffered += n;
            _position += n;
            remaining -= n;
        }
        EndRegular(size);
    }

    public void WriteSymlink(string target)
    {
        var bytes = Encoding.UTF8.GetBytes(target);
        if (NarGrammar.CheckTarget(bytes) is { } rule)
            throw new ArgumentException($"invalid symlink target {NarGrammar.Show(bytes)}: expected {rule}", nameof(target));
        BeginNode(NarGrammar.Symlink);
        WriteString(NarGrammar.Target);
        WriteString(bytes);
        WriteString(NarGrammar.Close);
        EndNode();
    }

    public void BeginDirectory()
    {
        BeginNode(NarGrammar.Directory);
        _directories.Push(new DirectoryFrame());
        _expectNode = false;
    }

    /// <summary>Starts the entry <paramref name="name"/> of the open directory; its node must follow.</summary>
    public void BeginEntry(string name)
    {
        var bytes = Encoding.UTF8.GetBytes(name);
        if (NarGrammar.CheckName(bytes) is { } rule)
            throw new ArgumentException($"invalid entry name {NarGrammar.Show(bytes)}: expected {rule}", nameof(name));
        if (_expectNode || !_directories.TryPeek(out var frame) || frame.EntryOpen)
            throw new InvalidOperationException("an entry can only start inside an open directory, after the previous entry's node");
        if (frame.LastName is { } previous && NarGrammar.CompareNames(previous, bytes) >= 0)
            throw new ArgumentException($"entry {NarGrammar.Show(bytes)} does not sort after {NarGrammar.Show(previous)}", nameof(name));
        frame.LastName = bytes;
        frame.EntryOpen = true;
        WriteString(NarGrammar.Entry);
        WriteString(NarGrammar.Open);
        WriteString(NarGrammar.Name);
        WriteString(bytes);
        WriteString(NarGrammar.Node);
        _expectNode = true;
    }

    public void EndDirectory()
    {
        if (_expectNode || !_directories.TryPeek(out var frame) || frame.EntryOpen)
            throw new InvalidOperationException("no open directory to end here");
        _directories.Pop();
        WriteString(NarGrammar.Close);
        EndNode();
    }

    /// <summary>
    /// Writes the node for a file-system object as <c>nix-store --dump</c> does: symlinks are not followed,
    /// a regular file is executable when its owner may execute it, directory entries go in byte order of
    /// their names, and other file types are refused.
    /// </summary>
    public void WritePath(string path)
    {
        var status = Posix.LStat(path);
        switch (status.Type)
        {
            case PosixFileType.Regular:
                using (var file = new FileStream(path, new FileStreamOptions
                {
                    Mode = FileMode.Open,
                    Access = FileAccess.Read,
                    Share = FileShare.ReadWrite,
                    BufferSize = 0,
                    Options = FileOptions.SequentialScan,
                }))
                {
                    WriteRegular(file, status.Size, executable: (status.Mode & 0x40) != 0, sourceName: path);
                }
                break;
            case PosixFileType.Symlink:
                WriteSymlink(new FileInfo(path).LinkTarget
                    ?? throw new IOException($"cannot read the symlink '{path}'"));
                break;
            case PosixFileType.Directory:
                var names = Directory.EnumerateFileSystemEntries(path, "*", AllEntries)
                    .Select(System.IO.Path.GetFileName)
                    .Select(n => n!)
                    .ToList();
                names.Sort(NarGrammar.NameComparer);
                BeginDirectory();
                foreach (var name in names)
                {
                    BeginEntry(name);
                    WritePath(System.IO.Path.Combine(path, name));
                }
                EndDirectory();
                break;
            default:
                throw new IOException($"'{path}' has an unsupported type ({status.Type}); a NAR holds only regular files, symlinks and directories");
        }
    }

    public void Flush()
    {
        FlushBuffer();
        _output.Flush();
    }

    public void Dispose()
    {
        if (_disposed)
            return;
        _disposed = true;
        try
        {
            FlushBuffer();
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = [];
            if (!_leaveOpen)
                _output.Dispose();
        }
    }

    private void BeginRegular(long size, bool executable)
    {
        BeginNode(NarGrammar.Regular);
        if (executable)
        {
            WriteString(NarGrammar.Executable);
            WriteString(ReadOnlySpan<byte>.Empty);
        }
        WriteString(NarGrammar.Contents);
        WriteU64((ulong)size);
    }

    private void EndRegular(long size)
    {
        WriteRaw(Zeros[..NarGrammar.Padding((ulong)size)]);
        WriteString(NarGrammar.Close);
        EndNode();
    }

    private void BeginNode(ReadOnlySpan<byte> type)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (!_expectNode || _complete)
            throw new InvalidOperationException(_complete
                ? "the NAR's root node is already complete"
                : "a node can only be written as the root or right after BeginEntry");
        _expectNode = false;
        WriteString(NarGrammar.Open);
        WriteString(NarGrammar.Type);
        WriteString(type);
    }

    private void EndNode()
    {
        if (_directories.TryPeek(out var frame))
        {
            WriteString(NarGrammar.Close);
            frame.EntryOpen = false;
        }
        else
        {
            _complete = true;
        }
    }

    private static ReadOnlySpan<byte> Zeros => [0, 0, 0, 0, 0, 0, 0, 0];

    private void WriteString(ReadOnlySpan<byte> value)
    {
        WriteU64((ulong)value.Length);
        WriteRaw(value);
        WriteRaw(Zeros[..NarGrammar.Padding((ulong)value.Length)]);
    }

    private void WriteU64(ulong value)
    {
        Span<byte> bytes = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, value);
        WriteRaw(bytes);
    }

    private void WriteRaw(ReadOnlySpan<byte> data)
    {
        _position += data.Length;
        while (!data.IsEmpty)
        {
            if (_buffered == _buffer.Length)
                FlushBuffer();
            if (_buffered == 0 && data.Length >= _buffer.Length)
            {
                _output.Write(data);
                return;
            }
            int n = Math.Min(data.Length, _buffer.Length - _buffered);
            data[..n].CopyTo(_buffer.AsSpan(_buffered));
            _buffered += n;
            data = data[n..];
        }
    }

    private void FlushBuffer()
    {
        if (_buffered == 0)
            return;
        _output.Write(_buffer, 0, _buffered);
        _buffered = 0;
    }

    private sealed class DirectoryFrame
    {
        public byte[]? LastName { get; set; }

        public bool EntryOpen { get; set; }
    }
}
