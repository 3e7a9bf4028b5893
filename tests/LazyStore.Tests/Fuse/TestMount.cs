using LazyStore.Fuse;
using LazyStore.Fuse.Interop;
using LazyStore.Tests.Support;

namespace LazyStore.Tests.Fuse;

/// <summary>
/// A filesystem mounted at a fresh temporary directory for one test. Dispose unmounts it, and if the
/// mount is somehow still there, detaches it lazily, so a failed test never leaves a mount behind.
/// </summary>
public sealed class TestMount : IDisposable
{
    private static readonly TimeSpan ToolTimeout = TimeSpan.FromSeconds(60);

    private readonly TempDir _temp;
    private readonly StringWriter _log = new();
    private readonly TextWriter _syncLog;

    private TestMount(TempDir temp, string path, IFuseFileSystem fileSystem, FuseMountOptions? options)
    {
        _temp = temp;
        _syncLog = TextWriter.Synchronized(_log);
        Path = path;
        Mount = FuseMount.Mount(fileSystem, path, (options ?? new FuseMountOptions()) with
        {
            FileSystemName = "lazystore-test",
            Subtype = "memory",
            Log = _syncLog,
        });
    }

    public FuseMount Mount { get; }

    /// <summary>The mount point as given (the temporary directory's own path).</summary>
    public string Path { get; }

    /// <summary>What the session logged so far.</summary>
    public string Log
    {
        get
        {
            lock (_syncLog)
                return _log.ToString();
        }
    }

    public static TestMount Start(IFuseFileSystem fileSystem, FuseMountOptions? options = null)
    {
        var temp = new TempDir("lazystore-fuse-");
        var path = temp.Sub("mnt");
        Directory.CreateDirectory(path);
        try
        {
            return new TestMount(temp, path, fileSystem, options);
        }
        catch
        {
            temp.Dispose();
            throw;
        }
    }

    public static bool IsMounted(string path) => MountTable.At(Libc.RealPath(path)) is not null;

    public string In(string relative) => System.IO.Path.Combine(Path, relative);

    /// <summary>Runs a command-line tool with a timeout, so a hung filesystem fails the test instead of hanging the run.</summary>
    public static ProcessResult Tool(string tool, params string[] args)
    {
        var path = RequiredTools.Require(tool);
        var run = Task.Run(() => ExternalTool.Run(path, args, new Dictionary<string, string?> { ["TZ"] = "UTC", ["LC_ALL"] = "C" }));
        if (!run.Wait(ToolTimeout))
            throw new TimeoutException($"{tool} {string.Join(' ', args)} did not finish within {ToolTimeout}");
        return run.Result;
    }

    public void Dispose()
    {
        try
        {
            Mount.Dispose();
        }
        finally
        {
            if (MountTable.At(Mount.MountPoint) is not null)
                Libc.umount2(Mount.MountPoint, Libc.MntDetach);
            _temp.Dispose();
        }
    }
}
