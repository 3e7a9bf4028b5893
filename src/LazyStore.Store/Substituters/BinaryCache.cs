using System.Text;
using LazyStore.Nix;
using LazyStore.Nix.Compression;
using LazyStore.Nix.Nar;

namespace LazyStore.Store.Substituters;

/// <summary>
/// One binary cache as Nix's BinaryCacheStore reads it: <c>nix-cache-info</c>, <c>&lt;hash&gt;.narinfo</c>,
/// <c>&lt;hash&gt;.ls</c> and the NAR files the narinfos point to. Everything it returns is parsed and
/// checked for form; trust (signatures, hashes) is decided by its callers.
/// </summary>
/// <remarks>
/// A transfer that times out or keeps failing (<see cref="CacheTransferException"/>) makes the cache
/// skipped for <see cref="SkipTime"/>, as Nix's HttpBinaryCacheStore disables a cache after such an
/// error: requests fail at once with <see cref="CacheSkippedException"/>, and metadata requests
/// already waiting on it give up, so lookups go on to the other caches instead of waiting out the
/// same deadline one after another. NAR downloads in progress go on.
/// </remarks>
public sealed class BinaryCache : IDisposable
{
    /// <summary>Nix's default priority for a cache whose nix-cache-info names none.</summary>
    public const int DefaultPriority = 50;

    private const long MaxNarInfoBytes = 1 << 20;

    private readonly BinaryCacheTransport _transport;
    private readonly TimeProvider _time;
    private readonly Action<string>? _warn;
    private readonly Lock _skipLock = new();
    private CancellationTokenSource _skipping = new();
    private long _skippedAt;
    private string? _skipReason;

    /// <param name="transport">How the cache's files are read.</param>
    /// <param name="time">The clock of the skip window.</param>
    /// <param name="warn">Told, in one line naming the cache, when it starts being skipped.</param>
    public BinaryCache(BinaryCacheTransport transport, TimeProvider? time = null, Action<string>? warn = null)
    {
        _transport = transport;
        _time = time ?? TimeProvider.System;
        _warn = warn;
        Url = transport.BaseUri.AbsoluteUri.TrimEnd('/');
    }

    /// <summary>How long a cache whose transfer timed out or failed is not asked (Nix: 60 s).</summary>
    public static TimeSpan SkipTime { get; } = TimeSpan.FromSeconds(60);

    /// <summary>Why requests to this cache fail at once now, or null when it is asked.</summary>
    public string? WhySkipped
    {
        get
        {
            lock (_skipLock)
            {
                if (_skipReason is null)
                    return null;
                var left = SkipTime - _time.GetElapsedTime(_skippedAt);
                if (left > TimeSpan.Zero)
                    return $"skipped for {Math.Ceiling(left.TotalSeconds):0} more s after: {_skipReason}";
                _skipReason = null;
                return null;
            }
        }
    }

    /// <summary>
    /// Starts the skip window if <paramref name="failure"/> (or what it wraps) is a failed transfer from this
    /// cache. Returns whether it was one.
    /// </summary>
    public bool ReportFailure(Exception failure)
    {
        for (var e = failure; e is not null; e = e.InnerException)
        {
            if (e is CacheTransferException transfer)
            {
                Skip(transfer);
                return true;
            }
        }
        return false;
    }

    private void Skip(CacheTransferException failure)
    {
        CancellationTokenSource waiting;
        lock (_skipLock)
        {
            if (_skipReason is not null && _time.GetElapsedTime(_skippedAt) < SkipTime)
                return;
            _skippedAt = _time.GetTimestamp();
            _skipReason = failure.Reason;
            waiting = _skipping;
            _skipping = new CancellationTokenSource();
        }
        _warn?.Invoke($"binary cache {Url} is skipped for the next {SkipTime.TotalSeconds:0} s: {failure.Url}: {failure.Reason}");
        // Continuations of the requests that give up run on the thread pool, not here.
        _ = waiting.CancelAsync();
    }

    private void ThrowIfSkipped(string file)
    {
        if (WhySkipped is { } why)
            throw new CacheSkippedException(_transport.Resolve(file), why);
    }

    /// <summary>A metadata file of the cache, read whole; given up when the cache starts being skipped.</summary>
    private async Task<byte[]?> GetFileAsync(string file, long maxBytes, CancellationToken cancellationToken)
    {
        ThrowIfSkipped(file);
        CancellationToken skipping;
        lock (_skipLock)
            skipping = _skipping.Token;
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, skipping);
        try
        {
            return await _transport.TryGetBytesAsync(file, maxBytes, linked.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (linked.IsCancellationRequested && e is OperationCanceledException or IOException)
        {
            // A request cut off by cancellation may surface as an IOException of the connection it ran on.
            cancellationToken.ThrowIfCancellationRequested();
            throw new CacheSkippedException(_transport.Resolve(file), WhySkipped ?? "skipped after another request to it failed", e);
        }
        catch (CacheTransferException e)
        {
            Skip(e);
            throw;
        }
    }

    /// <summary>The cache's URL without a trailing slash: how messages and the state directory name it.</summary>
    public string Url { get; }

    public int Priority { get; private set; } = DefaultPriority;

    public BinaryCacheTransport Transport => _transport;

    /// <summary>Applies a cache's nix-cache-info: refuses a foreign store directory, adopts its priority.</summary>
    public void Apply(NixCacheInfo? info, StoreDirectory storeDirectory)
    {
        if (info?.StoreDirectory is { } theirs && !theirs.Equals(storeDirectory))
            throw new CacheRefusedException(_transport.Resolve(NixCacheInfo.FileName),
                $"binary cache is for Nix stores with prefix '{theirs.Path}', not '{storeDirectory.Path}'");
        Priority = info?.Priority ?? DefaultPriority;
    }

    /// <summary>The cache's nix-cache-info, or null when it has none.</summary>
    public async Task<NixCacheInfo?> GetCacheInfoAsync(CancellationToken cancellationToken)
    {
        var bytes = await GetFileAsync(NixCacheInfo.FileName, MaxNarInfoBytes, cancellationToken).ConfigureAwait(false);
        if (bytes is null)
            return null;
        var source = _transport.Resolve(NixCacheInfo.FileName).ToString();
        try
        {
            return NixCacheInfo.Parse(Encoding.UTF8.GetString(bytes), source);
        }
        catch (MetadataFormatException e)
        {
            throw new CacheRefusedException(_transport.Resolve(NixCacheInfo.FileName), e.Message, e);
        }
    }

    /// <summary>
    /// The narinfo text for <paramref name="path"/>, or null when the cache does not have it. Throws
    /// <see cref="BinaryCacheException"/> when the cache cannot be read, and <see cref="NarInfoRejectedException"/>
    /// when what it serves is malformed or describes another path.
    /// </summary>
    public async Task<(NarInfo Info, string Text)?> TryGetNarInfoAsync(StorePath path, StoreDirectory storeDirectory, CancellationToken cancellationToken)
    {
        var file = path.HashPart + ".narinfo";
        var bytes = await GetFileAsync(file, MaxNarInfoBytes, cancellationToken).ConfigureAwait(false);
        if (bytes is null)
            return null;
        var url = _transport.Resolve(file);
        string text;
        try
        {
            text = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(bytes);
        }
        catch (DecoderFallbackException e)
        {
            throw new NarInfoRejectedException(url, "narinfo is not valid UTF-8", e);
        }
        var info = ParseNarInfo(text, storeDirectory, url);
        if (!info.StorePath.Equals(path))
            throw new NarInfoRejectedException(url, $"narinfo is for '{info.StorePath.ToFullPath(storeDirectory)}', not the requested '{path.ToFullPath(storeDirectory)}'");
        return (info, text);
    }

    /// <summary>Parses narinfo text this cache served, and checks that its URL stays inside the cache.</summary>
    public NarInfo ParseNarInfo(string text, StoreDirectory storeDirectory, Uri url)
    {
        NarInfo info;
        try
        {
            info = NarInfo.Parse(text, storeDirectory, url.ToString());
        }
        catch (MetadataFormatException e)
        {
            throw new NarInfoRejectedException(url, e.Message, e);
        }
        if (info.Url.Contains("://", StringComparison.Ordinal) || info.Url.StartsWith('/')
            || info.Url.Split('/').Any(c => c is ".." or "."))
            throw new NarInfoRejectedException(url, $"URL '{info.Url}' is not a path relative to the cache");
        return info;
    }

    /// <summary>
    /// The cache's listing of a path's NAR (<c>&lt;hash&gt;.ls</c>, plain or compressed with br, xz or zstd),
    /// in NAR order, or null when it has none. Its narOffset values are never trusted. A listing over
    /// <paramref name="limits"/> (downloaded, decompressed, or in entries) is refused with a
    /// <see cref="BinaryCacheException"/> as soon as it is seen to be.
    /// </summary>
    public async Task<IReadOnlyList<NarListingEntry>?> TryGetListingAsync(StorePath path, ListingLimits limits, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(limits);
        var file = path.HashPart + ".ls";
        var bytes = await GetFileAsync(file, limits.MaxBytes, cancellationToken).ConfigureAwait(false);
        if (bytes is null)
            return null;
        var url = _transport.Resolve(file);
        try
        {
            return NarListing.ParseListingEntries(DecodeListing(bytes, limits.MaxBytes), limits.MaxEntries);
        }
        catch (Exception e) when (e is NarListingFormatException or InvalidDataException or NotSupportedException)
        {
            throw new ListingRejectedException(url, e.Message, e);
        }
    }

    /// <summary>
    /// Opens the NAR file a narinfo points to, or null when the cache does not have it. A failure while its
    /// body is read is the caller's to report (<see cref="ReportFailure"/>).
    /// </summary>
    public async Task<BinaryCacheResponse?> OpenNarAsync(NarInfo info, CancellationToken cancellationToken)
    {
        ThrowIfSkipped(info.Url);
        try
        {
            return await _transport.TryOpenAsync(info.Url, cancellationToken).ConfigureAwait(false);
        }
        catch (CacheTransferException e)
        {
            Skip(e);
            throw;
        }
    }

    public Uri Resolve(string relativePath) => _transport.Resolve(relativePath);

    public override string ToString() => Url;

    public void Dispose()
    {
        _transport.Dispose();
        _skipping.Dispose();
    }

    /// <summary>
    /// Nix uploads listings with a Content-Encoding (ls-compression) that file:// caches and some servers do
    /// not undo, so the encoding is recognised by its magic bytes; JSON starts with '{'; brotli has no magic.
    /// </summary>
    private static byte[] DecodeListing(byte[] bytes, long maxBytes)
    {
        var span = bytes.AsSpan();
        var trimmed = span.TrimStart(" \t\r\n"u8);
        if (trimmed.Length > 0 && trimmed[0] == (byte)'{')
            return bytes;
        CompressionMethod method = span switch
        {
            [0xFD, 0x37, 0x7A, 0x58, 0x5A, 0x00, ..] => CompressionMethod.Xz,
            [0x28, 0xB5, 0x2F, 0xFD, ..] => CompressionMethod.Zstd,
            _ => CompressionMethod.Brotli,
        };
        using var input = new MemoryStream(bytes, writable: false);
        using var decoded = NarCompression.Decompress(method, input);
        using var output = new MemoryStream();
        var buffer = new byte[81920];
        int n;
        while ((n = decoded.Read(buffer)) > 0)
        {
            if (output.Length + n > maxBytes)
                throw new InvalidDataException($"decompressed listing is larger than {maxBytes} bytes, the most accepted");
            output.Write(buffer, 0, n);
        }
        return output.ToArray();
    }
}

/// <summary>A cache served a narinfo that cannot be accepted: malformed, for another path, or pointing outside the cache.</summary>
public sealed class NarInfoRejectedException(Uri url, string reason, Exception? inner = null) : BinaryCacheException(url, reason, inner);

/// <summary>A cache that must not be used at all: it serves another store directory, or its nix-cache-info is malformed.</summary>
public sealed class CacheRefusedException(Uri url, string reason, Exception? inner = null) : BinaryCacheException(url, reason, inner);

/// <summary>A cache that is skipped for now (<see cref="BinaryCache.SkipTime"/>) after a transfer from it failed; says why.</summary>
public sealed class CacheSkippedException(Uri url, string reason, Exception? inner = null) : BinaryCacheException(url, reason, inner);

/// <summary>A cache served a listing that is not a valid NAR tree.</summary>
public sealed class ListingRejectedException(Uri url, string reason, Exception? inner = null) : BinaryCacheException(url, reason, inner);
