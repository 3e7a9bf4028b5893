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
    /// Transient failures (5xx, connection resets) are retried per <see cref="TransportOptions"/>; when they
    /// run out, or a deadline passes, throws <see cref="CacheTransferException"/>; when the file is larger
    /// than <paramref name="maxBytes"/> or the cache refuses otherwise, <see cref="BinaryCacheException"/>.
    /// </summary>
    public abstract Task<byte[]?> TryGetBytesAsync(string relativePath, long maxBytes, CancellationToken cancellationToken);

    /// <summary>
    /// Opens a file for streaming, or null when the cache does not have it. Failures before the body starts
    /// are retried as in <see cref="TryGetBytesAsync"/>; failures while reading the body surface as
    /// <see cref="CacheTransferException"/> (a reset, no data for the stall timeout, or a body shorter than
    /// the announced length) from the returned stream's reads.
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

/// <summary>
/// How requests to caches are bounded, as Nix's settings of the same names bound its downloads
/// (<see cref="Configuration.SubstituterSettings"/> reads them from nix.conf).
/// </summary>
public sealed record TransportOptions
{
    /// <summary>curl's connect timeout when Nix's <c>connect-timeout</c> is 0 (its default).</summary>
    public static readonly TimeSpan CurlDefaultConnectTimeout = TimeSpan.FromSeconds(300);

    /// <summary>
    /// Attempts per request (<c>download-attempts</c>, 5 by default) for failures that may pass: 5xx, 408,
    /// 429, refused or reset connections, timeouts, a small file's body broken off.
    /// </summary>
    public int Attempts { get; init; } = 5;

    /// <summary>Delay before the first retry; doubled for each further one, with jitter.</summary>
    public TimeSpan RetryDelay { get; init; } = TimeSpan.FromMilliseconds(250);

    /// <summary>Time to establish a connection, TLS included (<c>connect-timeout</c>; 0 there means curl's 300 s).</summary>
    public TimeSpan ConnectTimeout { get; init; } = CurlDefaultConnectTimeout;

    /// <summary>
    /// Longest time without a byte of the response before the transfer fails (<c>stalled-download-timeout</c>,
    /// 300 s by default; <see cref="Timeout.InfiniteTimeSpan"/>: no limit). It bounds the wait for the
    /// response once the request is sent (on a new connection: once it is up) and every read of a body.
    /// </summary>
    public TimeSpan StalledDownloadTimeout { get; init; } = TimeSpan.FromSeconds(300);

    /// <summary>Most connections to one cache at once (<c>http-connections</c>, 25 by default; 0: no limit).</summary>
    public int MaxConnections { get; init; } = 25;

    /// <summary>The netrc file whose credentials are sent to the matching host only; none when null or absent.</summary>
    public string? NetrcFile { get; init; }

    /// <summary>The options <paramref name="settings"/> (nix.conf, overridden by the command line) ask for.</summary>
    public static TransportOptions From(Configuration.SubstituterSettings settings) => new()
    {
        Attempts = settings.DownloadAttempts,
        ConnectTimeout = settings.ConnectTimeout,
        StalledDownloadTimeout = settings.StalledDownloadTimeout,
        MaxConnections = settings.HttpConnections,
        NetrcFile = settings.NetrcFile,
    };
}

/// <summary>A cache could not be read: which URL, and why. Not used for "the cache does not have it".</summary>
public class BinaryCacheException(Uri url, string reason, Exception? inner = null)
    : IOException($"{url}: {reason}", inner)
{
    public Uri Url { get; } = url;

    public string Reason { get; } = reason;
}

/// <summary>
/// A transfer from a cache failed in a way that may pass, through every attempt: it timed out, the
/// connection failed or broke off, or the server kept answering 5xx, 408 or 429. A cache that fails so
/// is skipped for a while (<see cref="BinaryCache.SkipTime"/>).
/// </summary>
public sealed class CacheTransferException(Uri url, string reason, Exception? inner = null)
    : BinaryCacheException(url, reason, inner);
