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
        var pid = context.ProcessId.ToString(CultureInfo.InvariantCulture);
        string[] lines;
        try
        {
            lines = File.ReadAllLines($"/proc/{pid}/task/{pid}/status");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // The thread exited (ENOENT, or ESRCH while reading): nobody waits for the answer.
            return null;
        }
        uint[]? groups = null;
        bool sameUser = false, sameGroup = false;
        foreach (var line in lines)
        {
            // "Uid:" and "Gid:" list the real, effective, saved and file-system ids (proc(5)).
            if (line.StartsWith("Uid:", StringComparison.Ordinal))
                sameUser = FileSystemId(line) == context.UserId;
            else if (line.StartsWith("Gid:", StringComparison.Ordinal))
                sameGroup = FileSystemId(line) == context.GroupId;
            else if (line.StartsWith("Groups:", StringComparison.Ordinal))
                groups = Ids(line).ToArray();
        }
        return sameUser && sameGroup ? groups : null;
    }

    private static uint? FileSystemId(string line) => Ids(line).Skip(3).Select(id => (uint?)id).FirstOrDefault();

    private static IEnumerable<uint> Ids(string line) =>
        line[(line.IndexOf(':', StringComparison.Ordinal) + 1)..]
            .Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries)
            .Select(id => uint.Parse(id, NumberStyles.None, CultureInfo.InvariantCulture));
}
