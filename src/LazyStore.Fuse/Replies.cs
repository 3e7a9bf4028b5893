using System.Buffers;
using System.Text;
using LazyStore.Fuse.Interop;

namespace LazyStore.Fuse;

/// <summary>
/// Answers a request of one kind with a handler's result. Structs, so the completion code in
/// <see cref="FuseResponder"/> is specialised per kind and allocates nothing when the handler
/// completed synchronously.
/// </summary>
/// <remarks>
/// <see cref="Send"/> makes exactly one fuse_reply_* call, as its last action: whatever it throws
/// comes before the reply, so the responder may still answer with an error. Its return value is
/// ignored because libfuse frees the request either way, and a failed write only means the kernel
/// no longer waits for this request (it was interrupted, or the connection is gone).
/// </remarks>
internal interface IReply<T>
{
    void Send(nint request, T result);

    /// <summary>Returns what the request borrowed; called once, after the reply, whatever it was.</summary>
    void Release();
}

/// <summary>Success without data (fuse_reply_err with 0), returning a borrowed copy of the request's data if there is one.</summary>
internal readonly struct EmptyReply(byte[]? borrowed = null) : IReply<bool>
{
    public void Send(nint request, bool result) => LibFuse.fuse_reply_err(request, 0);

    public void Release() => PooledCopy.Return(borrowed);
}

internal readonly unsafe struct EntryReply(bool negativeAllowed) : IReply<FuseEntry>
{
    public void Send(nint request, FuseEntry result)
    {
        if (result.IsNegative && !negativeAllowed)
            throw new InvalidOperationException("a negative entry (node id 0) answers only lookup; a created node needs a node id");
        var param = NativeConversions.ToEntryParam(result);
        LibFuse.fuse_reply_entry(request, &param);
    }

    public void Release()
    {
    }
}

internal readonly unsafe struct CreateReply : IReply<FuseCreateResult>
{
    public void Send(nint request, FuseCreateResult result)
    {
        if (result.Entry.IsNegative)
            throw new InvalidOperationException("create must answer with the new node's id, not a negative entry");
        var param = NativeConversions.ToEntryParam(result.Entry);
        var info = NativeConversions.ToFileInfo(result.Open);
        LibFuse.fuse_reply_create(request, &param, &info);
    }

    public void Release()
    {
    }
}

internal readonly unsafe struct AttributeReply(ulong nodeId) : IReply<FuseAttributeResult>
{
    public void Send(nint request, FuseAttributeResult result)
    {
        var attr = NativeConversions.ToStat(result.Attributes, nodeId);
        LibFuse.fuse_reply_attr(request, &attr, NativeConversions.Seconds(result.Timeout));
    }

    public void Release()
    {
    }
}

internal readonly unsafe struct OpenReply : IReply<FuseOpenResult>
{
    public void Send(nint request, FuseOpenResult result)
    {
        var info = NativeConversions.ToFileInfo(result);
        LibFuse.fuse_reply_open(request, &info);
    }

    public void Release()
    {
    }
}

internal readonly unsafe struct ReadLinkReply : IReply<string>
{
    private const int StackLimit = 1024;

    public void Send(nint request, string result)
    {
        ArgumentException.ThrowIfNullOrEmpty(result, "symlink target");
        int length = Encoding.UTF8.GetByteCount(result);
        byte[]? rented = length < StackLimit ? null : ArrayPool<byte>.Shared.Rent(length + 1);
        try
        {
            Span<byte> target = rented ?? stackalloc byte[StackLimit];
            Encoding.UTF8.GetBytes(result, target);
            if (target[..length].Contains((byte)0))
                throw new ArgumentException("a symlink target cannot contain NUL", nameof(result));
            target[length] = 0;
            fixed (byte* p = target)
            {
                LibFuse.fuse_reply_readlink(request, p);
            }
        }
        finally
        {
            PooledCopy.Return(rented);
        }
    }

    public void Release()
    {
    }
}

/// <summary>The data of a read: the handler filled the first bytes of a pooled buffer.</summary>
internal readonly unsafe struct ReadReply : IReply<int>
{
    private readonly byte[] _buffer;
    private readonly int _size;

    internal ReadReply(int size)
    {
        _buffer = ArrayPool<byte>.Shared.Rent(size);
        _size = size;
    }

    internal Memory<byte> Buffer => _buffer.AsMemory(0, _size);

    public void Send(nint request, int result)
    {
        if ((uint)result > (uint)_size)
            throw new InvalidOperationException($"read returned {result} for a buffer of {_size} bytes");
        fixed (byte* p = _buffer)
        {
            LibFuse.fuse_reply_buf(request, p, (nuint)result);
        }
    }

    public void Release() => ArrayPool<byte>.Shared.Return(_buffer);
}

/// <summary>The count of a write, whose data the binding copied out of libfuse's request buffer.</summary>
internal readonly struct WriteReply(byte[] borrowed, int length) : IReply<int>
{
    public void Send(nint request, int result)
    {
        if ((uint)result > (uint)length)
            throw new InvalidOperationException($"write returned {result} for {length} bytes");
        LibFuse.fuse_reply_write(request, (nuint)result);
    }

    public void Release() => PooledCopy.Return(borrowed);
}

internal readonly unsafe struct StatFsReply : IReply<FuseFileSystemStatistics>
{
    public void Send(nint request, FuseFileSystemStatistics result)
    {
        var stat = NativeConversions.ToStatvfs(result);
        LibFuse.fuse_reply_statfs(request, &stat);
    }

    public void Release()
    {
    }
}

/// <summary>
/// An extended attribute's value, sized per getxattr(2): a request of size 0 asks only for the
/// length (fuse_reply_xattr), a buffer too small gets ERANGE, a missing attribute ENODATA.
/// </summary>
internal readonly unsafe struct ExtendedAttributeReply(nuint size) : IReply<byte[]?>
{
    public void Send(nint request, byte[]? result)
    {
        if (result is null)
            LibFuse.fuse_reply_err(request, Errno.ENODATA);
        else
            ExtendedAttributeSizing.Reply(request, size, result);
    }

    public void Release()
    {
    }
}

/// <summary>The NUL-separated name list of listxattr(2), sized like <see cref="ExtendedAttributeReply"/>.</summary>
internal readonly struct ExtendedAttributeListReply(nuint size) : IReply<IReadOnlyList<string>>
{
    public void Send(nint request, IReadOnlyList<string> result)
    {
        int length = 0;
        foreach (var name in result)
            length += Encoding.UTF8.GetByteCount(name) + 1;
        var list = ArrayPool<byte>.Shared.Rent(Math.Max(length, 1));
        try
        {
            int at = 0;
            foreach (var name in result)
            {
                ArgumentException.ThrowIfNullOrEmpty(name, "extended attribute name");
                at += Encoding.UTF8.GetBytes(name, list.AsSpan(at));
                list[at++] = 0;
            }
            ExtendedAttributeSizing.Reply(request, size, list.AsSpan(0, length));
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(list);
        }
    }

    public void Release()
    {
    }
}

internal static unsafe class ExtendedAttributeSizing
{
    internal static void Reply(nint request, nuint size, ReadOnlySpan<byte> value)
    {
        if (size == 0)
        {
            LibFuse.fuse_reply_xattr(request, (nuint)value.Length);
        }
        else if ((nuint)value.Length > size)
        {
            LibFuse.fuse_reply_err(request, Errno.ERANGE);
        }
        else
        {
            fixed (byte* p = value)
            {
                LibFuse.fuse_reply_buf(request, p, (nuint)value.Length);
            }
        }
    }
}

/// <summary>The entries a readdir or readdirplus handler added.</summary>
internal readonly unsafe struct DirectoryReply<TBuffer>(ulong nodeId, TBuffer buffer) : IReply<bool>
    where TBuffer : class, IDirectoryReplyBuffer
{
    public void Send(nint request, bool result)
    {
        var filled = buffer.Filled;
        // The kernel marks its cached listing complete only after this empty reply arrives, so the
        // pages are dropped before it: a listing read to its end is never left whole in the cache.
        if (filled.IsEmpty && buffer.Uncacheable)
            FuseMount.FromRequest(request).DropCachedListing(nodeId);
        fixed (byte* p = filled)
        {
            LibFuse.fuse_reply_buf(request, p, (nuint)filled.Length);
        }
    }

    public void Release() => buffer.Release();
}

internal interface IDirectoryReplyBuffer
{
    ReadOnlySpan<byte> Filled { get; }

    bool Uncacheable { get; }

    void Release();
}

/// <summary>
/// Copies of request data (write payloads, xattr values) that must outlive the libfuse callback:
/// libfuse reuses its receive buffer for the next request as soon as the callback returns.
/// </summary>
internal static class PooledCopy
{
    internal static unsafe byte[] Of(byte* data, int length)
    {
        var copy = ArrayPool<byte>.Shared.Rent(length);
        new ReadOnlySpan<byte>(data, length).CopyTo(copy);
        return copy;
    }

    internal static void Return(byte[]? array)
    {
        if (array is not null)
            ArrayPool<byte>.Shared.Return(array);
    }
}
