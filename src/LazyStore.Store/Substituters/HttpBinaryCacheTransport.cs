using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;

namespace LazyStore.Store.Substituters;

/// <summary>
/// A binary cache over HTTP(S), reading responses as Nix does (libstore/filetransfer.cc): 404, 410 and
/// 403 mean "not in this cache"; 408, 429, 5xx other than 501, 505 and 511 and connection failures are
/// transient and retried with exponential backoff, as are timeouts; any other status is an error at once.
/// Deadlines are Nix's connect-timeout and stalled-download-timeout (<see cref="TransportOptions"/>).
/// (Nix also takes 401 and 407 for "not in this cache"; here they are errors, so that a missing or wrong
/// netrc login is reported rather than hidden.) Bodies are passed on as served: no content decoding,
/// since NAR files are compressed already and a narinfo's FileHash covers the bytes as served.
/// </summary>
public sealed class HttpBinaryCacheTransport : BinaryCacheTransport
{
    internal const string UserAgent = "LazyStore/0.1";

    // Nix sets CURLOPT_MAXREDIRS to 10.
    private const int MaxRedirects = 10;

    private const int ReadChunkSize = 64 * 1024;

    private static readonly HttpRequestOptionsKey<ResponseDeadline> DeadlineKey = new("LazyStore.ResponseDeadline");

    private readonly HttpClient _client;
    private readonly Netrc _netrc;

    /// <summary>Reads <see cref="TransportOptions.NetrcFile"/> now; throws <see cref="NetrcException"/> if it is unreadable or malformed.</summary>
    public HttpBinaryCacheTransport(Uri baseUri, TransportOptions options)
        : base(baseUri)
    {
        if (baseUri.Scheme is not ("http" or "https"))
            throw new ArgumentException($"'{baseUri}' is not an http:// or https:// URL", nameof(baseUri));
        ArgumentOutOfRangeException.ThrowIfLessThan(options.Attempts, 1, nameof(TransportOptions.Attempts));
        ArgumentOutOfRangeException.ThrowIfLessThan(options.RetryDelay, TimeSpan.Zero, nameof(TransportOptions.RetryDelay));
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(options.ConnectTimeout, TimeSpan.Zero, nameof(TransportOptions.ConnectTimeout));
        if (options.StalledDownloadTimeout <= TimeSpan.Zero && options.StalledDownloadTimeout != Timeout.InfiniteTimeSpan)
            throw new ArgumentOutOfRangeException(nameof(TransportOptions.StalledDownloadTimeout), "must be positive, or infinite for no stall limit");
        ArgumentOutOfRangeException.ThrowIfNegative(options.MaxConnections, nameof(TransportOptions.MaxConnections));
        Options = options;
        _netrc = Netrc.Load(options.NetrcFile);
        var handler = new SocketsHttpHandler
        {
            ConnectTimeout = options.ConnectTimeout,
            AutomaticDecompression = DecompressionMethods.None,
            // Redirects are followed here, so that each hop gets the netrc login of its own host and no other.
            AllowAutoRedirect = false,
            UseCookies = false,
            MaxConnectionsPerServer = options.MaxConnections == 0 ? int.MaxValue : options.MaxConnections,
            EnableMultipleHttp2Connections = true,
            // An abandoned body closes its connection at once instead of being drained in the background.
            MaxResponseDrainSize = 0,
            ConnectCallback = ConnectAsync,
        };
        _client = new HttpClient(handler, disposeHandler: true)
        {
            Timeout = Timeout.InfiniteTimeSpan,
            // Nix uses HTTP/2 where the server offers it (setting http2, on by default); http:// stays HTTP/1.1.
            DefaultRequestVersion = HttpVersion.Version20,
            DefaultVersionPolicy = HttpVersionPolicy.RequestVersionOrLower,
        };
        _client.DefaultRequestHeaders.UserAgent.ParseAdd(UserAgent);
    }

    public TransportOptions Options { get; }

    public override async Task<byte[]?> TryGetBytesAsync(string relativePath, long maxBytes, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(maxBytes);
        var url = Resolve(relativePath);
        return await WithRetriesAsync<byte[]>(url, async token =>
        {
            using var response = await SendAsync(url, token).ConfigureAwait(false);
            if (response is null)
                return null;
            var length = response.Content.Headers.ContentLength;
            var limit = Math.Min(maxBytes, Array.MaxLength);
            if (length > limit)
                throw TooLarge(url, limit, $"the server announces {length} bytes");
            using var body = await OpenBodyAsync(url, response, token).ConfigureAwait(false);
            byte[]? bytes;
            try
            {
                bytes = await ReadWholeAsync(body, length, limit, token).ConfigureAwait(false);
            }
            catch (IOException e) when (!token.IsCancellationRequested)
            {
                // Small files are fetched again whole, so a broken body is as transient as a broken connection.
                throw new TransientFailure(e is BinaryCacheException b ? b.Reason : e.Message, e);
            }
            return bytes ?? throw TooLarge(url, limit, $"more than {limit} bytes arrived");
        }, cancellationToken).ConfigureAwait(false);
    }

    public override async Task<BinaryCacheResponse?> TryOpenAsync(string relativePath, CancellationToken cancellationToken)
    {
        var url = Resolve(relativePath);
        return await WithRetriesAsync<BinaryCacheResponse>(url, async token =>
        {
            var response = await SendAsync(url, token).ConfigureAwait(false);
            if (response is null)
                return null;
            try
            {
                var body = await OpenBodyAsync(url, response, token).ConfigureAwait(false);
                return new BinaryCacheResponse(body, response.Content.Headers.ContentLength);
            }
            catch
            {
                response.Dispose();
                throw;
            }
        }, cancellationToken).ConfigureAwait(false);
    }

    public override void Dispose()
    {
        _client.Dispose();
        base.Dispose();
    }

    /// <summary>
    /// Runs <paramref name="attempt"/> until it returns or fails with other than <see cref="TransientFailure"/>,
    /// at most <see cref="TransportOptions.Attempts"/> times, waiting between attempts as Nix does:
    /// <c>RetryDelay × 2^(n − 1 + U[0, 0.5))</c> before attempt n + 1.
    /// </summary>
    private async Task<T?> WithRetriesAsync<T>(Uri url, Func<CancellationToken, Task<T?>> attempt, CancellationToken cancellationToken)
        where T : class
    {
        for (int n = 1; ; n++)
        {
            try
            {
                return await attempt(cancellationToken).ConfigureAwait(false);
            }
            catch (TransientFailure e)
            {
                if (n >= Options.Attempts)
                    throw new CacheTransferException(url, $"{e.Message} (gave up after {n} attempt{(n == 1 ? "" : "s")})", e.InnerException);
            }
            var delay = Options.RetryDelay * Math.Pow(2, n - 1 + (Random.Shared.NextDouble() / 2));
            await Task.Delay(delay, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// One GET of <paramref name="url"/>, following redirects: the response once it has a 2xx status and its
    /// headers, or null when the cache does not have the file. Throws <see cref="TransientFailure"/> for what
    /// may pass, <see cref="BinaryCacheException"/> for what will not.
    /// </summary>
    private async Task<HttpResponseMessage?> SendAsync(Uri url, CancellationToken cancellationToken)
    {
        var target = url;
        for (int redirects = 0; ; redirects++)
        {
            var response = await SendOnceAsync(target, cancellationToken).ConfigureAwait(false);
            int status = (int)response.StatusCode;
            if (status is >= 200 and < 300)
                return response;
            using (response)
            {
                var from = target == url ? "" : $" from {target}";
                if (status is 301 or 302 or 303 or 307 or 308)
                {
                    if (redirects >= MaxRedirects)
                        throw new BinaryCacheException(url, $"more than {MaxRedirects} redirects");
                    target = RedirectTarget(url, target, response.Headers.Location);
                    continue;
                }
                if (status is 404 or 410 or 403)
                    return null;
                var reason = $"HTTP {status} {response.ReasonPhrase}{from}".TrimEnd();
                if (status is 408 or 429 || (status >= 500 && status is not (501 or 505 or 511)))
                    throw new TransientFailure(reason);
                throw new BinaryCacheException(url, reason);
            }
        }
    }

    private async Task<HttpResponseMessage> SendOnceAsync(Uri target, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, target);
        // Credentials go to the host their netrc entry names, which is why each redirect hop looks again.
        if (_netrc.Find(target.IdnHost) is { } credentials)
        {
            var basic = Convert.ToBase64String(Encoding.UTF8.GetBytes($"{credentials.Login}:{credentials.Password}"));
            request.Headers.Authorization = new AuthenticationHeaderValue("Basic", basic);
        }
        // Nix's deadlines as curl applies them: connect-timeout while a connection is opened for the
        // request, then stalled-download-timeout until the response starts.
        using var headersTimeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        request.Options.Set(DeadlineKey, new ResponseDeadline(headersTimeout, Options));
        headersTimeout.CancelAfter(Options.StalledDownloadTimeout);
        try
        {
            return await _client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, headersTimeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException e) when (!cancellationToken.IsCancellationRequested)
        {
            var reason = e.InnerException is TimeoutException
                ? $"could not connect to {target.Authority} within {Seconds(Options.ConnectTimeout)} (connect-timeout)"
                : $"no response from {target} within {Seconds(Options.StalledDownloadTimeout)} (stalled-download-timeout)";
            throw new TransientFailure(reason, e);
        }
        catch (HttpRequestException e)
        {
            // Refused or reset connections, DNS failures, TLS failures and malformed responses: Nix retries all of these.
            throw new TransientFailure($"request to {target} failed: {e.Message}", e);
        }
    }

    /// <summary>Opens a connection as SocketsHttpHandler does by default, telling the request that asked for it when it is up.</summary>
    private static async ValueTask<Stream> ConnectAsync(SocketsHttpConnectionContext context, CancellationToken cancellationToken)
    {
        context.InitialRequestMessage.Options.TryGetValue(DeadlineKey, out var deadline);
        deadline?.Connecting();
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(context.DnsEndPoint, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
        deadline?.Connected();
        return new NetworkStream(socket, ownsSocket: true);
    }

    private static Uri RedirectTarget(Uri url, Uri from, Uri? location)
    {
        if (location is null)
            throw new BinaryCacheException(url, $"redirect from {from} without a Location");
        var next = location.IsAbsoluteUri ? location : new Uri(from, location);
        if (next.Scheme is not ("http" or "https"))
            throw new BinaryCacheException(url, $"redirect from {from} to {next}, which is not HTTP");
        if (from.Scheme == "https" && next.Scheme == "http")
            throw new BinaryCacheException(url, $"redirect from {from} to {next} would drop TLS");
        return next;
    }

    private async Task<HttpBodyStream> OpenBodyAsync(Uri url, HttpResponseMessage response, CancellationToken cancellationToken)
    {
        try
        {
            var inner = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
            return new HttpBodyStream(url, response, inner, response.Content.Headers.ContentLength, Options.StalledDownloadTimeout);
        }
        catch (HttpRequestException e)
        {
            throw new TransientFailure($"no body: {e.Message}", e);
        }
    }

    /// <summary>The whole body, or null when more than <paramref name="limit"/> bytes arrive.</summary>
    private static async Task<byte[]?> ReadWholeAsync(Stream body, long? length, long limit, CancellationToken cancellationToken)
    {
        if (length is { } announced)
        {
            // The body stream fails if it ends short of the announced length, so this reads it all.
            var bytes = new byte[announced];
            await body.ReadExactlyAsync(bytes, cancellationToken).ConfigureAwait(false);
            return bytes;
        }
        // No length announced: the limit is enforced on what arrives.
        using var collected = new MemoryStream();
        var chunk = new byte[ReadChunkSize];
        int n;
        while ((n = await body.ReadAsync(chunk, cancellationToken).ConfigureAwait(false)) > 0)
        {
            if (collected.Length + n > limit)
                return null;
            collected.Write(chunk, 0, n);
        }
        return collected.ToArray();
    }

    private static BinaryCacheException TooLarge(Uri url, long limit, string what) =>
        new(url, $"file is larger than the {limit} bytes allowed: {what}");

    internal static string Seconds(TimeSpan span) => $"{span.TotalSeconds:0.###} s";

    /// <summary>
    /// The deadline of one request's response headers: the stall timeout from sending, or, when the request
    /// opens a connection, the connect timeout (the handler's) plus the stall timeout from when it is up.
    /// </summary>
    private sealed class ResponseDeadline(CancellationTokenSource timer, TransportOptions options)
    {
        public void Connecting() => Reschedule(options.StalledDownloadTimeout == Timeout.InfiniteTimeSpan
            ? Timeout.InfiniteTimeSpan
            : options.ConnectTimeout + options.StalledDownloadTimeout);

        public void Connected() => Reschedule(options.StalledDownloadTimeout);

        private void Reschedule(TimeSpan delay)
        {
            try
            {
                timer.CancelAfter(delay);
            }
            catch (ObjectDisposedException)
            {
                // The request ended before the connection it asked for was up; another request may use it.
            }
        }
    }

    /// <summary>A failure that another attempt may not meet: its message is the reason given if none succeeds.</summary>
    private sealed class TransientFailure(string reason, Exception? inner = null) : Exception(reason, inner);
}
