using LazyStore.Nix.IO;

namespace LazyStore.Store.Substituters;

/// <summary>
/// The body of an HTTP download. Reads fail with <see cref="CacheTransferException"/> (an <see cref="IOException"/>
/// naming the URL) when they wait longer than the stall timeout for data (stalled-download-timeout), when
/// the connection breaks, or when the body ends short of its announced length; after a failure every read
/// fails the same way.
/// Owns the response and disposes it.
/// </summary>
internal sealed class HttpBodyStream(Uri url, HttpResponseMessage response, Stream inner, long? length, TimeSpan readTimeout)
    : ReadOnlyStream
{
    private long _received;
    private CacheTransferException? _failure;

    public override int Read(Span<byte> buffer)
    {
        ThrowIfFailed();
        if (buffer.IsEmpty)
            return 0;
        // A synchronous read takes no token, so a stall is ended by aborting the connection under it.
        using var stall = new CancellationTokenSource(readTimeout);
        int n;
        try
        {
            using (stall.Token.UnsafeRegister(static s => ((Stream)s!).Dispose(), inner))
                n = inner.Read(buffer);
        }
        catch (Exception e) when (stall.IsCancellationRequested && e is IOException or ObjectDisposedException or OperationCanceledException)
        {
            throw Fail(Stalled(e));
        }
        catch (IOException e)
        {
            throw Fail(Broken(e));
        }
        if (stall.IsCancellationRequested)
            _failure = Stalled(null); // the timer fired as the read returned: the connection is gone for the next one
        return Account(n);
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
    {
        ValidateBufferArguments(buffer, offset, count);
        return ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        ThrowIfFailed();
        if (buffer.IsEmpty)
            return 0;
        using var stall = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        stall.CancelAfter(readTimeout);
        int n;
        try
        {
            n = await inner.ReadAsync(buffer, stall.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (!cancellationToken.IsCancellationRequested && stall.IsCancellationRequested
            && e is OperationCanceledException or IOException or ObjectDisposedException)
        {
            throw Fail(Stalled(e));
        }
        catch (IOException e) when (!cancellationToken.IsCancellationRequested)
        {
            throw Fail(Broken(e));
        }
        return Account(n);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            inner.Dispose();
            response.Dispose();
        }
        base.Dispose(disposing);
    }

    private int Account(int n)
    {
        if (n > 0)
        {
            _received += n;
            return n;
        }
        // SocketsHttpHandler reports a short Content-Length body itself (HttpIOException, ResponseEnded);
        // this holds whatever the handler.
        if (length is { } expected && _received < expected)
            throw Fail(new CacheTransferException(url, $"body ended after {Progress}"));
        return 0;
    }

    private void ThrowIfFailed()
    {
        if (_failure is not null)
            throw new CacheTransferException(url, _failure.Reason, _failure);
    }

    private CacheTransferException Fail(CacheTransferException failure) => _failure = failure;

    private CacheTransferException Stalled(Exception? cause)
    {
        var reason = $"no data for {HttpBinaryCacheTransport.Seconds(readTimeout)} after {Progress} (stalled-download-timeout)";
        return new CacheTransferException(url, reason, new TimeoutException(reason, cause));
    }

    private CacheTransferException Broken(Exception cause) =>
        cause is HttpIOException { HttpRequestError: HttpRequestError.ResponseEnded }
            ? new(url, $"body ended after {Progress}", cause)
            : new(url, $"body broken off after {Progress}: {cause.Message}", cause);

    private string Progress => length is { } expected ? $"{_received} of {expected} bytes" : $"{_received} bytes";
}
