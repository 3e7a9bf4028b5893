using System.Runtime.InteropServices;
using System.Text;
using LazyStore.Fuse.Interop;

namespace LazyStore.Fuse;

/// <summary>
/// Routes libfuse's messages (fuse_log) to managed code. libfuse's log function is process-wide and
/// has no user data, so messages are attributed by thread: mount errors are captured on the thread
/// that mounts (they become the exception's message), the session thread sends its own to the
/// session's log, and the rest go to standard error.
/// </summary>
internal static unsafe class LibraryLog
{
    private const int MaxMessage = 1024;

    private static int s_installed;

    [ThreadStatic]
    private static StringBuilder? t_line;

    [ThreadStatic]
    private static List<string>? t_captured;

    [ThreadStatic]
    private static Action<string>? t_sink;

    internal static void Install()
    {
        if (Interlocked.Exchange(ref s_installed, 1) == 0)
            LibFuse.fuse_set_log_func(&Write);
    }

    /// <summary>Collects this thread's messages until <see cref="EndCapture"/>.</summary>
    internal static void BeginCapture() => t_captured = [];

    /// <summary>The messages since <see cref="BeginCapture"/>, joined; empty when libfuse said nothing.</summary>
    internal static string EndCapture()
    {
        Flush();
        var captured = t_captured ?? [];
        t_captured = null;
        return string.Join("; ", captured);
    }

    /// <summary>Sends this thread's messages to <paramref name="sink"/> (null: standard error).</summary>
    internal static void SendTo(Action<string>? sink) => t_sink = sink;

    /// <summary>fuse_log_func_t: libfuse writes one line in several calls, so text is held until its newline.</summary>
    [UnmanagedCallersOnly]
    private static void Write(int level, byte* format, nint arguments)
    {
        try
        {
            byte* text = stackalloc byte[MaxMessage];
            int length = Libc.vsnprintf(text, MaxMessage, format, arguments);
            if (length <= 0)
                return;
            var line = t_line ??= new StringBuilder();
            line.Append(Marshal.PtrToStringUTF8((nint)text, Math.Min(length, MaxMessage - 1)));
            if (line.Length > 0 && line[^1] == '\n')
                Flush();
        }
        catch (Exception e)
        {
            // Nothing may unwind into libfuse; a message that cannot be formatted or written is dropped.
            Console.Error.WriteLine($"fuse: log: {e.Message}");
        }
    }

    private static void Flush()
    {
        if (t_line is not { Length: > 0 } line)
            return;
        string message = line.ToString().TrimEnd('\n');
        line.Clear();
        if (t_captured is { } captured)
            captured.Add(message);
        else if (t_sink is { } sink)
            sink(message);
        else
            Console.Error.WriteLine($"libfuse: {message}");
    }
}
