using System.Diagnostics;

namespace LazyStore.Tests.Support;

/// <summary>
/// A tool run as a child process, for system calls into a mount that may hang: the child blocks,
/// never a test thread (a thread waiting on an unanswered FUSE request cannot be stopped). Waits are
/// bounded; Dispose kills a child still running and never waits for it to go.
/// </summary>
public sealed class ChildProcess : IDisposable
{
    private readonly Process _process;
    private readonly Task<string> _stdout;
    private readonly Task<string> _stderr;
    private readonly long _started = Stopwatch.GetTimestamp();

    private ChildProcess(Process process)
    {
        _process = process;
        _stdout = process.StandardOutput.ReadToEndAsync();
        _stderr = process.StandardError.ReadToEndAsync();
    }

    public int Id => _process.Id;

    public string Description { get; private init; } = "";

    /// <summary>Time since the child was started.</summary>
    public TimeSpan Elapsed => Stopwatch.GetElapsedTime(_started);

    public static ChildProcess Start(string tool, params string[] args)
    {
        var start = new ProcessStartInfo(RequiredTools.Require(tool))
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in args)
            start.ArgumentList.Add(arg);
        start.Environment["LC_ALL"] = "C";
        var process = Process.Start(start) ?? throw new InvalidOperationException($"could not start {tool}");
        return new ChildProcess(process) { Description = $"{tool} {string.Join(' ', args)}" };
    }

    /// <summary>Whether the child has exited and been reaped.</summary>
    public bool HasExited => _process.HasExited;

    /// <summary>Waits up to <paramref name="bound"/> for the child to exit; its result, or null if it is still running.</summary>
    public async Task<ProcessResult?> WaitAsync(TimeSpan bound)
    {
        using var timeout = new CancellationTokenSource(bound);
        try
        {
            await _process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested)
        {
            return null;
        }
        var stdout = await _stdout.WaitAsync(bound);
        var stderr = await _stderr.WaitAsync(bound);
        return new ProcessResult(_process.ExitCode, System.Text.Encoding.UTF8.GetBytes(stdout), stderr);
    }

    /// <summary>Like <see cref="WaitAsync"/>, but a child still running after <paramref name="bound"/> fails the test.</summary>
    public async Task<ProcessResult> ExitsWithinAsync(TimeSpan bound) =>
        await WaitAsync(bound) ?? throw new TimeoutException($"'{Description}' was still running after {bound.TotalSeconds:0.#} s");

    /// <summary>SIGKILL, which a child blocked in an unanswered FUSE request cannot act on until the request is answered.</summary>
    public void Kill()
    {
        try
        {
            _process.Kill();
        }
        catch (InvalidOperationException)
        {
            // Already exited.
        }
    }

    public void Dispose()
    {
        if (!_process.HasExited)
            Kill();
        _process.Dispose();
    }
}
