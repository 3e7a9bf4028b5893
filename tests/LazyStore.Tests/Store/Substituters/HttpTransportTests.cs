using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using LazyStore.Store.Serving;
using LazyStore.Store.Substituters;
using LazyStore.Tests.Support;

namespace LazyStore.Tests.Store.Substituters;

public sealed class HttpTransportTests : IAsyncLifetime
{
    private static readonly TimeSpan ShortTimeout = TimeSpan.FromMilliseconds(300);

    // Fast retries; timeouts long enough never to fire unless a test shortens them.
    private static readonly TransportOptions Fast = new()
    {
        Attempts = 3,
        RetryDelay = TimeSpan.FromMilliseconds(5),
        ConnectTimeout = TimeSpan.FromSeconds(30),
        StalledDownloadTimeout = TimeSpan.FromSeconds(30),
    };

    private readonly TempDir _cache = new();
    private readonly BinaryCacheServer _server;

    public HttpTransportTests() => _server = new BinaryCacheServer(_cache.Path);

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        _cache.Dispose();
    }

    [Fact]
    public async Task Ok_returns_the_bytes_as_served_and_names_the_client()
    {
        var content = Put("nix-cache-info", 100);
        using var transport = Transport();
        Assert.Equal(content, await transport.TryGetBytesAsync("nix-cache-info", 1000, default));
        var request = Assert.Single(_server.Requests);
        Assert.StartsWith("LazyStore/", request.Headers["User-Agent"], StringComparison.Ordinal);
        Assert.False(request.Headers.ContainsKey("Accept-Encoding"));
        Assert.False(request.Headers.ContainsKey("Authorization"));
    }

    [Fact]
    public async Task A_missing_file_is_not_in_this_cache()
    {
        using var transport = Transport();
        Assert.Null(await transport.TryGetBytesAsync("0123.narinfo", 1000, default));
        Assert.Null(await transport.TryOpenAsync("nar/0123.nar.xz", default));
        Assert.Equal([404, 404], _server.Requests.Select(r => r.Status));
    }

    [Theory]
    [InlineData(404)]
    [InlineData(403)]
    [InlineData(410)]
    public async Task Not_found_forbidden_and_gone_mean_not_in_this_cache(int status)
    {
        Put("x.narinfo", 10);
        _server.Faults = _ => new ServerFault.Status(status);
        using var transport = Transport();
        Assert.Null(await transport.TryGetBytesAsync("x.narinfo", 1000, default));
        Assert.Null(await transport.TryOpenAsync("x.narinfo", default));
        Assert.Equal(2, _server.CountRequests(p => p == "x.narinfo"));
    }

    [Theory]
    [InlineData(400)]
    [InlineData(401)]
    [InlineData(418)]
    [InlineData(501)]
    public async Task Other_errors_fail_at_once_naming_the_url_and_status(int status)
    {
        Put("x.narinfo", 10);
        _server.Faults = _ => new ServerFault.Status(status);
        using var transport = Transport();
        var e = await Assert.ThrowsAsync<BinaryCacheException>(() => transport.TryGetBytesAsync("x.narinfo", 1000, default));
        Assert.Contains(transport.Resolve("x.narinfo").ToString(), e.Message, StringComparison.Ordinal);
        Assert.Contains($"HTTP {status}", e.Message, StringComparison.Ordinal);
        Assert.Equal(1, _server.CountRequests(p => p == "x.narinfo"));
    }

    [Theory]
    [InlineData(500)]
    [InlineData(503)]
    [InlineData(429)]
    [InlineData(408)]
    public async Task Transient_statuses_are_retried_until_the_file_comes(int status)
    {
        var content = Put("x.narinfo", 10);
        _server.Faults = r => r.Attempt <= 2 ? new ServerFault.Status(status) : null;
        using var transport = Transport();
        Assert.Equal(content, await transport.TryGetBytesAsync("x.narinfo", 1000, default));
        Assert.Equal([status, status, 200], _server.Requests.Select(r => r.Status));
    }

    [Fact]
    public async Task A_lasting_server_error_gives_up_naming_the_url_status_and_attempts()
    {
        Put("nar/x.nar", 10);
        _server.Faults = _ => new ServerFault.Status(500);
        using var transport = Transport();
        var e = await Assert.ThrowsAsync<CacheTransferException>(() => transport.TryOpenAsync("nar/x.nar", default));
        Assert.Equal(transport.Resolve("nar/x.nar"), e.Url);
        Assert.Contains(e.Url.ToString(), e.Message, StringComparison.Ordinal);
        Assert.Contains("HTTP 500", e.Message, StringComparison.Ordinal);
        Assert.Contains("3 attempts", e.Message, StringComparison.Ordinal);
        Assert.Equal(3, _server.CountRequests(p => p == "nar/x.nar"));
    }

    [Fact]
    public async Task Retries_wait_longer_each_time()
    {
        Put("x", 10);
        _server.Faults = _ => new ServerFault.Status(503);
        using var transport = Transport(Fast with { Attempts = 3, RetryDelay = TimeSpan.FromMilliseconds(100) });
        var clock = Stopwatch.StartNew();
        await Assert.ThrowsAsync<CacheTransferException>(() => transport.TryGetBytesAsync("x", 100, default));
        // At least 100 ms before the second attempt and 200 ms before the third.
        Assert.True(clock.Elapsed >= TimeSpan.FromMilliseconds(300), $"gave up after {clock.Elapsed}");
    }

    [Fact]
    public async Task A_refused_connection_is_retried_then_reported()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var closedPort = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        using var transport = Transport(baseUri: new Uri($"http://127.0.0.1:{closedPort}/"));
        var e = await Assert.ThrowsAsync<CacheTransferException>(() => transport.TryGetBytesAsync("nix-cache-info", 100, default));
        Assert.Contains($"127.0.0.1:{closedPort}/nix-cache-info", e.Message, StringComparison.Ordinal);
        Assert.Contains("3 attempts", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Headers_that_do_not_come_in_time_are_retried()
    {
        var content = Put("x.narinfo", 10);
        _server.Faults = r => r.Attempt == 1 ? new ServerFault.Delay(TimeSpan.FromMinutes(1)) : null;
        using var transport = Transport(Fast with { StalledDownloadTimeout = ShortTimeout });
        Assert.Equal(content, await transport.TryGetBytesAsync("x.narinfo", 1000, default));
        Assert.Equal(2, _server.CountRequests(p => p == "x.narinfo"));
    }

    [Theory]
    [InlineData("reset")]
    [InlineData("truncate")]
    [InlineData("stall")]
    public async Task A_broken_small_body_is_fetched_again_whole(string fault)
    {
        var content = Put("x.ls", 100_000);
        _server.Faults = r => r.Attempt > 1 ? null : fault switch
        {
            "reset" => new ServerFault.Reset(1000),
            "truncate" => new ServerFault.Truncate(1000),
            _ => new ServerFault.Stall(1000),
        };
        using var transport = Transport(Fast with { StalledDownloadTimeout = ShortTimeout });
        Assert.Equal(content, await transport.TryGetBytesAsync("x.ls", 1_000_000, default));
        Assert.Equal(2, _server.CountRequests(p => p == "x.ls"));
    }

    [Fact]
    public async Task A_body_broken_on_every_attempt_gives_up_naming_the_url()
    {
        Put("x.ls", 10_000);
        _server.Faults = _ => new ServerFault.Truncate(10);
        using var transport = Transport();
        var e = await Assert.ThrowsAsync<CacheTransferException>(() => transport.TryGetBytesAsync("x.ls", 1_000_000, default));
        Assert.Contains(transport.Resolve("x.ls").ToString(), e.Message, StringComparison.Ordinal);
        Assert.Contains("3 attempts", e.Message, StringComparison.Ordinal);
        Assert.Equal(3, _server.CountRequests(p => p == "x.ls"));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task More_than_maxBytes_is_refused_without_retrying(bool lengthAnnounced)
    {
        var content = Put("x.narinfo", 200_000);
        if (!lengthAnnounced)
            _server.Faults = _ => new ServerFault.CloseDelimited();
        using var transport = Transport();
        Assert.Equal(content, await transport.TryGetBytesAsync("x.narinfo", 200_000, default));
        var e = await Assert.ThrowsAsync<BinaryCacheException>(() => transport.TryGetBytesAsync("x.narinfo", 199_999, default));
        Assert.Contains("199999", e.Message, StringComparison.Ordinal);
        Assert.Contains(transport.Resolve("x.narinfo").ToString(), e.Message, StringComparison.Ordinal);
        Assert.Equal(2, _server.CountRequests(p => p == "x.narinfo"));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task TryOpen_streams_the_body_with_its_length_if_announced(bool lengthAnnounced)
    {
        var content = Put("nar/x.nar.xz", 300_000);
        if (!lengthAnnounced)
            _server.Faults = _ => new ServerFault.CloseDelimited();
        using var transport = Transport();
        using var response = await transport.TryOpenAsync("nar/x.nar.xz", default);
        Assert.NotNull(response);
        Assert.Equal(lengthAnnounced ? content.Length : null, response.Length);
        Assert.Equal(content, await ReadAllAsync(response.Body));
    }

    [Fact]
    public async Task TryOpen_retries_failures_before_the_body()
    {
        var content = Put("nar/x.nar.xz", 1000);
        _server.Faults = r => r.Attempt == 1 ? new ServerFault.Status(502) : null;
        using var transport = Transport();
        using var response = await transport.TryOpenAsync("nar/x.nar.xz", default);
        Assert.NotNull(response);
        Assert.Equal(content, await ReadAllAsync(response.Body));
        Assert.Equal(2, _server.CountRequests(p => p.StartsWith("nar/", StringComparison.Ordinal)));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_reset_mid_body_fails_the_read_naming_the_url(bool synchronous)
    {
        var e = await BodyFailureAsync(1_000_000, new ServerFault.Reset(100_000), synchronous, Fast);
        Assert.Contains("100000 of 1000000 bytes", e.Message, StringComparison.Ordinal);
        Assert.Contains("reset", e.Message, StringComparison.OrdinalIgnoreCase);
        Assert.Equal(1, _server.CountRequests(p => p == "nar/x.nar.xz"));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_truncated_body_fails_the_read_with_bytes_received_and_expected(bool synchronous)
    {
        var e = await BodyFailureAsync(5000, new ServerFault.Truncate(1000), synchronous, Fast);
        Assert.Contains("body ended after 1000 of 5000 bytes", e.Message, StringComparison.Ordinal);
        // SocketsHttpHandler notices the short body itself.
        Assert.Equal(HttpRequestError.ResponseEnded, Assert.IsType<HttpIOException>(e.InnerException).HttpRequestError);
    }

    [Theory(Timeout = 30_000)]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_stalled_body_fails_the_read_after_the_read_timeout(bool synchronous)
    {
        var clock = Stopwatch.StartNew();
        var e = await BodyFailureAsync(5000, new ServerFault.Stall(1000), synchronous, Fast with { StalledDownloadTimeout = ShortTimeout });
        Assert.True(clock.Elapsed >= ShortTimeout - TimeSpan.FromMilliseconds(20), $"failed after {clock.Elapsed}");
        Assert.IsType<TimeoutException>(e.InnerException);
        Assert.Contains("1000 of 5000 bytes", e.Message, StringComparison.Ordinal);
    }

    [Fact(Timeout = 60_000)]
    public async Task A_server_that_accepts_and_never_answers_fails_after_the_stall_timeout_of_each_attempt()
    {
        Put("x.narinfo", 10);
        _server.Faults = _ => new ServerFault.Delay(Timeout.InfiniteTimeSpan);
        // The connect timeout is long: only the stall timeout may end the wait for the response.
        using var transport = Transport(Fast with { Attempts = 2, ConnectTimeout = TimeSpan.FromSeconds(60), StalledDownloadTimeout = TimeSpan.FromSeconds(1) });
        var clock = Stopwatch.StartNew();
        var e = await Assert.ThrowsAsync<CacheTransferException>(() => transport.TryGetBytesAsync("x.narinfo", 100, default));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(15), $"gave up after {clock.Elapsed}");
        Assert.Contains("within 1 s (stalled-download-timeout) (gave up after 2 attempts)", e.Message, StringComparison.Ordinal);
        Assert.Equal(2, _server.CountRequests(p => p == "x.narinfo"));
    }

    [Fact(Timeout = 60_000)]
    public async Task A_trickling_body_is_slow_but_not_stalled()
    {
        var content = Put("x.narinfo", 12);
        // One byte every 100 ms: the whole takes longer than the stall timeout, no gap does.
        _server.Faults = _ => new ServerFault.Trickle(TimeSpan.FromMilliseconds(100));
        using var transport = Transport(Fast with { Attempts = 1, StalledDownloadTimeout = TimeSpan.FromMilliseconds(900) });
        var clock = Stopwatch.StartNew();
        Assert.Equal(content, await transport.TryGetBytesAsync("x.narinfo", 100, default));
        Assert.True(clock.Elapsed > TimeSpan.FromMilliseconds(900), $"took {clock.Elapsed}");
    }

    [Fact(Timeout = 30_000)]
    public async Task Cancellation_is_neither_retried_nor_wrapped()
    {
        Put("x.narinfo", 10);
        using var cancel = new CancellationTokenSource();
        _server.Faults = _ =>
        {
            cancel.Cancel();
            return new ServerFault.Delay(TimeSpan.FromMinutes(1));
        };
        using var transport = Transport();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => transport.TryGetBytesAsync("x.narinfo", 100, cancel.Token));
        Assert.Equal(1, _server.CountRequests(_ => true));
    }

    [Fact(Timeout = 30_000)]
    public async Task Cancellation_ends_the_wait_between_attempts()
    {
        Put("x.narinfo", 10);
        using var cancel = new CancellationTokenSource();
        _server.Faults = _ =>
        {
            cancel.CancelAfter(TimeSpan.FromMilliseconds(100));
            return new ServerFault.Status(503);
        };
        using var transport = Transport(Fast with { RetryDelay = TimeSpan.FromMinutes(1) });
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => transport.TryGetBytesAsync("x.narinfo", 100, cancel.Token));
        Assert.Equal(1, _server.CountRequests(_ => true));
    }

    [Fact(Timeout = 30_000)]
    public async Task Cancelling_a_body_read_is_not_a_stall()
    {
        Put("nar/x.nar.xz", 5000);
        _server.Faults = _ => new ServerFault.Stall(0);
        using var transport = Transport();
        using var response = await transport.TryOpenAsync("nar/x.nar.xz", default);
        Assert.NotNull(response);
        using var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(100));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await response.Body.ReadExactlyAsync(new byte[100], cancel.Token));
    }

    [Fact]
    public async Task Parallel_downloads_each_get_their_own_file()
    {
        var files = Enumerable.Range(0, 32).Select(i => (Path: $"nar/{i}.nar", Content: Put($"nar/{i}.nar", 10_000 + (i * 997), seed: i))).ToList();
        using var transport = Transport();
        var results = await Task.WhenAll(files.Select(f => transport.TryGetBytesAsync(f.Path, 1_000_000, default)));
        for (int i = 0; i < files.Count; i++)
            Assert.Equal(files[i].Content, results[i]);
        Assert.Equal(32, _server.Requests.Count(r => r.Status == 200));
    }

    [Fact]
    public async Task Sequential_requests_reuse_one_connection()
    {
        Put("a", 1000);
        using var transport = Transport();
        for (int i = 0; i < 5; i++)
            Assert.NotNull(await transport.TryGetBytesAsync("a", 1000, default));
        Assert.Equal(1, _server.ConnectionsAccepted);
    }

    [Fact]
    public async Task A_large_file_streams_intact()
    {
        const int size = 50 * 1024 * 1024;
        var content = Put("nar/large.nar", size);
        using var transport = Transport();
        using var response = await transport.TryOpenAsync("nar/large.nar", default);
        Assert.NotNull(response);
        Assert.Equal(size, response.Length);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[81920];
        long total = 0;
        int n;
        while ((n = await response.Body.ReadAsync(buffer)) > 0)
        {
            hash.AppendData(buffer, 0, n);
            total += n;
        }
        Assert.Equal(size, total);
        Assert.Equal(SHA256.HashData(content), hash.GetHashAndReset());
        Assert.Equal(size, _server.BodyBytesSent);
    }

    [Fact]
    public async Task Redirects_are_followed()
    {
        var content = Put("real/x.nar", 100);
        _server.Faults = r => r.Path == "x.nar" ? new ServerFault.Redirect(new Uri(_server.BaseUri, "real/x.nar"), 301) : null;
        using var transport = Transport();
        Assert.Equal(content, await transport.TryGetBytesAsync("x.nar", 1000, default));
        Assert.Equal(["x.nar", "real/x.nar"], _server.Requests.Select(r => r.Path));
    }

    [Fact]
    public async Task A_redirect_loop_is_an_error()
    {
        Put("x.nar", 100);
        _server.Faults = _ => new ServerFault.Redirect(new Uri(_server.BaseUri, "x.nar"));
        using var transport = Transport();
        var e = await Assert.ThrowsAsync<BinaryCacheException>(() => transport.TryGetBytesAsync("x.nar", 1000, default));
        Assert.Contains("redirects", e.Message, StringComparison.Ordinal);
        Assert.Equal(11, _server.CountRequests(_ => true));
    }

    [Fact]
    public async Task The_netrc_login_goes_to_its_host_and_no_other()
    {
        Put("x.narinfo", 10);
        using var dir = new TempDir();
        File.WriteAllText(dir.Sub("netrc"), "machine localhost login alice password s3cret\n");
        var options = Fast with { NetrcFile = dir.Sub("netrc") };
        using (var named = Transport(options, Host("localhost")))
            Assert.NotNull(await named.TryGetBytesAsync("x.narinfo", 100, default));
        using (var other = Transport(options, Host("127.0.0.1")))
            Assert.NotNull(await other.TryGetBytesAsync("x.narinfo", 100, default));
        var requests = _server.Requests;
        Assert.Equal(Basic("alice", "s3cret"), requests[0].Headers["Authorization"]);
        Assert.False(requests[1].Headers.ContainsKey("Authorization"));
    }

    [Fact]
    public async Task The_default_login_goes_to_hosts_no_machine_names()
    {
        Put("x.narinfo", 10);
        using var dir = new TempDir();
        File.WriteAllText(dir.Sub("netrc"), "machine localhost login alice password a\ndefault login anyone password d\n");
        using var transport = Transport(Fast with { NetrcFile = dir.Sub("netrc") }, Host("127.0.0.1"));
        Assert.NotNull(await transport.TryGetBytesAsync("x.narinfo", 100, default));
        Assert.Equal(Basic("anyone", "d"), Assert.Single(_server.Requests).Headers["Authorization"]);
    }

    [Fact]
    public async Task A_redirect_to_another_host_does_not_carry_the_login()
    {
        var content = Put("real/x.nar", 100);
        using var dir = new TempDir();
        File.WriteAllText(dir.Sub("netrc"), "machine localhost login alice password s3cret\n");
        _server.Faults = r => r.Path == "x.nar" ? new ServerFault.Redirect(new Uri(Host("127.0.0.1"), "real/x.nar")) : null;
        using var transport = Transport(Fast with { NetrcFile = dir.Sub("netrc") }, Host("localhost"));
        Assert.Equal(content, await transport.TryGetBytesAsync("x.nar", 1000, default));
        var requests = _server.Requests;
        Assert.Equal(Basic("alice", "s3cret"), requests[0].Headers["Authorization"]);
        Assert.Equal("real/x.nar", requests[1].Path);
        Assert.False(requests[1].Headers.ContainsKey("Authorization"));
    }

    [Fact]
    public async Task Each_redirect_hop_gets_the_login_of_its_own_host()
    {
        var content = Put("real/x.nar", 100);
        using var dir = new TempDir();
        File.WriteAllText(dir.Sub("netrc"), "machine localhost login alice password a\nmachine 127.0.0.1 login bob password b\n");
        _server.Faults = r => r.Path switch
        {
            "x.nar" => new ServerFault.Redirect(new Uri(Host("localhost"), "y.nar")),
            "y.nar" => new ServerFault.Redirect(new Uri(Host("127.0.0.1"), "real/x.nar")),
            _ => null,
        };
        using var transport = Transport(Fast with { NetrcFile = dir.Sub("netrc") }, Host("localhost"));
        Assert.Equal(content, await transport.TryGetBytesAsync("x.nar", 1000, default));
        Assert.Equal(
            [("x.nar", Basic("alice", "a")), ("y.nar", Basic("alice", "a")), ("real/x.nar", Basic("bob", "b"))],
            _server.Requests.Select(r => (r.Path, r.Headers["Authorization"])));
    }

    [Fact]
    public void A_malformed_netrc_fails_creation_naming_the_file()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.Sub("netrc"), "machine localhost login\n");
        var e = Assert.Throws<NetrcException>(() => BinaryCacheTransport.Create(_server.BaseUri, Fast with { NetrcFile = dir.Sub("netrc") }));
        Assert.Contains(dir.Sub("netrc"), e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Create_picks_the_transport_by_scheme()
    {
        using (var http = BinaryCacheTransport.Create(_server.BaseUri, Fast))
            Assert.IsType<HttpBinaryCacheTransport>(http);
        using (var file = BinaryCacheTransport.Create(new Uri(_cache.Path), Fast))
            Assert.IsType<FileBinaryCacheTransport>(file);
        Assert.Throws<ArgumentException>(() => BinaryCacheTransport.Create(new Uri("s3://bucket"), Fast));
    }

    /// <summary>
    /// Opens a file of <paramref name="size"/> bytes served with <paramref name="fault"/> and reads it to the end:
    /// the read's failure, after checking that it names the URL and that every later read fails too.
    /// </summary>
    private async Task<IOException> BodyFailureAsync(int size, ServerFault fault, bool synchronous, TransportOptions options)
    {
        Put("nar/x.nar.xz", size);
        _server.Faults = _ => fault;
        using var transport = Transport(options);
        using var response = await transport.TryOpenAsync("nar/x.nar.xz", default);
        Assert.NotNull(response);
        var e = await Assert.ThrowsAnyAsync<IOException>(() => ReadAllAsync(response.Body, synchronous));
        Assert.Contains(transport.Resolve("nar/x.nar.xz").ToString(), e.Message, StringComparison.Ordinal);
        // A failed body does not pretend to have ended.
        await Assert.ThrowsAnyAsync<IOException>(async () => await response.Body.ReadExactlyAsync(new byte[10]));
        return e;
    }

    private HttpBinaryCacheTransport Transport(TransportOptions? options = null, Uri? baseUri = null) =>
        new(baseUri ?? _server.BaseUri, options ?? Fast);

    private Uri Host(string host) => new UriBuilder(_server.BaseUri) { Host = host }.Uri;

    private byte[] Put(string relativePath, int size, int seed = 1)
    {
        var content = new byte[size];
        new Random(seed).NextBytes(content);
        var path = _cache.Sub(relativePath);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllBytes(path, content);
        return content;
    }

    private static string Basic(string login, string password) =>
        "Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes($"{login}:{password}"));

    private static async Task<byte[]> ReadAllAsync(Stream body, bool synchronous = false)
    {
        using var collected = new MemoryStream();
        if (synchronous)
            await Task.Run(() => body.CopyTo(collected));
        else
            await body.CopyToAsync(collected);
        return collected.ToArray();
    }
}
