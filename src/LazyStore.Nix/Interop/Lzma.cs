using System.Runtime.InteropServices;

namespace LazyStore.Nix.Interop;

/// <summary>
/// The system liblzma (XZ Utils, Debian package liblzma5). Declarations follow
/// <c>lzma/base.h</c> and <c>lzma/container.h</c> of XZ Utils 5.4.
/// </summary>
internal static unsafe partial class Lzma
{
    private const string Library = "liblzma.so.5";

    internal enum Return
    {
        LZMA_OK = 0,
        LZMA_STREAM_END = 1,
        LZMA_NO_CHECK = 2,
        LZMA_UNSUPPORTED_CHECK = 3,
        LZMA_GET_CHECK = 4,
        LZMA_MEM_ERROR = 5,
        LZMA_MEMLIMIT_ERROR = 6,
        LZMA_FORMAT_ERROR = 7,
        LZMA_OPTIONS_ERROR = 8,
        LZMA_DATA_ERROR = 9,
        LZMA_BUF_ERROR = 10,
        LZMA_PROG_ERROR = 11,
        LZMA_SEEK_NEEDED = 12,
    }

    internal enum Action
    {
        LZMA_RUN = 0,
        LZMA_SYNC_FLUSH = 1,
        LZMA_FULL_FLUSH = 2,
        LZMA_FINISH = 3,
    }

    internal enum Check
    {
        LZMA_CHECK_NONE = 0,
        LZMA_CHECK_CRC32 = 1,
        LZMA_CHECK_CRC64 = 4,
        LZMA_CHECK_SHA256 = 10,
    }

    /// <summary>Decoder flag: keep decoding after the first .xz stream, as <c>xz -d</c> does for concatenated files.</summary>
    internal const uint LZMA_CONCATENATED = 0x08;

    /// <summary>Decoder flag (5.3.3+): the threaded decoder reports errors as soon as they are found.</summary>
    internal const uint LZMA_FAIL_FAST = 0x20;

    /// <summary><c>lzma_stream</c>; zero-initialised it equals <c>LZMA_STREAM_INIT</c>.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct Stream
    {
        public byte* next_in;
        public nuint avail_in;
        public ulong total_in;
        public byte* next_out;
        public nuint avail_out;
        public ulong total_out;
        public void* allocator;
        public void* @internal;
        public void* reserved_ptr1;
        public void* reserved_ptr2;
        public void* reserved_ptr3;
        public void* reserved_ptr4;
        public ulong seek_pos;
        public ulong reserved_int2;
        public nuint reserved_int3;
        public nuint reserved_int4;
        public int reserved_enum1;
        public int reserved_enum2;
    }

    /// <summary><c>lzma_mt</c>, the options of the threaded coders.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct MultiThreadOptions
    {
        public uint flags;
        public uint threads;
        public ulong block_size;
        public uint timeout;
        public uint preset;
        public void* filters;
        public Check check;
        public int reserved_enum1;
        public int reserved_enum2;
        public int reserved_enum3;
        public uint reserved_int1;
        public uint reserved_int2;
        public uint reserved_int3;
        public uint reserved_int4;
        public ulong memlimit_threading;
        public ulong memlimit_stop;
        public ulong reserved_int7;
        public ulong reserved_int8;
        public void* reserved_ptr1;
        public void* reserved_ptr2;
        public void* reserved_ptr3;
        public void* reserved_ptr4;
    }

    [LibraryImport(Library)]
    internal static partial Return lzma_code(LzmaStreamHandle strm, Action action);

    [LibraryImport(Library)]
    internal static partial void lzma_end(Stream* strm);

    [LibraryImport(Library)]
    internal static partial Return lzma_stream_decoder(LzmaStreamHandle strm, ulong memlimit, uint flags);

    [LibraryImport(Library)]
    internal static partial Return lzma_stream_decoder_mt(LzmaStreamHandle strm, in MultiThreadOptions options);

    [LibraryImport(Library)]
    internal static partial Return lzma_easy_encoder(LzmaStreamHandle strm, uint preset, Check check);

    [LibraryImport(Library)]
    internal static partial Return lzma_stream_encoder_mt(LzmaStreamHandle strm, in MultiThreadOptions options);

    [LibraryImport(Library)]
    internal static partial ulong lzma_physmem();

    /// <summary>
    /// The one place that turns an <c>lzma_ret</c> into an exception. <c>LZMA_OK</c> and <c>LZMA_STREAM_END</c> pass.
    /// </summary>
    internal static void ThrowIfError(Return code, string operation)
    {
        switch (code)
        {
            case Return.LZMA_OK:
            case Return.LZMA_STREAM_END:
                return;
            case Return.LZMA_FORMAT_ERROR:
                throw new InvalidDataException($"xz: input is not in the .xz format ({code} from {operation})");
            case Return.LZMA_DATA_ERROR:
                throw new InvalidDataException($"xz: compressed data is corrupt ({code} from {operation})");
            case Return.LZMA_UNSUPPORTED_CHECK:
                throw new InvalidDataException($"xz: stream uses an unsupported integrity check ({code} from {operation})");
            case Return.LZMA_BUF_ERROR:
                // The coders are always given output space, so no progress means the input ended early (base.h, LZMA_BUF_ERROR).
                throw new InvalidDataException($"truncated xz stream: compressed input ended before the end of the stream ({code} from {operation})");
            case Return.LZMA_MEM_ERROR:
                throw new OutOfMemoryException($"xz: liblzma could not allocate memory ({code} from {operation})");
            case Return.LZMA_MEMLIMIT_ERROR:
                throw new InvalidDataException($"xz: stream needs more memory than the decoder allows ({code} from {operation})");
            case Return.LZMA_OPTIONS_ERROR:
                throw new ArgumentException($"xz: liblzma rejected the coder options ({code} from {operation})");
            default:
                throw new InvalidOperationException($"xz: liblzma failed with {code} in {operation}");
        }
    }
}

/// <summary>
/// Owns an <c>lzma_stream</c> allocated in native memory, so the address liblzma keeps in its
/// internal state never moves. Releasing it ends the coder and frees the struct.
/// </summary>
internal sealed unsafe class LzmaStreamHandle : SafeHandle
{
    public LzmaStreamHandle()
        : base(IntPtr.Zero, ownsHandle: true)
    {
        SetHandle((IntPtr)NativeMemory.AllocZeroed((nuint)sizeof(Lzma.Stream)));
    }

    public override bool IsInvalid => handle == IntPtr.Zero;

    /// <summary>The struct itself; valid while the handle is alive (callers hold a reference or use DangerousAddRef).</summary>
    public Lzma.Stream* Stream => (Lzma.Stream*)handle;

    /// <summary>
    /// One <c>lzma_code</c> step over the given buffers, for encoders and decoders alike. The buffers are
    /// pinned only for the call, so the stream's pointers are cleared before returning. Error codes throw.
    /// </summary>
    public Lzma.Return Code(ReadOnlySpan<byte> source, Span<byte> destination, Lzma.Action action, out int bytesConsumed, out int bytesWritten)
    {
        ObjectDisposedException.ThrowIf(IsClosed, this);
        Lzma.Return result;
        var strm = Stream;
        fixed (byte* input = source)
        fixed (byte* output = destination)
        {
            strm->next_in = input;
            strm->avail_in = (nuint)source.Length;
            strm->next_out = output;
            strm->avail_out = (nuint)destination.Length;
            result = Lzma.lzma_code(this, action);
            bytesConsumed = source.Length - (int)strm->avail_in;
            bytesWritten = destination.Length - (int)strm->avail_out;
            strm->next_in = null;
            strm->next_out = null;
        }
        Lzma.ThrowIfError(result, "lzma_code");
        return result;
    }

    protected override bool ReleaseHandle()
    {
        var stream = (Lzma.Stream*)handle;
        Lzma.lzma_end(stream);
        NativeMemory.Free(stream);
        return true;
    }
}
