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

    public static NarBlob Open(StateDirectory state, NarRecord nar, Nix.NixHash narHash)
    {
        if (!nar.IsFetched)
            throw new InvalidOperationException($"the NAR {nar.NarHash} is not stored");
        var handle = File.OpenHandle(state.BlobPath(NarFetcher.BlobKey(narHash)), FileMode.Open, FileAccess.Read, FileShare.Read);
        return new NarBlob(handle, nar);
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
