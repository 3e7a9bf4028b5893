using System.Buffers;
using LazyStore.Nix.Interop;

namespace LazyStore.Nix.Compression;

/// <summary>Writes one Zstandard frame with libzstd, with the content checksum on, as the <c>zstd</c> CLI does.</summary>
public sealed unsafe class ZstdEncoder : INarEncoder
{
    private readonly ZstdCompressionContext _context;

    /// <param name="level">A zstd level, negative (fast) up to <c>ZSTD_maxCLevel()</c> (22); default 3.</param>
    /// <param name="workers">libzstd worker threads; 0 compresses on the calling thread.</param>
    public ZstdEncoder(int level = Zstd.DefaultLevel, int workers = 0)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(level, Zstd.ZSTD_minCLevel());
        ArgumentOutOfRangeException.ThrowIfGreaterThan(level, Zstd.ZSTD_maxCLevel());
        ArgumentOutOfRangeException.ThrowIfNegative(workers);
        _context = Zstd.ZSTD_createCCtx();
        if (_context.IsInvalid)
            throw new OutOfMemoryException("zstd: ZSTD_createCCtx returned NULL");
        Zstd.ThrowIfError(Zstd.ZSTD_CCtx_setParameter(_context, Zstd.CParameter.ZSTD_c_compressionLevel, level), "ZSTD_CCtx_setParameter(compressionLevel)");
        Zstd.ThrowIfError(Zstd.ZSTD_CCtx_setParameter(_context, Zstd.CParameter.ZSTD_c_checksumFlag, 1), "ZSTD_CCtx_setParameter(checksumFlag)");
        if (workers > 0)
            Zstd.ThrowIfError(Zstd.ZSTD_CCtx_setParameter(_context, Zstd.CParameter.ZSTD_c_nbWorkers, workers), "ZSTD_CCtx_setParameter(nbWorkers)");
    }

    public OperationStatus Compress(ReadOnlySpan<byte> source, Span<byte> destination, out int bytesConsumed, out int bytesWritten, bool isFinalBlock)
    {
        var remaining = Code(source, destination, isFinalBlock ? Zstd.EndDirective.ZSTD_e_end : Zstd.EndDirective.ZSTD_e_continue, out bytesConsumed, out bytesWritten);
        if (isFinalBlock)
            return remaining == 0 ? OperationStatus.Done : OperationStatus.DestinationTooSmall;
        return bytesConsumed < source.Length ? OperationStatus.DestinationTooSmall : OperationStatus.NeedMoreData;
    }

    /// <summary>ZSTD_e_flush: everything written so far becomes decodable; the frame stays open.</summary>
    public OperationStatus Flush(Span<byte> destination, out int bytesWritten)
    {
        var remaining = Code([], destination, Zstd.EndDirective.ZSTD_e_flush, out _, out bytesWritten);
        return remaining == 0 ? OperationStatus.Done : OperationStatus.DestinationTooSmall;
    }

    private nuint Code(ReadOnlySpan<byte> source, Span<byte> destination, Zstd.EndDirective directive, out int bytesConsumed, out int bytesWritten)
    {
        ObjectDisposedException.ThrowIf(_context.IsClosed, this);
        fixed (byte* input = source)
        fixed (byte* output = destination)
        {
            var inBuffer = new Zstd.InBuffer { src = input, size = (nuint)source.Length };
            var outBuffer = new Zstd.OutBuffer { dst = output, size = (nuint)destination.Length };
            var remaining = Zstd.ThrowIfError(Zstd.ZSTD_compressStream2(_context, &outBuffer, &inBuffer, directive), "ZSTD_compressStream2");
            bytesConsumed = (int)inBuffer.pos;
            bytesWritten = (int)outBuffer.pos;
            return remaining;
        }
    }

    public void Dispose() => _context.Dispose();
}
