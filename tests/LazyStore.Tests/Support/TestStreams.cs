using LazyStore.Nix.IO;
namespace LazyStore.Tests.Support;

/// <summary>A read-only, non-seekable view of bytes, returning at most <c>maxChunk</c> bytes per read.</summary>
public sealed class NonSeekableStream(byte[] data, int maxChunk = int.MaxValue) : ReadOnlyStream
{
    private int _position;

    public override int Read(Span<byte> buffer)
    {
        int n = Math.Min(Math.Min(buffer.Length, maxChunk), data.Length - _position);
        data.AsSpan(_position, n).CopyTo(buffer);
        _position += n;
        return n;
    }
}

/// <summary>Serves bytes, then fails with an IOException once <c>failAfter</c> bytes were read (a reset connection).</summary>
public sealed class FailingStream(byte[] data, int failAfter) : ReadOnlyStream
{
    private int _position;

    public override int Read(Span<byte> buffer)
    {
        if (_position >= failAfter)
            throw new IOException("connection reset by peer (simulated)");
        int n = Math.Min(Math.Min(buffer.Length, failAfter - _position), data.Length - _position);
        data.AsSpan(_position, n).CopyTo(buffer);
        _position += n;
        return n;
    }
}
