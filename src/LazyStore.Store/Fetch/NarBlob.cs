using Microsoft.Win32.SafeHandles;
using LazyStore.Store.Catalog;

namespace LazyStore.Store.Fetch;

/// <summary>
/// An open, verified NAR blob: positional reads of a regular file's payload at the offset the index
/// recorded while the NAR was verified. Thread-safe; reads never move a shared file position.
/// </summary>
public sealed class NarBlob : IDisposable
{
    private readonly SafeFileHandle _handle;

    private NarBlob(SafeFileHandle handle, NarRecord nar)
    {
        _handle = handle;
        Nar = nar;
    }

    public NarRecord Nar { get; }

    /// <summary>
    /// Opens the committed blob of <paramref name="nar"/>. Throws <see cref="FileNotFoundException"/> when it is
    /// gone and <see cref="NarBlobChangedException"/> when the file is not the one committed (its
    /// <see cref="BlobStamp"/> differs): a blob touched behind the catalog's back is never read from.
    /// </summary>
    public static NarBlob Open(StateDirectory state, NarRecord nar, Nix.NixHash narHash)
    {
        if (!nar.IsFetched)
            throw new InvalidOperationException($"the NAR {nar.NarHash} is not stored");
        var path = state.BlobPath(NarFetcher.BlobKey(narHash));
        var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        try
        {
            var stamp = BlobStamp.Read(handle);
            if (!stamp.Matches(nar))
                throw new NarBlobChangedException(path, nar, stamp);
            return new NarBlob(handle, nar);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Reads up to <paramref name="buffer"/>'s length of <paramref name="entry"/>'s contents from
    /// <paramref name="offset"/>; returns 0 at or past the end of the file.
    /// </summary>
    public int Read(NarIndexEntry entry, long offset, Span<byte> buffer)
    {
        var (position, count) = Clamp(entry, offset, buffer.Length);
        return count == 0 ? 0 : RandomAccess.Read(_handle, buffer[..count], position);
    }

    public async ValueTask<int> ReadAsync(NarIndexEntry entry, long offset, Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        var (position, count) = Clamp(entry, offset, buffer.Length);
        return count == 0 ? 0 : await RandomAccess.ReadAsync(_handle, buffer[..count], position, cancellationToken).ConfigureAwait(false);
    }

    private static (long Position, int Count) Clamp(NarIndexEntry entry, long offset, int length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        var payload = entry.PayloadOffset ?? throw new InvalidOperationException($"'{entry.Name}' has no payload offset: it is not a regular file of a stored NAR");
        if (offset >= entry.Size)
            return (0, 0);
        return (payload + offset, (int)Math.Min(length, entry.Size - offset));
    }

    public void Dispose() => _handle.Dispose();
}

/// <summary>A stored blob is not the file that was verified and committed: written to, replaced or never stamped.</summary>
public sealed class NarBlobChangedException(string path, NarRecord nar, BlobStamp found)
    : IOException(nar.Stamp is { } recorded
        ? $"{path} changed on disk since its NAR {nar.NarHash} was verified (inode {recorded.Inode}, ctime {recorded.ChangeTimeNs} ns, {nar.NarSize} bytes at commit; now inode {found.Inode}, ctime {found.ChangeTimeNs} ns, {found.Size} bytes); it is verified again before use"
        : $"{path} was committed before blobs were stamped; it is verified again before use");
