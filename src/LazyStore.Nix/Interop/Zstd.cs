using System.Runtime.InteropServices;

namespace LazyStore.Nix.Interop;

/// <summary>
/// The system libzstd (Debian package libzstd1). Declarations follow <c>zstd.h</c> and
/// <c>zstd_errors.h</c> of zstd 1.5; error code values are stable since zstd 1.3.1.
/// </summary>
internal static unsafe partial class Zstd
{
    private const string Library = "libzstd.so.1";

    internal enum EndDirective
    {
        ZSTD_e_continue = 0,
        ZSTD_e_flush = 1,
        ZSTD_e_end = 2,
    }

    internal enum CParameter
    {
        ZSTD_c_compressionLevel = 100,
        ZSTD_c_checksumFlag = 201,
        ZSTD_c_nbWorkers = 400,
    }

    internal enum ErrorCode
    {
        ZSTD_error_no_error = 0,
        ZSTD_error_memory_allocation = 64,
    }

    /// <summary>zstd's default compression level (<c>ZSTD_CLEVEL_DEFAULT</c>), the one the <c>zstd</c> CLI uses.</summary>
    internal const int DefaultLevel = 3;

    [StructLayout(LayoutKind.Sequential)]
    internal struct InBuffer
    {
        public byte* src;
        public nuint size;
        public nuint pos;
    }

    [StructLayout(LayoutKind.Sequential)]
    internal struct OutBuffer
    {
        public byte* dst;
        public nuint size;
        public nuint pos;
    }

    [LibraryImport(Library)]
    internal static partial ZstdDecompressionContext ZSTD_createDCtx();

    [LibraryImport(Library)]
    internal static partial nuint ZSTD_freeDCtx(IntPtr dctx);

    [LibraryImport(Library)]
    internal static partial nuint ZSTD_decompressStream(ZstdDecompressionContext dctx, OutBuffer* output, InBuffer* input);

    [LibraryImport(Library)]
    internal static partial ZstdCompressionContext ZSTD_createCCtx();

    [LibraryImport(Library)]
    internal static partial nuint ZSTD_freeCCtx(IntPtr cctx);

    [LibraryImport(Library)]
    internal static partial nuint ZSTD_CCtx_setParameter(ZstdCompressionContext cctx, CParameter param, int value);

    [LibraryImport(Library)]
    internal static partial nuint ZSTD_compressStream2(ZstdCompressionContext cctx, OutBuffer* output, InBuffer* input, EndDirective endOp);

    [LibraryImport(Library)]
    internal static partial int ZSTD_minCLevel();

    [LibraryImport(Library)]
    internal static partial int ZSTD_maxCLevel();

    [LibraryImport(Library)]
    [return: MarshalAs(UnmanagedType.U4)]
    private static partial uint ZSTD_isError(nuint code);

    [LibraryImport(Library)]
    private static partial ErrorCode ZSTD_getErrorCode(nuint code);

    [LibraryImport(Library)]
    private static partial byte* ZSTD_getErrorName(nuint code);

    /// <summary>
    /// The one place that turns a zstd result into an exception; returns <paramref name="result"/> when it is not an error.
    /// </summary>
    internal static nuint ThrowIfError(nuint result, string operation)
    {
        if (ZSTD_isError(result) == 0)
            return result;
        var code = ZSTD_getErrorCode(result);
        var name = Marshal.PtrToStringUTF8((IntPtr)ZSTD_getErrorName(result)) ?? "unknown error";
        var message = $"zstd: {name} (ZSTD_error {(int)code} from {operation})";
        throw (int)code switch
        {
            (int)ErrorCode.ZSTD_error_memory_allocation => new OutOfMemoryException(message),
            // 10..39: frame, block, checksum and dictionary errors (zstd_errors.h), i.e. bad input.
            >= 10 and < 40 => new InvalidDataException(message),
            // 40..49: parameter errors, i.e. a caller's bad level or option.
            >= 40 and < 50 => new ArgumentException(message),
            _ => new InvalidOperationException(message),
        };
    }
}

/// <summary>Owns a <c>ZSTD_DCtx*</c>.</summary>
internal sealed class ZstdDecompressionContext : SafeHandle
{
    public ZstdDecompressionContext()
        : base(IntPtr.Zero, ownsHandle: true)
    {
    }

    public override bool IsInvalid => handle == IntPtr.Zero;

    protected override bool ReleaseHandle()
    {
        Zstd.ZSTD_freeDCtx(handle);
        return true;
    }
}

/// <summary>Owns a <c>ZSTD_CCtx*</c>.</summary>
internal sealed class ZstdCompressionContext : SafeHandle
{
    public ZstdCompressionContext()
        : base(IntPtr.Zero, ownsHandle: true)
    {
    }

    public override bool IsInvalid => handle == IntPtr.Zero;

    protected override bool ReleaseHandle()
    {
        Zstd.ZSTD_freeCCtx(handle);
        return true;
    }
}
