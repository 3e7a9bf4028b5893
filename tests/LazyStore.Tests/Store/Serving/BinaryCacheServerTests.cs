using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using LazyStore.Store.Serving;
using LazyStore.Tests.Support;

namespace LazyStore.Tests.Store.Serving;

public sealed class BinaryCacheServerTests : IAsyncLifetime
{
    private readonly TempDir _dir = new();
    private readonly BinaryCacheServer _server;
    private readonly HttpClient _client = new(new SocketsHttpHandler { AllowAutoRedirect = false });

    public BinaryCacheServerTests()
    {
        Directory.CreateDirectory(_dir.Sub("cache"));
        File.WriteAllText(_dir.Sub("secret"), "TOPSECRET");
        _server = new BinaryCacheServer(_dir.Sub("cache"));
    }

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        _client.Dispose();
        await _server.DisposeAsync();
        _dir.Dispose();
    }

    [Theory]
    [InlineData("nix-cache-info", "text/x-nix-cache-info")]
    [InlineData("0123.narinfo", "text/x-nix-narinfo")]
    [InlineData("0123.ls", "application/json")]
    [InlineData("nar/0123.nar.xz", "application/octet-stream")]
    public async Task Serves_files_with_their_length_and_type(string path, string contentType)
    {
        var content = Put(path, 1000);
        using var response = await _client.GetAsync(Url(path));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(contentType, response.Content.Headers.ContentType?.MediaType);
        Assert.Equal(content.Length, response.Content.Headers.ContentLength);
        Assert.Equal(content, await response.Content.ReadAsByteArrayAsync());
    }

    [Fact]
    public async Task Head_sends_the_headers_without_the_body()
    {
        Put("nar/x.nar", 12345);
        using var response = await _client.SendAsync(new HttpRequestMessage(HttpMethod.Head, Url("nar/x.nar")));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(12345, response.Content.Headers.ContentLength);
        Assert.Empty(await response.Content.ReadAsByteArrayAsync());
        var request = Assert.Single(_server.Requests);
        Assert.Equal(("HEAD", 200, 0L), (request.Method, request.Status, request.BodyBytesSent));
        Assert.Equal(0, _server.BodyBytesSent);
    }

    [Theory]
    [InlineData("no-such.narinfo")]
    [InlineData("nar")]
    [InlineData("")]
    [InlineData("nar//x.nar")]
    public async Task Missing_files_and_directories_are_not_found(string path)
    {
        Put("nar/x.nar", 10);
        using var response = await _client.GetAsync(new Uri(_server.BaseUri.AbsoluteUri + path));
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
    }

    [Theory]
    [InlineData("/../secret")]
    [InlineData("/%2e%2e/secret")]
    [InlineData("/nar/..%2F..%2Fsecret")]
    [InlineData("/nar/%2E%2E/%2E%2E/secret")]
    [InlineData("/./nar/x.nar")]
    public async Task Paths_leaving_the_root_are_refused(string target)
    {
        Put("nar/x.nar", 10);
        var (head, body) = Split(await ExchangeAsync($"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
        Assert.StartsWith("HTTP/1.1 400 ", head, StringComparison.Ordinal);
        Assert.DoesNotContain("TOPSECRET", Encoding.ASCII.GetString(body), StringComparison.Ordinal);
        Assert.Equal(400, Assert.Single(_server.Requests).Status);
    }

    [Fact]
    public async Task Other_methods_are_not_allowed()
    {
        Put("x", 10);
        var (head, _) = Split(await ExchangeAsync("DELETE /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
        Assert.StartsWith("HTTP/1.1 405 ", head, StringComparison.Ordinal);
        Assert.Contains("Allow: GET, HEAD", head, StringComparison.Ordinal);
        Assert.True(File.Exists(_dir.Sub("cache/x")));
    }

    [Theory]
    [InlineData("garbage\r\n\r\n")]
    [InlineData("GET /x HTTP/2.0\r\n\r\n")]
    [InlineData("GET x HTTP/1.1\r\n\r\n")]
    [InlineData("GET /x HTTP/1.1\r\nno colon\r\n\r\n")]
    [InlineData("GET /x HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc")]
    public async Task Malformed_requests_get_400_and_a_closed_connection(string request)
    {
        Put("x", 10);
        var (head, _) = Split(await ExchangeAsync(request));
        Assert.StartsWith("HTTP/1.1 400 ", head, StringComparison.Ordinal);
        Assert.Contains("Connection: close", head, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_oversized_request_head_gets_431()
    {
        using var client = await SendAsync($"GET /x HTTP/1.1\r\nX-Padding: {new string('a', 20_000)}\r\n\r\n");
        var stream = client.GetStream();
        // The server closes with part of the request unread, which resets the connection after its answer.
        Assert.StartsWith("HTTP/1.1 431 ", await ReadHeadAsync(stream), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Pipelined_requests_are_answered_in_order_on_one_connection()
    {
        Put("a", 3);
        File.WriteAllText(_dir.Sub("cache/b"), "bbbbb");
        File.WriteAllText(_dir.Sub("cache/a"), "aaa");
        var response = Encoding.ASCII.GetString(await ExchangeAsync(
            "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
        int first = response.IndexOf("HTTP/1.1 200 OK", StringComparison.Ordinal);
        int second = response.IndexOf("HTTP/1.1 200 OK", first + 1, StringComparison.Ordinal);
        Assert.True(first == 0 && second > 0, response);
        Assert.EndsWith("\r\n\r\naaa", response[..second], StringComparison.Ordinal);
        Assert.EndsWith("\r\n\r\nbbbbb", response, StringComparison.Ordinal);
        Assert.Equal(1, _server.ConnectionsAccepted);
    }

    [Fact]
    public async Task Connections_are_kept_alive_between_requests()
    {
        Put("a", 100);
        for (int i = 0; i < 3; i++)
        {
            using var response = await _client.GetAsync(Url("a"));
            Assert.Equal(100, (await response.Content.ReadAsByteArrayAsync()).Length);
        }
        Assert.Equal(1, _server.ConnectionsAccepted);
    }

    [Theory(Timeout = 30_000)]
    [InlineData("GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")]
    [InlineData("GET /a HTTP/1.0\r\n\r\n")]
    public async Task Connection_close_and_HTTP_1_0_close_after_the_answer(string request)
    {
        var content = Put("a", 100);
        var (head, body) = Split(await ExchangeAsync(request));
        Assert.Contains("Connection: close", head, StringComparison.Ordinal);
        Assert.Equal(content, body);
    }

    [Fact]
    public async Task Requests_record_attempts_statuses_faults_and_bytes()
    {
        var content = Put("x.narinfo", 1000);
        _server.Faults = r => r.Attempt == 1 ? new ServerFault.Status(503) : null;
        using (var failed = await _client.GetAsync(Url("x.narinfo")))
            Assert.Equal(HttpStatusCode.ServiceUnavailable, failed.StatusCode);
        using (var ok = await _client.GetAsync(Url("x.narinfo")))
            Assert.Equal(content, await ok.Content.ReadAsByteArrayAsync());
        var requests = _server.Requests;
        Assert.Equal([1, 2], requests.Select(r => r.Attempt));
        Assert.Equal([503, 200], requests.Select(r => r.Status));
        Assert.Equal(new ServerFault.Status(503), requests[0].Fault);
        Assert.Null(requests[1].Fault);
        Assert.Equal(content.Length, requests[1].BodyBytesSent);
        Assert.Equal(requests[0].BodyBytesSent + content.Length, _server.BodyBytesSent);
        Assert.Equal(2, _server.CountRequests(p => p == "x.narinfo"));
        Assert.Equal(0, _server.CountRequests(p => p == "other"));
    }

    [Fact]
    public async Task Truncate_announces_the_full_length_then_closes_early()
    {
        Put("nar/x.nar", 5000);
        _server.Faults = _ => new ServerFault.Truncate(1000);
        var (head, body) = Split(await ExchangeAsync("GET /nar/x.nar HTTP/1.1\r\nHost: x\r\n\r\n"));
        Assert.Contains("Content-Length: 5000", head, StringComparison.Ordinal);
        Assert.Equal(1000, body.Length);
    }

    [Fact]
    public async Task Reset_aborts_the_connection_after_the_given_bytes()
    {
        Put("nar/x.nar", 100_000);
        _server.Faults = _ => new ServerFault.Reset(1000);
        using var client = await SendAsync("GET /nar/x.nar HTTP/1.1\r\nHost: x\r\n\r\n");
        var stream = client.GetStream();
        var received = new MemoryStream();
        var e = await Assert.ThrowsAnyAsync<IOException>(() => stream.CopyToAsync(received));
        Assert.Equal(SocketError.ConnectionReset, Assert.IsType<SocketException>(e.InnerException).SocketErrorCode);
        Assert.True(received.Length <= 1000 + 200, $"{received.Length} bytes arrived");
        Assert.Equal(1000, Assert.Single(_server.Requests).BodyBytesSent);
    }

    [Fact(Timeout = 30_000)]
    public async Task Stall_sends_nothing_more_and_disposal_ends_it()
    {
        Put("nar/x.nar", 5000);
        _server.Faults = _ => new ServerFault.Stall(100);
        using var client = await SendAsync("GET /nar/x.nar HTTP/1.1\r\nHost: x\r\n\r\n");
        var stream = client.GetStream();
        var head = await ReadHeadAsync(stream);
        Assert.Contains("Content-Length: 5000", head, StringComparison.Ordinal);
        var body = new byte[100];
        await stream.ReadExactlyAsync(body);
        using (var quiet = new CancellationTokenSource(TimeSpan.FromMilliseconds(300)))
            await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await stream.ReadExactlyAsync(new byte[1], quiet.Token));

        var clock = Stopwatch.StartNew();
        await _server.DisposeAsync();
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"disposal took {clock.Elapsed}");
        Assert.True(Assert.Single(_server.Requests).Completed);
    }

    [Fact(Timeout = 30_000)]
    public async Task Disposal_ends_delays_and_stops_listening()
    {
        Put("x", 10);
        var arrived = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _server.Faults = _ =>
        {
            arrived.TrySetResult();
            return new ServerFault.Delay(TimeSpan.FromMinutes(5));
        };
        var pending = _client.GetAsync(Url("x"));
        await arrived.Task;
        var clock = Stopwatch.StartNew();
        await _server.DisposeAsync();
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"disposal took {clock.Elapsed}");
        await Assert.ThrowsAnyAsync<HttpRequestException>(() => pending);
        await Assert.ThrowsAnyAsync<SocketException>(ConnectAsync);
    }

    [Fact]
    public async Task Delay_then_answers()
    {
        var content = Put("x", 10);
        _server.Faults = _ => new ServerFault.Delay(TimeSpan.FromMilliseconds(200), new ServerFault.Body("other"u8.ToArray()));
        var clock = Stopwatch.StartNew();
        using var response = await _client.GetAsync(Url("x"));
        Assert.True(clock.Elapsed >= TimeSpan.FromMilliseconds(190), $"answered after {clock.Elapsed}");
        Assert.Equal("other", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Body_is_served_instead_of_the_file_with_its_own_length()
    {
        _server.Faults = _ => new ServerFault.Body("replacement"u8.ToArray());
        using var response = await _client.GetAsync(Url("no-such-file"));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(11, response.Content.Headers.ContentLength);
        Assert.Equal("replacement", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Redirect_answers_with_a_location()
    {
        var target = new Uri("http://127.0.0.1:1/elsewhere");
        _server.Faults = _ => new ServerFault.Redirect(target, 307);
        using var response = await _client.GetAsync(Url("x"));
        Assert.Equal(HttpStatusCode.TemporaryRedirect, response.StatusCode);
        Assert.Equal(target, response.Headers.Location);
    }

    [Fact]
    public async Task CloseDelimited_sends_no_length_and_closes_after_the_body()
    {
        var content = Put("x", 3000);
        _server.Faults = _ => new ServerFault.CloseDelimited();
        var (head, body) = Split(await ExchangeAsync("GET /x HTTP/1.1\r\nHost: x\r\n\r\n"));
        Assert.DoesNotContain("Content-Length", head, StringComparison.Ordinal);
        Assert.Equal(content, body);
    }

    [Fact]
    public async Task Concurrent_clients_each_get_their_own_file()
    {
        var files = Enumerable.Range(0, 32).Select(i => Put($"nar/{i}.nar", 50_000 + i, seed: i)).ToArray();
        var bodies = await Task.WhenAll(files.Select(async (_, i) => await _client.GetByteArrayAsync(Url($"nar/{i}.nar"))));
        for (int i = 0; i < files.Length; i++)
            Assert.Equal(files[i], bodies[i]);
        Assert.Equal(32, _server.Requests.Count);
        Assert.Equal(files.Sum(f => (long)f.Length), _server.BodyBytesSent);
    }

    [Fact]
    public async Task The_log_gets_one_line_per_request()
    {
        Put("a", 10);
        var log = new StringWriter();
        var server = new BinaryCacheServer(_dir.Sub("cache"), log);
        await using (server)
        {
            server.Faults = r => r.Attempt == 2 ? new ServerFault.Status(500) : null;
            using (await _client.GetAsync(new Uri(server.BaseUri, "a")))
            using (await _client.GetAsync(new Uri(server.BaseUri, "a")))
            {
            }
        }
        var lines = log.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, lines.Length);
        Assert.StartsWith("GET /a 200 10 bytes", lines[0], StringComparison.Ordinal);
        Assert.StartsWith("GET /a 500", lines[1], StringComparison.Ordinal);
    }

    [Fact]
    public void A_missing_root_is_an_error()
    {
        Assert.Throws<DirectoryNotFoundException>(() => new BinaryCacheServer(_dir.Sub("no-such-dir")));
    }

    private Uri Url(string path) => new(_server.BaseUri, path);

    private byte[] Put(string path, int size, int seed = 1)
    {
        var content = new byte[size];
        new Random(seed).NextBytes(content);
        var full = _dir.Sub("cache/" + path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        File.WriteAllBytes(full, content);
        return content;
    }

    private async Task<TcpClient> ConnectAsync()
    {
        var client = new TcpClient();
        try
        {
            await client.ConnectAsync(IPAddress.Loopback, _server.BaseUri.Port);
            return client;
        }
        catch
        {
            client.Dispose();
            throw;
        }
    }

    /// <summary>A new connection on which <paramref name="request"/> has been sent as it is.</summary>
    private async Task<TcpClient> SendAsync(string request)
    {
        var client = await ConnectAsync();
        await client.GetStream().WriteAsync(Encoding.ASCII.GetBytes(request));
        return client;
    }

    /// <summary>Sends raw request bytes and reads until the server closes the connection.</summary>
    private async Task<byte[]> ExchangeAsync(string request)
    {
        using var client = await SendAsync(request);
        using var received = new MemoryStream();
        await client.GetStream().CopyToAsync(received);
        return received.ToArray();
    }

    private static (string Head, byte[] Body) Split(byte[] response)
    {
        int end = response.AsSpan().IndexOf("\r\n\r\n"u8);
        Assert.True(end >= 0, "no complete response head");
        return (Encoding.ASCII.GetString(response, 0, end + 2), response[(end + 4)..]);
    }

    private static async Task<string> ReadHeadAsync(NetworkStream stream)
    {
        var head = new List<byte>();
        var one = new byte[1];
        while (!head.AsEnumerable().Reverse().Take(4).SequenceEqual("\n\r\n\r"u8.ToArray()))
        {
            await stream.ReadExactlyAsync(one);
            head.Add(one[0]);
        }
        return Encoding.ASCII.GetString(head.ToArray());
    }
}
