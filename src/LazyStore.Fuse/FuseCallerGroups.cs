using System.Globalization;

namespace LazyStore.Fuse;

/// <summary>
/// The supplementary groups of the thread that made a request, which the FUSE protocol does not carry
/// (only its fs uid, fs gid and pid). Read as libfuse's <c>fuse_req_getgroups</c> reads them, from
/// <c>/proc/PID/task/PID/status</c>; <see cref="FuseRequestContext.ProcessId"/> is the calling thread's id.
/// </summary>
public static class FuseCallerGroups
{
    /// <summary>
    /// The caller's supplementary groups, or null when they cannot be known: the request came from the
    /// kernel itself (pid 0), the thread is gone, or its fs uid and gid are no longer the request's (it
    /// changed identity since, or its id now names another thread).
    /// </summary>
    public static uint[]? Read(FuseRequestContext context)
    {
        if (context.ProcessId <= 0)
            return null;
        // The status file is about 1.5 KiB: read at one go into the stack, parsed as bytes (every change a caller
        // other than the mount's own user makes costs one read). A long Groups line needs more room.
        Span<byte> buffer = stackalloc byte[4096];
        var path = string.Create(CultureInfo.InvariantCulture, $"/proc/{context.ProcessId}/task/{context.ProcessId}/status");
        try
        {
            using (var file = File.OpenHandle(path))
                buffer = buffer[..RandomAccess.Read(file, buffer, 0)];
            if (buffer.Length == 4096)
                buffer = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // The thread exited (ENOENT, or ESRCH while reading): nobody waits for the answer.
            return null;
        }
        uint[]? groups = null;
        bool sameUser = false, sameGroup = false;
        foreach (var range in buffer.Split((byte)'\n'))
        {
            var line = buffer[range];
            // "Uid:" and "Gid:" list the real, effective, saved and file-system ids (proc(5)).
            if (line.StartsWith("Uid:"u8))
                sameUser = FileSystemId(line) == context.UserId;
            else if (line.StartsWith("Gid:"u8))
                sameGroup = FileSystemId(line) == context.GroupId;
            else if (line.StartsWith("Groups:"u8))
                groups = Ids(line);
        }
        return sameUser && sameGroup ? groups : null;
    }

    private static uint? FileSystemId(ReadOnlySpan<byte> line)
    {
        var ids = Ids(line);
        return ids.Length == 4 ? ids[3] : null;
    }

    private static uint[] Ids(ReadOnlySpan<byte> line)
    {
        line = line[(line.IndexOf((byte)':') + 1)..];
        var ids = new List<uint>();
        foreach (var range in line.SplitAny(" \t"u8))
        {
            var field = line[range];
            if (!field.IsEmpty)
                ids.Add(uint.Parse(field, NumberStyles.None, CultureInfo.InvariantCulture));
        }
        return ids.ToArray();
    }
}
