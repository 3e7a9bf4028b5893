using System.Buffers;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace LazyStore.Store.Serving;

/// <summary>
/// Serves a binary cache directory over HTTP/1.1 on 127.0.0.1, on an ephemeral port: GET and HEAD of its
/// files, persistent connections, and per-request faults (<see cref="Faults"/>) injected at the socket
/// level. Built on <see cref="TcpListener"/> rather than HttpListener so that a fault can cut, reset or
/// stall a connection in the middle of a body.
/// </summary>
public sealed class BinaryCacheServer : IAsyncDisposable, IDisposable
{
    private const int MaxHeaderBytes = 16 * 1024;
    private const int BodyBufferSize = 64 * 1024;
    private static readonly TimeSpan ShutdownTimeout = TimeSpan.FromSeconds(10);

    private readonly string _root;
    private readonly TextWriter? _log;
    private readonly TcpListener _listener;
    private readonly CancellationTokenSource _stopping = new();
    private readonly Task _accepting;
    private readonly ConcurrentDictionary<long, (Socket Socket, Task Task)> _connections = new();
    private readonly Lock _lock = new();
    private readonly List<RequestRecord> _requests = [];
    private readonly Dictionary<string, int> _attempts = new(StringComparer.Ordinal);
    private long _bodyBytesSent;
    private long _connectionsAccepted;
    private int _disposed;

    /// <summary>Starts listening at once. <paramref name="log"/>, if given, gets one line per request (written under a lock).</summary>
    public BinaryCacheServer(string rootDirectory, TextWriter? log = null)
    {
        var root = Path.GetFullPath(rootDirectory);
        if (!Directory.Exists(root))
            throw new DirectoryNotFoundException($"binary cache directory '{root}' does not exist");
        _root = Path.EndsInDirectorySeparator(root) ? root : root + Path.DirectorySeparatorChar;
        _log = log is null ? null : TextWriter.Synchronized(log);
        _listener = new TcpListener(IPAddress.Loopback, 0);
        _listener.Start();
        BaseUri = new Uri($"http://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}/");
        _accepting = Task.Run(() => AcceptAsync(_stopping.Token));
    }

    /// <summary><c>http://127.0.0.1:PORT/</c>; a file's URL is this plus its path under the root directory.</summary>
    public Uri BaseUri { get; }

    /// <summary>
    /// Called for each request before it is answered; a non-null result replaces the normal answer.
    /// Runs on the connection's task, concurrently with other requests.
    /// </summary>
    public Func<ServerRequest, ServerFault?>? Faults { get; set; }

    /// <summary>Body bytes handed to connections so far, over all requests (a reset may lose the last of them).</summary>
    public long BodyBytesSent => Interlocked.Read(ref _bodyBytesSent);

    /// <summary>Connections accepted so far; fewer than requests when clients keep connections alive.</summary>
    public long ConnectionsAccepted => Interlocked.Read(ref _connectionsAccepted);

    /// <summary>
    /// Every request received so far, in order of arrival, as far as it has got: a request appears before
    /// its answer is sent, and its status is set before the client can see it.
    /// </summary>
    public IReadOnlyList<ServedRequest> Requests
    {
        get
        {
            lock (_lock)
                return _requests.Select(r => r.Snapshot()).ToList();
        }
    }

    /// <summary>How many requests so far had a path (relative to the root, no leading slash) matching <paramref name="pathFilter"/>.</summary>
    public int CountRequests(Func<string, bool> pathFilter)
    {
        string[] paths;
        lock (_lock)
            paths = _requests.Select(r => r.Request.Path).ToArray();
        return paths.Count(pathFilter);
    }

    /// <summary>Stops accepting, cancels every connection (stalls and delays included) and waits for them, within a bound.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
            return;
        await _stopping.CancelAsync().ConfigureAwait(false);
        _listener.Stop();
        var accepting = await Task.WhenAny(_accepting, Task.Delay(ShutdownTimeout)).ConfigureAwait(false) == _accepting;
        var connections = _connections.Values.ToArray();
        foreach (var (socket, _) in connections)
            socket.Dispose();
        var all = Task.WhenAll(connections.Select(c => c.Task));
        var closed = await Task.WhenAny(all, Task.Delay(ShutdownTimeout)).ConfigureAwait(false) == all;
        if (!accepting || !closed)
            _log?.WriteLine($"binary cache server {BaseUri}: connections still open {ShutdownTimeout.TotalSeconds} s after stopping");
        else
            _stopping.Dispose();
    }

    public void Dispose() => DisposeAsync().AsTask().GetAwaiter().GetResult();

    private async Task AcceptAsync(CancellationToken stopping)
    {
        long lastId = 0;
        while (true)
        {
            Socket socket;
            try
            {
                socket = await _listener.AcceptSocketAsync(stopping).ConfigureAwait(false);
            }
            catch (Exception) when (stopping.IsCancellationRequested)
            {
                return;
            }
            catch (SocketException e)
            {
                // A client that gave up before its connection was accepted.
                _log?.WriteLine($"binary cache server {BaseUri}: accept failed: {e.Message}");
                continue;
            }
            Interlocked.Increment(ref _connectionsAccepted);
            socket.NoDelay = true;
            long id = ++lastId;
            var task = Task.Run(() => ServeConnectionAsync(socket, stopping), CancellationToken.None);
            _connections[id] = (socket, task);
            _ = task.ContinueWith(finished => _connections.TryRemove(id, out _), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }
    }

    private async Task ServeConnectionAsync(Socket socket, CancellationToken stopping)
    {
        try
        {
            await using var stream = new NetworkStream(socket, ownsSocket: true);
            var reader = new RequestReader(stream);
            while (true)
            {
                ParsedRequest? request;
                try
                {
                    request = await reader.ReadAsync(stopping).ConfigureAwait(false);
                }
                catch (BadRequestException e)
                {
                    _log?.WriteLine($"binary cache server {BaseUri}: bad request: {e.Message}");
                    await SendHeadAsync(stream, null, e.Status, Encoding.ASCII.GetByteCount(e.Message) + 1, "text/plain", keepAlive: false, stopping).ConfigureAwait(false);
                    await stream.WriteAsync(Encoding.ASCII.GetBytes(e.Message + "\n"), stopping).ConfigureAwait(false);
                    break;
                }
                if (request is null || !await RespondAsync(socket, stream, request, stopping).ConfigureAwait(false))
                    break;
            }
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or OperationCanceledException)
        {
            // The client went away, a fault closed the connection, or the server is stopping.
        }
        catch (Exception e)
        {
            _log?.WriteLine($"binary cache server {BaseUri}: connection failed: {e}");
        }
        finally
        {
            socket.Dispose();
        }
    }

    /// <summary>Answers one request; false when the connection is to be closed afterwards.</summary>
    private async Task<bool> RespondAsync(Socket socket, NetworkStream stream, ParsedRequest parsed, CancellationToken stopping)
    {
        var record = Record(parsed);
        try
        {
            bool keepAlive = parsed.KeepAlive;
            bool head = parsed.Method == "HEAD";
            var fault = record.Fault;
            while (fault is ServerFault.Delay or ServerFault.Hold)
            {
                if (fault is ServerFault.Delay delay)
                {
                    await Task.Delay(delay.Duration, stopping).ConfigureAwait(false);
                    fault = delay.Then;
                }
                else if (fault is ServerFault.Hold hold)
                {
                    await hold.Until.WaitAsync(stopping).ConfigureAwait(false);
                    fault = hold.Then;
                }
            }
            if (parsed.Method is not ("GET" or "HEAD"))
                return await SendTextAsync(stream, record, 405, head, keepAlive, stopping, ("Allow", "GET, HEAD")).ConfigureAwait(false);
            switch (fault)
            {
                case ServerFault.Status status:
                    return await SendTextAsync(stream, record, status.Code, head, keepAlive, stopping).ConfigureAwait(false);
                case ServerFault.Redirect redirect:
                    return await SendTextAsync(stream, record, redirect.Code, head, keepAlive, stopping, ("Location", redirect.Location.AbsoluteUri)).ConfigureAwait(false);
                case ServerFault.Body body:
                    await SendHeadAsync(stream, record, 200, body.Replacement.Length, ContentType(parsed.Path), keepAlive, stopping).ConfigureAwait(false);
                    if (!head)
                        await SendBodyBytesAsync(stream, body.Replacement, record, stopping).ConfigureAwait(false);
                    return keepAlive;
            }

            var (file, refusal) = OpenFile(parsed.Segments);
            if (file is null)
                return await SendTextAsync(stream, record, refusal, head, keepAlive, stopping).ConfigureAwait(false);
            await using var opened = file;
            long length = file.Length;
            if (head)
            {
                await SendHeadAsync(stream, record, 200, length, ContentType(parsed.Path), keepAlive, stopping).ConfigureAwait(false);
                return keepAlive;
            }
            switch (fault)
            {
                case ServerFault.Truncate truncate:
                    await SendHeadAsync(stream, record, 200, length, ContentType(parsed.Path), keepAlive, stopping).ConfigureAwait(false);
                    await SendFileBodyAsync(stream, file, Math.Min(truncate.AfterBodyBytes, length), record, stopping).ConfigureAwait(false);
                    return false;
                case ServerFault.Reset reset:
                    await SendHeadAsync(stream, record, 200, length, ContentType(parsed.Path), keepAlive, stopping).ConfigureAwait(false);
                    await SendFileBodyAsync(stream, file, Math.Min(reset.AfterBodyBytes, length), record, stopping).ConfigureAwait(false);
                    // Closing with a zero linger time sends RST instead of FIN.
                    socket.LingerState = new LingerOption(true, 0);
                    socket.Close();
                    return false;
                case ServerFault.Stall stall:
                    await SendHeadAsync(stream, record, 200, length, ContentType(parsed.Path), keepAlive, stopping).ConfigureAwait(false);
                    await SendFileBodyAsync(stream, file, Math.Min(stall.AfterBodyBytes, length), record, stopping).ConfigureAwait(false);
                    await WaitForClientToCloseAsync(stream, stopping).ConfigureAwait(false);
                    return false;
                case ServerFault.Trickle trickle:
                    await SendHeadAsync(stream, record, 200, length, ContentType(parsed.Path), keepAlive, stopping).ConfigureAwait(false);
                    await TrickleFileBodyAsync(stream, file, length, trickle, record, stopping).ConfigureAwait(false);
                    return keepAlive;
                case ServerFault.CloseDelimited:
                    await SendHeadAsync(stream, record, 200, null, ContentType(parsed.Path), keepAlive: false, stopping).ConfigureAwait(false);
                    await SendFileBodyAsync(stream, file, length, record, stopping).ConfigureAwait(false);
                    return false;
                default:
                    await SendHeadAsync(stream, record, 200, length, ContentType(parsed.Path), keepAlive, stopping).ConfigureAwait(false);
                    await SendFileBodyAsync(stream, file, length, record, stopping).ConfigureAwait(false);
                    return keepAlive;
            }
        }
        finally
        {
            Complete(record);
        }
    }

    private RequestRecord Record(ParsedRequest parsed)
    {
        RequestRecord record;
        lock (_lock)
        {
            int attempt = _attempts.GetValueOrDefault(parsed.Path) + 1;
            _attempts[parsed.Path] = attempt;
            record = new RequestRecord(new ServerRequest(parsed.Method, parsed.Path, attempt, parsed.Headers));
            _requests.Add(record);
        }
        // The hook is the caller's code: not run under the lock. The request is recorded before it runs,
        // so that whatever the hook sets off finds it counted.
        var fault = Faults?.Invoke(record.Request);
        lock (_lock)
            record.Fault = fault;
        return record;
    }

    private void Complete(RequestRecord record)
    {
        ServedRequest served;
        lock (_lock)
        {
            record.Completed = true;
            served = record.Snapshot();
        }
        var fault = served.Fault is null ? "" : $" ({served.Fault})";
        _log?.WriteLine($"{served.Method} /{served.Path} {served.Status} {served.BodyBytesSent} bytes{fault}");
    }

    /// <summary>The file at <paramref name="segments"/> under the root, or why there is none (an HTTP status).</summary>
    private (FileStream? File, int Refusal) OpenFile(IReadOnlyList<string> segments)
    {
        // Requests are remote input: only plain names, so that no path leaves the root.
        if (segments.Any(s => s is "." or ".." || s.Contains('/') || s.Contains('\0')))
            return (null, 400);
        if (segments.Count == 0 || segments.Any(s => s.Length == 0))
            return (null, 404);
        var full = Path.Join(_root, string.Join('/', segments));
        if (!full.StartsWith(_root, StringComparison.Ordinal))
            return (null, 400);
        if (!File.Exists(full))
            return (null, 404);
        try
        {
            return (new FileStream(full, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 0, FileOptions.Asynchronous | FileOptions.SequentialScan), 200);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return (null, 404);
        }
        catch (UnauthorizedAccessException)
        {
            return (null, 403);
        }
    }

    private static string ContentType(string path) => Path.GetFileName(path) switch
    {
        "nix-cache-info" => "text/x-nix-cache-info",
        var name when name.EndsWith(".narinfo", StringComparison.Ordinal) => "text/x-nix-narinfo",
        // Nix uploads NAR listings with this type.
        var name when name.EndsWith(".ls", StringComparison.Ordinal) => "application/json",
        _ => "application/octet-stream",
    };

    private async Task<bool> SendTextAsync(NetworkStream stream, RequestRecord record, int status, bool head, bool keepAlive,
        CancellationToken stopping, params (string Name, string Value)[] extraHeaders)
    {
        var text = Encoding.ASCII.GetBytes($"{status} {ReasonPhrase(status)}\n");
        await SendHeadAsync(stream, record, status, text.Length, "text/plain", keepAlive, stopping, extraHeaders).ConfigureAwait(false);
        if (!head)
            await SendBodyBytesAsync(stream, text, record, stopping).ConfigureAwait(false);
        return keepAlive;
    }

    private async Task SendHeadAsync(NetworkStream stream, RequestRecord? record, int status, long? contentLength, string contentType,
        bool keepAlive, CancellationToken stopping, params (string Name, string Value)[] extraHeaders)
    {
        if (record is not null)
        {
            lock (_lock)
                record.Status = status;
        }
        var head = new StringBuilder();
        head.Append("HTTP/1.1 ").Append(status).Append(' ').Append(ReasonPhrase(status)).Append("\r\n");
        if (contentLength is { } length)
            head.Append("Content-Length: ").Append(length).Append("\r\n");
        head.Append("Content-Type: ").Append(contentType).Append("\r\n");
        head.Append("Connection: ").Append(keepAlive ? "keep-alive" : "close").Append("\r\n");
        foreach (var (name, value) in extraHeaders)
            head.Append(name).Append(": ").Append(value).Append("\r\n");
        head.Append("\r\n");
        await stream.WriteAsync(Encoding.Latin1.GetBytes(head.ToString()), stopping).ConfigureAwait(false);
    }

    private async Task SendFileBodyAsync(NetworkStream stream, FileStream file, long count, RequestRecord record, CancellationToken stopping)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(BodyBufferSize);
        try
        {
            while (count > 0)
            {
                int n = await file.ReadAsync(buffer.AsMemory(0, (int)Math.Min(buffer.Length, count)), stopping).ConfigureAwait(false);
                if (n == 0)
                    throw new InvalidDataException($"'{file.Name}' shrank while it was being served");
                await SendBodyBytesAsync(stream, buffer.AsMemory(0, n), record, stopping).ConfigureAwait(false);
                count -= n;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>Sends the body a few bytes at a time, one piece per interval, until it is all sent or the client goes.</summary>
    private async Task TrickleFileBodyAsync(NetworkStream stream, FileStream file, long count, ServerFault.Trickle trickle, RequestRecord record, CancellationToken stopping)
    {
        var piece = new byte[Math.Max(1, trickle.BytesPerInterval)];
        while (count > 0)
        {
            int n = await file.ReadAsync(piece.AsMemory(0, (int)Math.Min(piece.Length, count)), stopping).ConfigureAwait(false);
            if (n == 0)
                throw new InvalidDataException($"'{file.Name}' shrank while it was being served");
            await SendBodyBytesAsync(stream, piece.AsMemory(0, n), record, stopping).ConfigureAwait(false);
            count -= n;
            if (count > 0)
                await Task.Delay(trickle.Interval, stopping).ConfigureAwait(false);
        }
    }

    private async Task SendBodyBytesAsync(NetworkStream stream, ReadOnlyMemory<byte> bytes, RequestRecord record, CancellationToken stopping)
    {
        // Counted before the write, so that a client that has read the bytes never sees a smaller count.
        Interlocked.Add(ref record.BodyBytesSent, bytes.Length);
        Interlocked.Add(ref _bodyBytesSent, bytes.Length);
        await stream.WriteAsync(bytes, stopping).ConfigureAwait(false);
    }

    /// <summary>Holds a stalled connection until the client closes or resets it (or the server stops).</summary>
    private static async Task WaitForClientToCloseAsync(NetworkStream stream, CancellationToken stopping)
    {
        var discard = new byte[256];
        while (await stream.ReadAsync(discard, stopping).ConfigureAwait(false) > 0)
        {
        }
    }

    private static string ReasonPhrase(int status) => status switch
    {
        200 => "OK",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        410 => "Gone",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    };

    private sealed class RequestRecord(ServerRequest request)
    {
        public long BodyBytesSent;

        public ServerRequest Request { get; } = request;

        public ServerFault? Fault { get; set; }

        public int Status { get; set; }

        public bool Completed { get; set; }

        public ServedRequest Snapshot() =>
            new(Request.Method, Request.Path, Request.Attempt, Request.Headers, Status, Interlocked.Read(ref BodyBytesSent), Fault, Completed);
    }

    /// <summary>A request head as received; <see cref="Path"/> is percent-decoded, relative to the root, without the query.</summary>
    private sealed record ParsedRequest(string Method, string Path, IReadOnlyList<string> Segments, bool Http11, IReadOnlyDictionary<string, string> Headers)
    {
        /// <summary>RFC 9112 §9.3: HTTP/1.1 keeps the connection unless told <c>close</c>; HTTP/1.0 only if told <c>keep-alive</c>.</summary>
        public bool KeepAlive
        {
            get
            {
                var options = Headers.TryGetValue("Connection", out var value)
                    ? value.Split(',', StringSplitOptions.TrimEntries)
                    : [];
                if (options.Contains("close", StringComparer.OrdinalIgnoreCase))
                    return false;
                return Http11 || options.Contains("keep-alive", StringComparer.OrdinalIgnoreCase);
            }
        }
    }

    private sealed class BadRequestException(int status, string message) : Exception(message)
    {
        public int Status { get; } = status;
    }

    /// <summary>Reads request heads off a connection; bytes after one head are kept for the next (pipelining).</summary>
    private sealed class RequestReader(NetworkStream stream)
    {
        private readonly byte[] _buffer = new byte[MaxHeaderBytes];
        private int _start;
        private int _end;

        /// <summary>The next request, or null when the client closed the connection between requests.</summary>
        public async Task<ParsedRequest?> ReadAsync(CancellationToken stopping)
        {
            while (true)
            {
                int headEnd = _buffer.AsSpan(_start, _end - _start).IndexOf("\r\n\r\n"u8);
                if (headEnd >= 0)
                {
                    var head = Encoding.Latin1.GetString(_buffer, _start, headEnd);
                    _start += headEnd + 4;
                    return Parse(head);
                }
                if (_start > 0)
                {
                    Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
                    _end -= _start;
                    _start = 0;
                }
                if (_end == _buffer.Length)
                    throw new BadRequestException(431, $"request head longer than {MaxHeaderBytes} bytes");
                int n = await stream.ReadAsync(_buffer.AsMemory(_end), stopping).ConfigureAwait(false);
                if (n == 0)
                {
                    if (_end == 0)
                        return null;
                    throw new IOException("the client closed the connection in the middle of a request head");
                }
                _end += n;
            }
        }

        private static ParsedRequest Parse(string head)
        {
            var lines = head.TrimStart('\r', '\n').Split("\r\n");
            var requestLine = lines[0].Split(' ');
            if (requestLine.Length != 3 || requestLine[2] is not ("HTTP/1.1" or "HTTP/1.0"))
                throw new BadRequestException(400, "malformed request line");
            var headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
            foreach (var line in lines.Skip(1))
            {
                int colon = line.IndexOf(':');
                if (colon <= 0 || char.IsWhiteSpace(line[0]))
                    throw new BadRequestException(400, "malformed header line");
                var name = line[..colon];
                var value = line[(colon + 1)..].Trim();
                headers[name] = headers.TryGetValue(name, out var earlier) ? $"{earlier}, {value}" : value;
            }
            if (headers.ContainsKey("Transfer-Encoding") || (headers.TryGetValue("Content-Length", out var bodyLength) && bodyLength != "0"))
                throw new BadRequestException(400, "request bodies are not accepted");
            var target = requestLine[1];
            if (!target.StartsWith('/'))
                throw new BadRequestException(400, "request target is not an absolute path");
            int query = target.IndexOf('?');
            var rawPath = query < 0 ? target[1..] : target[1..query];
            var segments = rawPath.Length == 0 ? [] : rawPath.Split('/').Select(Uri.UnescapeDataString).ToArray();
            return new ParsedRequest(requestLine[0], string.Join('/', segments), segments, requestLine[2] == "HTTP/1.1", headers);
        }
    }
}

/// <summary>A request as <see cref="BinaryCacheServer.Faults"/> sees it. <see cref="Attempt"/> counts requests for this path so far, this one included.</summary>
public sealed record ServerRequest(string Method, string Path, int Attempt, IReadOnlyDictionary<string, string> Headers);

/// <summary>One request and what the server has done with it so far.</summary>
public sealed record ServedRequest(
    string Method, string Path, int Attempt, IReadOnlyDictionary<string, string> Headers,
    int Status, long BodyBytesSent, ServerFault? Fault, bool Completed);

/// <summary>What the server does instead of answering a request normally.</summary>
public abstract record ServerFault
{
    private ServerFault()
    {
    }

    /// <summary>Answers with this status and a short text body.</summary>
    public sealed record Status(int Code) : ServerFault;

    /// <summary>Answers with a redirect to <paramref name="Location"/>.</summary>
    public sealed record Redirect(Uri Location, int Code = 302) : ServerFault;

    /// <summary>Serves these bytes, with their own length, instead of the file.</summary>
    public sealed record Body(byte[] Replacement) : ServerFault;

    /// <summary>
    /// Waits, then answers normally or with <paramref name="Then"/>. <see cref="Timeout.InfiniteTimeSpan"/>
    /// makes a server that accepts and never answers (until it stops).
    /// </summary>
    public sealed record Delay(TimeSpan Duration, ServerFault? Then = null) : ServerFault;

    /// <summary>Answers nothing until <paramref name="Until"/> completes, then normally or with <paramref name="Then"/>.</summary>
    public sealed record Hold(Task Until, ServerFault? Then = null) : ServerFault;

    /// <summary>Announces the file's full length, sends this many body bytes, then closes the connection (FIN).</summary>
    public sealed record Truncate(long AfterBodyBytes) : ServerFault;

    /// <summary>Announces the file's full length, sends this many body bytes, then aborts the connection (RST).</summary>
    public sealed record Reset(long AfterBodyBytes) : ServerFault;

    /// <summary>Announces the file's full length, sends this many body bytes, then sends nothing until the client gives up.</summary>
    public sealed record Stall(long AfterBodyBytes = 0) : ServerFault;

    /// <summary>
    /// Announces the file's full length and sends <paramref name="BytesPerInterval"/> body bytes per
    /// <paramref name="Interval"/>: a live but very slow server, which a stall timeout never ends.
    /// </summary>
    public sealed record Trickle(TimeSpan Interval, int BytesPerInterval = 1) : ServerFault;

    /// <summary>Serves the file without Content-Length, ending the body by closing the connection (RFC 9112 §6.3).</summary>
    public sealed record CloseDelimited : ServerFault;
}
