using LazyStore.Nix;
using LazyStore.Nix.Compression;
using LazyStore.Nix.IO;
using LazyStore.Nix.Nar;
using LazyStore.Store.Catalog;
using LazyStore.Store.Substituters;

namespace LazyStore.Store.Fetch;

/// <summary>
/// One verified download of a NAR from one cache, streaming end to end: the compressed bytes are counted
/// and hashed (FileSize, FileHash), decompressed, counted and hashed again (NarSize, NarHash) while being
/// written to a temporary file and parsed for every entry's payload offset. The blob is renamed into
/// <c>nars/</c> only when everything matched; otherwise the temporary file is deleted and nothing is kept.
/// </summary>
internal static class NarFetcher
{
    private const int CopyBufferSize = 1 << 20;

    public sealed record Result(IReadOnlyList<NarIndexEntry> Entries, long DownloadedBytes);

    public static async Task<Result> FetchAsync(NarInfo info, BinaryCache cache, StateDirectory state, Action<long>? onDownloaded, CancellationToken cancellationToken)
    {
        var url = cache.Resolve(info.Url);
        CompressionMethod method;
        try
        {
            method = NarCompression.Parse(info.Compression);
        }
        catch (UnsupportedCompressionException e)
        {
            throw new NarFetchException(url, e.Message, e);
        }

        using var response = await cache.OpenNarAsync(info, cancellationToken).ConfigureAwait(false)
            ?? throw new NarFetchException(url, "the cache has no such NAR file");
        if (info.FileSize is { } fileSize && response.Length is { } announced && (ulong)announced != fileSize)
            throw new NarFetchException(url, $"FileSize mismatch: the narinfo says {fileSize} bytes, the server announces {announced}");

        var temporary = state.NewTemporaryPath();
        try
        {
            var result = await Task.Factory.StartNew(() => Transfer(info, method, response.Body, temporary, onDownloaded, url, cancellationToken),
                cancellationToken, TaskCreationOptions.LongRunning, TaskScheduler.Default).ConfigureAwait(false);
            var blob = state.BlobPath(BlobKey(info.NarHash));
            File.Move(temporary, blob, overwrite: true);
            return result;
        }
        catch (Exception e) when (e is not NarFetchException and not OperationCanceledException)
        {
            throw new NarFetchException(url, Describe(e), e);
        }
        finally
        {
            StateDirectory.TryDelete(temporary);
        }
    }

    /// <summary>The name of a NAR's blob in <c>nars/</c>: the NarHash digest in nix32.</summary>
    public static string BlobKey(NixHash narHash) => NixHash.GetName(narHash.Algorithm) + "-" + narHash.ToNix32();

    private static Result Transfer(NarInfo info, CompressionMethod method, Stream body, string temporary, Action<long>? onDownloaded,
        Uri url, CancellationToken cancellationToken)
    {
        using var file = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None, CopyBufferSize);
        var fileSizeLimit = info.FileSize is { } fs ? (long)fs : long.MaxValue;
        using var compressed = new HashingReadStream(new ProgressStream(body, onDownloaded, cancellationToken),
            info.FileHash?.Algorithm, limit: fileSizeLimit, what: "FileSize mismatch: the compressed NAR file");
        using var decompressed = NarCompression.Decompress(method, compressed, leaveOpen: true);
        using var ahead = new ReadAheadStream(decompressed);
        using var nar = new HashingReadStream(ahead, info.NarHash.Algorithm, file, (long)info.NarSize, "NarSize mismatch: the NAR", leaveOpen: true);

        List<NarIndexEntry> entries;
        try
        {
            entries = NarIndexEntry.FromNar(nar);
            nar.Drain();
        }
        catch (Exception e) when (e is InvalidDataException or NarFormatException)
        {
            // A file that is not the one the narinfo describes usually fails to decompress or parse first;
            // the FileHash then names the real cause. Reading it to the end is bounded by FileSize.
            ahead.Dispose();
            if (CheckFile(info, compressed) is { } fileProblem)
                throw new NarFetchException(url, $"{fileProblem} (and it does not decode: {Describe(e)})", e);
            throw;
        }
        if (CheckFile(info, compressed) is { } problem)
            throw new NarFetchException(url, problem);
        if (nar.BytesRead != (long)info.NarSize)
            throw new NarFetchException(url, $"NarSize mismatch: the narinfo says {info.NarSize} bytes, the NAR has {nar.BytesRead}");
        var narHash = nar.FinishHash();
        if (narHash != info.NarHash)
            throw new NarFetchException(url, $"NarHash mismatch: the narinfo says {info.NarHash}, the NAR hashes to {narHash}");

        // The blob must be on disk before the index says it is, or a crash could leave an indexed blob of zeros.
        file.Flush(flushToDisk: true);
        return new Result(entries, compressed.BytesRead);
    }

    /// <summary>Reads the compressed file to its end and returns its FileSize or FileHash mismatch, if any.</summary>
    private static string? CheckFile(NarInfo info, HashingReadStream compressed)
    {
        try
        {
            compressed.Drain();
        }
        catch (InvalidDataException e)
        {
            return e.Message;
        }
        if (info.FileSize is { } size && (ulong)compressed.BytesRead != size)
            return $"FileSize mismatch: the narinfo says {size} bytes, the file has {compressed.BytesRead}";
        if (info.FileHash is { } expected && compressed.FinishHash() is var fileHash && fileHash != expected)
            return $"FileHash mismatch: the narinfo says {expected}, the file hashes to {fileHash}";
        return null;
    }

    private static string Describe(Exception e) => e switch
    {
        NarFormatException => "malformed NAR: " + e.Message,
        InvalidDataException => e.Message,
        BinaryCacheException b => b.Reason,
        _ => e.Message,
    };

    /// <summary>Reports downloaded bytes as they arrive and stops at cancellation between reads.</summary>
    private sealed class ProgressStream(Stream inner, Action<long>? onRead, CancellationToken cancellationToken) : ReadOnlyStream
    {
        public override int Read(Span<byte> buffer)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var n = inner.Read(buffer);
            if (n > 0)
                onRead?.Invoke(n);
            return n;
        }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken token = default)
        {
            var n = await inner.ReadAsync(buffer, token.CanBeCanceled ? token : cancellationToken).ConfigureAwait(false);
            if (n > 0)
                onRead?.Invoke(n);
            return n;
        }
    }
}

/// <summary>A NAR could not be fetched from a cache, or did not verify: which file, and why.</summary>
public sealed class NarFetchException(Uri url, string reason, Exception? inner = null) : BinaryCacheException(url, reason, inner);
