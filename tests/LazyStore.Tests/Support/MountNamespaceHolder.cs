using System.Diagnostics;
using LazyStore.Fuse;
using LazyStore.Fuse.Interop;

namespace LazyStore.Tests.Support;

/// <summary>
/// A process in a mount namespace of its own (<c>unshare -m --propagation private sleep</c>) that holds a
/// copy of every mount this process sees, as Nix's build sandboxes do: unmounting here leaves its copy,
/// and with it the superblock and the FUSE connection, alive. Dispose kills it, which frees the copies.
/// </summary>
public sealed class MountNamespaceHolder : IDisposable
{
    private readonly Process _process;

    private MountNamespaceHolder(Process process)
    {
        _process = process;
    }

    public int ProcessId => _process.Id;

    /// <summary>
    /// Starts the holder and returns once its own mount namespace lists <paramref name="mountPoint"/>;
    /// throws when that does not happen within <paramref name="patience"/>.
    /// </summary>
    public static MountNamespaceHolder Start(string mountPoint, TimeSpan patience)
    {
        var start = new ProcessStartInfo(RequiredTools.Require("unshare")) { UseShellExecute = false, RedirectStandardError = true };
        // A user namespace lets a non-root test run create the mount namespace; as root it is not needed.
        string[] userNamespace = Environment.IsPrivilegedProcess ? [] : ["--map-root-user"];
        foreach (var argument in userNamespace.Concat(["--mount", "--propagation", "private", "sleep", "300"]))
            start.ArgumentList.Add(argument);
        var holder = new MountNamespaceHolder(Process.Start(start) ?? throw new InvalidOperationException("could not start unshare"));
        try
        {
            holder.WaitForCopy(Libc.RealPath(mountPoint), patience);
            return holder;
        }
        catch
        {
            holder.Dispose();
            throw;
        }
    }

    /// <summary><paramref name="path"/> as the holder sees it: resolved in its mount namespace, through its copies.</summary>
    public string Inside(string path) => $"/proc/{ProcessId}/root{path}";

    /// <summary>Whether the holder's mount namespace has a mount at <paramref name="mountPoint"/>.</summary>
    public bool HasMountAt(string mountPoint)
    {
        var canonical = Libc.RealPath(mountPoint);
        return File.ReadLines($"/proc/{ProcessId}/mountinfo").Select(MountTable.Parse).Any(m => m.MountPoint == canonical);
    }

    /// <summary>
    /// Until unshare(2) has run, the process still shares this namespace (and its mountinfo lists the
    /// mount too), so the copy exists once its namespace differs from ours and lists the mount point.
    /// </summary>
    private void WaitForCopy(string mountPoint, TimeSpan patience)
    {
        var ours = new FileInfo("/proc/self/ns/mnt").LinkTarget;
        var clock = Stopwatch.StartNew();
        while (true)
        {
            if (_process.HasExited)
                throw new InvalidOperationException($"unshare exited with {_process.ExitCode}: {_process.StandardError.ReadToEnd().Trim()}");
            string? theirs = null;
            try
            {
                theirs = new FileInfo($"/proc/{ProcessId}/ns/mnt").LinkTarget;
            }
            catch (IOException)
            {
                // The process is between fork and exec; its /proc entry may not be readable yet.
            }
            if (theirs is not null && theirs != ours && HasMountAt(mountPoint))
                return;
            if (clock.Elapsed > patience)
                throw new TimeoutException($"the holder (pid {ProcessId}) had no copy of {mountPoint} in a namespace of its own within {patience}");
            Thread.Sleep(10);
        }
    }

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill();
                _process.WaitForExit();
            }
        }
        finally
        {
            _process.Dispose();
        }
    }
}
