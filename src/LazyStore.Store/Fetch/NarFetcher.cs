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
            var result = await Task.Factory.StartNew(() => Transfer(info, method, response.Body, state, temporary, onDownloaded, url, cancellationToken),
                cancellationToken, TaskCreationOptions.LongRunning, TaskScheduler.Default).ConfigureAwait(false);
            var blob = state.BlobPath(BlobKey(info.NarHash));
            try
            {
                File.Move(temporary, blob, overwrite: true);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw StateStorageException.From(state, blob, "cannot store the verified NAR", e);
            }
            return result;
        }
        catch (Exception e) when (e is not NarFetchException and not OperationCanceledException and not StateStorageException)
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

    private static Result Transfer(NarInfo info, CompressionMethod method, Stream body, StateDirectory state, string temporary, Action<long>? onDownloaded,
        Uri url, CancellationToken cancellationToken)
    {
        using var file = new TemporaryBlob(state, temporary);
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
        file.FlushToDisk();
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

    /// <summary>
    /// The temporary file a download is written to. Unbuffered, so a write that fails (no space left on
    /// device) fails where it happens rather than later in a flush; its failures are the state directory's,
    /// never the cache's, so they leave as <see cref="StateStorageException"/> and no other cache is tried.
    /// </summary>
    private sealed class TemporaryBlob : Stream
    {
        private const string Action = "cannot write the NAR being downloaded";

        private readonly StateDirectory _state;
        private readonly string _path;
        private readonly FileStream _file;

        public TemporaryBlob(StateDirectory state, string path)
        {
            _state = state;
            _path = path;
            _file = Guard(() => new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, bufferSize: 0));
        }

        public override bool CanRead => false;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => _file.Length;

        public override long Position
        {
            get => _file.Position;
            set => throw new NotSupportedException();
        }

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            try
            {
                _file.Write(buffer);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw StateStorageException.From(_state, _path, Action, e);
            }
        }

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override void Flush() => Guard(() => _file.Flush());

        public void FlushToDisk() => Guard(() => _file.Flush(flushToDisk: true));

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
                _file.Dispose();
            base.Dispose(disposing);
        }

        private void Guard(Action action) => Guard(() =>
        {
            action();
            return true;
        });

        private T Guard<T>(Func<T> action)
        {
            try
            {
                return action();
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw StateStorageException.From(_state, _path, Action, e);
            }
        }
    }

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
