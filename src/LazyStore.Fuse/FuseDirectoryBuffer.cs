using System.Buffers;
using System.Text;
using LazyStore.Fuse.Interop;

namespace LazyStore.Fuse;

/// <summary>
/// The reply to one readdir request: as many entries as fit in the size the kernel asked for.
/// Valid only until the handler's task completes.
/// </summary>
public sealed unsafe class FuseDirectoryBuffer : IDirectoryReplyBuffer
{
    private DirentSpace _space;

    internal FuseDirectoryBuffer(nint request, int capacity)
    {
        _space = new DirentSpace(request, capacity);
    }

    /// <summary>Bytes filled so far.</summary>
    public int Length => _space.Used;

    /// <summary>
    /// This directory's listing changes without the kernel seeing it happen (not through the mount),
    /// so the kernel must not keep it. Matters only with <see cref="FuseCapabilities.NoOpendirSupport"/>
    /// wanted, where the kernel keeps every listing it reads to the end: the reply that ends the
    /// listing (the one with no entries) then first drops the pages the kernel cached it in, and the
    /// directory's attributes, so the next listing asks again. With OPENDIR,
    /// <see cref="FuseOpenResult.CacheDirectory"/> decides instead.
    /// </summary>
    public bool Uncacheable { get; set; }

    /// <summary>
    /// Appends one entry; false when it does not fit, and the handler should stop. <paramref name="inode"/>
    /// is the d_ino readers see, never 0 (glibc's readdir skips such entries as deleted);
    /// <paramref name="nextOffset"/> is the cookie the kernel passes back to continue after this
    /// entry, so it must be non-zero and unique within the directory listing.
    /// </summary>
    public bool TryAdd(ReadOnlySpan<char> name, ulong inode, FuseFileType type, long nextOffset)
    {
        Span<byte> scratch = stackalloc byte[DirentSpace.MaxNameBytes + 1];
        return Add(DirentSpace.Terminated(name, scratch), inode, type, nextOffset);
    }

    /// <summary><see cref="TryAdd(ReadOnlySpan{char}, ulong, FuseFileType, long)"/> with a name already in UTF-8 (no terminator).</summary>
    public bool TryAdd(ReadOnlySpan<byte> utf8Name, ulong inode, FuseFileType type, long nextOffset)
    {
        Span<byte> scratch = stackalloc byte[DirentSpace.MaxNameBytes + 1];
        return Add(DirentSpace.Terminated(utf8Name, scratch), inode, type, nextOffset);
    }

    private bool Add(ReadOnlySpan<byte> terminatedName, ulong inode, FuseFileType type, long nextOffset)
    {
        DirentSpace.CheckInode(inode);
        var attr = new LibFuse.Stat { Ino = inode, Mode = (uint)type };
        fixed (byte* name = terminatedName)
        {
            return _space.Append(name, &attr, null, nextOffset);
        }
    }

    ReadOnlySpan<byte> IDirectoryReplyBuffer.Filled => _space.Filled;

    void IDirectoryReplyBuffer.Release() => _space.Release();
}

/// <summary>
/// The reply to one readdirplus request: entries with their attributes, as many as fit. Valid only
/// until the handler's task completes.
/// </summary>
public sealed unsafe class FuseDirectoryPlusBuffer : IDirectoryReplyBuffer
{
    private DirentSpace _space;

    internal FuseDirectoryPlusBuffer(nint request, int capacity)
    {
        _space = new DirentSpace(request, capacity);
    }

    /// <summary>Bytes filled so far.</summary>
    public int Length => _space.Used;

    /// <inheritdoc cref="FuseDirectoryBuffer.Uncacheable"/>
    public bool Uncacheable { get; set; }

    /// <summary>
    /// Appends one entry; false when it does not fit, and then the kernel takes no lookup count for
    /// it. An accepted entry with a non-zero node id counts as one lookup of that node, except for
    /// "." and "..". An entry with node id 0 is listed by name and d_ino only, with no lookup count;
    /// it then needs a non-zero <see cref="FuseAttributes.Inode"/> (d_ino 0 hides an entry from readdir).
    /// See <see cref="FuseDirectoryBuffer.TryAdd(ReadOnlySpan{char}, ulong, FuseFileType, long)"/> for <paramref name="nextOffset"/>.
    /// </summary>
    public bool TryAdd(ReadOnlySpan<char> name, in FuseEntry entry, long nextOffset)
    {
        Span<byte> scratch = stackalloc byte[DirentSpace.MaxNameBytes + 1];
        return Add(DirentSpace.Terminated(name, scratch), entry, nextOffset);
    }

    /// <summary><see cref="TryAdd(ReadOnlySpan{char}, in FuseEntry, long)"/> with a name already in UTF-8 (no terminator).</summary>
    public bool TryAdd(ReadOnlySpan<byte> utf8Name, in FuseEntry entry, long nextOffset)
    {
        Span<byte> scratch = stackalloc byte[DirentSpace.MaxNameBytes + 1];
        return Add(DirentSpace.Terminated(utf8Name, scratch), entry, nextOffset);
    }

    private bool Add(ReadOnlySpan<byte> terminatedName, in FuseEntry entry, long nextOffset)
    {
        var param = NativeConversions.ToEntryParam(entry);
        DirentSpace.CheckInode(param.Attr.Ino);
        fixed (byte* name = terminatedName)
        {
            return _space.Append(name, null, &param, nextOffset);
        }
    }

    ReadOnlySpan<byte> IDirectoryReplyBuffer.Filled => _space.Filled;

    void IDirectoryReplyBuffer.Release() => _space.Release();
}

/// <summary>A pooled buffer that fuse_add_direntry and fuse_add_direntry_plus fill.</summary>
internal unsafe struct DirentSpace
{
    /// <summary>FUSE_NAME_MAX of the kernel protocol: a longer name fails the whole readdir.</summary>
    internal const int MaxNameBytes = 1024;

    private readonly nint _request;
    private readonly int _capacity;
    private byte[]? _array;

    internal DirentSpace(nint request, int capacity)
    {
        _request = request;
        _capacity = capacity;
        _array = ArrayPool<byte>.Shared.Rent(capacity);
    }

    internal int Used { get; private set; }

    internal readonly ReadOnlySpan<byte> Filled => Array.AsSpan(0, Used);

    private readonly byte[] Array =>
        _array ?? throw new InvalidOperationException("a directory buffer was used after its request was answered");

    internal static void CheckInode(ulong inode)
    {
        if (inode == 0)
            throw new ArgumentOutOfRangeException(nameof(inode), "a directory entry with d_ino 0 would be skipped by readdir(3) as deleted");
    }

    internal bool Append(byte* name, LibFuse.Stat* attr, LibFuse.EntryParam* entry, long nextOffset)
    {
        if (nextOffset == 0)
            throw new ArgumentOutOfRangeException(nameof(nextOffset), "the offset cookie 0 means 'from the start'; an entry's must differ");
        fixed (byte* start = Array)
        {
            var remaining = (nuint)(_capacity - Used);
            nuint needed = entry is null
                ? LibFuse.fuse_add_direntry(_request, start + Used, remaining, name, attr, nextOffset)
                : LibFuse.fuse_add_direntry_plus(_request, start + Used, remaining, name, entry, nextOffset);
            if (needed > remaining)
                return false;
            Used += (int)needed;
            return true;
        }
    }

    internal void Release()
    {
        if (_array is { } array)
        {
            _array = null;
            ArrayPool<byte>.Shared.Return(array);
        }
    }

    /// <summary>The name in UTF-8, checked against the dirent rules and NUL-terminated, in <paramref name="scratch"/>.</summary>
    internal static ReadOnlySpan<byte> Terminated(ReadOnlySpan<char> name, Span<byte> scratch)
    {
        if (Encoding.UTF8.GetByteCount(name) > MaxNameBytes)
            throw new ArgumentException($"a directory entry name is at most {MaxNameBytes} bytes in UTF-8: '{name}'", nameof(name));
        int length = Encoding.UTF8.GetBytes(name, scratch);
        return Terminate(scratch[..length], scratch);
    }

    /// <summary>The name checked against the dirent rules and NUL-terminated, in <paramref name="scratch"/>.</summary>
    internal static ReadOnlySpan<byte> Terminated(ReadOnlySpan<byte> name, Span<byte> scratch)
    {
        if (name.Length > MaxNameBytes)
            throw new ArgumentException($"a directory entry name is at most {MaxNameBytes} bytes; this one has {name.Length}", nameof(name));
        name.CopyTo(scratch);
        return Terminate(scratch[..name.Length], scratch);
    }

    private static ReadOnlySpan<byte> Terminate(Span<byte> name, Span<byte> scratch)
    {
        if (name.IsEmpty || name.Length > MaxNameBytes || name.IndexOfAny((byte)'/', (byte)0) >= 0)
            throw new ArgumentException($"'{Encoding.UTF8.GetString(name)}' is not a directory entry name (1 to {MaxNameBytes} bytes, no '/' or NUL)", nameof(name));
        scratch[name.Length] = 0;
        return scratch[..(name.Length + 1)];
    }
}
