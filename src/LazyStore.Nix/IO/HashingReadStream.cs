namespace LazyStore.Nix.IO;

/// <summary>
/// Passes reads through while counting the bytes, hashing them, and optionally copying them to a
/// second stream, so a download can be verified and stored in the same single pass.
/// </summary>
public sealed class HashingReadStream : ReadOnlyStream
{
    private readonly Stream _inner;
    private readonly NixHasher? _hasher;
    private readonly Stream? _copy;
    private readonly long _limit;
    private readonly string _what;
    private readonly bool _leaveOpen;

    /// <param name="inner">The stream read from.</param>
    /// <param name="algorithm">The hash to compute, or null to only count.</param>
    /// <param name="copy">Where every byte read is also written, or null.</param>
    /// <param name="limit">More bytes than this is an error: the reader never gets (or stores) them.</param>
    /// <param name="what">What the bytes are, for the error message when the limit is passed.</param>
    public HashingReadStream(Stream inner, NixHashAlgorithm? algorithm, Stream? copy = null, long limit = long.MaxValue, string what = "stream", bool leaveOpen = false)
    {
        _inner = inner;
        _hasher = algorithm is { } a ? new NixHasher(a) : null;
        _copy = copy;
        _limit = limit;
        _what = what;
        _leaveOpen = leaveOpen;
    }

    public long BytesRead { get; private set; }

    /// <summary>The hash of everything read so far; the stream cannot be read afterwards.</summary>
    public NixHash FinishHash() => (_hasher ?? throw new InvalidOperationException("no hash was requested")).Finish();

    /// <summary>Reads and discards whatever is left, so that counts and hashes cover the whole stream.</summary>
    public void Drain()
    {
        var buffer = new byte[64 * 1024];
        while (Read(buffer) > 0)
        {
        }
    }

    public override int Read(Span<byte> buffer)
    {
        var n = _inner.Read(buffer);
        Account(buffer[..n]);
        return n;
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        var n = await _inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
        Account(buffer.Span[..n]);
        return n;
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    private void Account(ReadOnlySpan<byte> data)
    {
        if (data.Length == 0)
            return;
        if (BytesRead + data.Length > _limit)
            throw new InvalidDataException($"{_what} is longer than the expected {_limit} bytes");
        BytesRead += data.Length;
        _hasher?.Append(data);
        _copy?.Write(data);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _hasher?.Dispose();
            if (!_leaveOpen)
                _inner.Dispose();
        }
        base.Dispose(disposing);
    }
}
