namespace LazyStore.Store.Substituters;

/// <summary>
/// Reads files of one binary cache (<c>nix-cache-info</c>, <c>&lt;hash&gt;.narinfo</c>, <c>&lt;hash&gt;.ls</c>,
/// <c>nar/…</c>) relative to its base URL. Knows transports (HTTP, files), not Nix formats.
/// </summary>
public abstract class BinaryCacheTransport : IDisposable
{
    protected BinaryCacheTransport(Uri baseUri) => BaseUri = baseUri;

    /// <summary>The cache's URL as configured, used in every message about it.</summary>
    public Uri BaseUri { get; }

    /// <summary>Creates the transport for an <c>http://</c>, <c>https://</c> or <c>file://</c> cache.</summary>
    public static BinaryCacheTransport Create(Uri baseUri, TransportOptions options) =>
        baseUri.Scheme switch
        {
            "http" or "https" => new HttpBinaryCacheTransport(baseUri, options),
            "file" => new FileBinaryCacheTransport(baseUri),
            _ => throw new ArgumentException($"substituter '{baseUri}' is not an http://, https:// or file:// URL", nameof(baseUri)),
        };

    /// <summary>
    /// A small file read whole, or null when the cache does not have it (HTTP 404, 410 or 403, or no such file).
    /// Transient failures (5xx, connection resets, timeouts) are retried per <see cref="TransportOptions"/>;
    /// when retries run out, or the file is larger than <paramref name="maxBytes"/>, throws
    /// <see cref="BinaryCacheException"/>.
    /// </summary>
    public abstract Task<byte[]?> TryGetBytesAsync(string relativePath, long maxBytes, CancellationToken cancellationToken);

    /// <summary>
    /// Opens a file for streaming, or null when the cache does not have it. Failures before the body starts
    /// are retried as in <see cref="TryGetBytesAsync"/>; failures while reading the body surface as
    /// <see cref="IOException"/> (a reset, a stall longer than the read timeout, or a body shorter than the
    /// announced length) from the returned stream's reads.
    /// </summary>
    public abstract Task<BinaryCacheResponse?> TryOpenAsync(string relativePath, CancellationToken cancellationToken);

    /// <summary>The full URL of a file of this cache, for messages and logs.</summary>
    public Uri Resolve(string relativePath) => new(BaseUri.AbsoluteUri.TrimEnd('/') + "/" + relativePath);

    public virtual void Dispose() => GC.SuppressFinalize(this);
}

/// <summary>An open download: its body and, when the server announced it, the body's length.</summary>
public sealed class BinaryCacheResponse(Stream body, long? length) : IDisposable
{
    public Stream Body { get; } = body;

    public long? Length { get; } = length;

    public void Dispose() => Body.Dispose();
}

public sealed record TransportOptions
{
    /// <summary>Attempts per request for transient failures (Nix's default for <c>download-attempts</c> is 5).</summary>
    public int Attempts { get; init; } = 5;

    /// <summary>Delay before the first retry; doubled for each further one, with jitter.</summary>
    public TimeSpan RetryDelay { get; init; } = TimeSpan.FromMilliseconds(250);

    /// <summary>Time to connect and receive response headers (Nix: <c>connect-timeout</c>, none by default; we bound it).</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Longest wait for any body bytes before the download counts as stalled (Nix: <c>stalled-download-timeout</c> 300 s).</summary>
    public TimeSpan ReadTimeout { get; init; } = TimeSpan.FromSeconds(300);

    /// <summary>The netrc file whose credentials are sent to the matching host only; none when null or absent.</summary>
    public string? NetrcFile { get; init; }
}

/// <summary>A cache could not be read: which URL, and why. Not used for "the cache does not have it".</summary>
public class BinaryCacheException(Uri url, string reason, Exception? inner = null)
    : IOException($"{url}: {reason}", inner)
{
    public Uri Url { get; } = url;

    public string Reason { get; } = reason;
}
