using System.Diagnostics;
using System.Runtime.InteropServices;

namespace LazyStore.Tests.Support;

/// <summary>Runs the built <c>lazystore</c> program as a separate process (copied next to the tests).</summary>
public static partial class CliProcess
{
    public static string AssemblyPath => Path.Combine(AppContext.BaseDirectory, "lazystore.dll");

    private static string Dotnet =>
        Environment.ProcessPath is { } p && Path.GetFileNameWithoutExtension(p) == "dotnet"
            ? p
            : ExternalTool.Find("dotnet") ?? throw new InvalidOperationException("dotnet not found on PATH");

    public static ProcessResult Run(IEnumerable<string> args, Stream? stdin = null, string? stdoutFile = null) =>
        ExternalTool.Run(Dotnet, new[] { AssemblyPath }.Concat(args), stdin: stdin, stdoutFile: stdoutFile);

    /// <summary>Runs <c>lazystore</c> to its end with variables of its environment set or replaced.</summary>
    public static ProcessResult Run(IEnumerable<string> args, IDictionary<string, string?> environment) =>
        ExternalTool.Run(Dotnet, new[] { AssemblyPath }.Concat(args), environment);

    /// <summary>Starts <c>lazystore</c> with standard output and error redirected, for a test that talks to it while it runs.</summary>
    public static Process Start(IEnumerable<string> args) => Start(args, new Dictionary<string, string?>());

    /// <summary>Starts <c>lazystore</c> as <see cref="Start(IEnumerable{string})"/> does, with variables of its environment set or replaced.</summary>
    public static Process Start(IEnumerable<string> args, IReadOnlyDictionary<string, string?> environment)
    {
        var start = new ProcessStartInfo(Dotnet)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(AssemblyPath);
        foreach (var argument in args)
            start.ArgumentList.Add(argument);
        foreach (var (name, value) in environment)
            start.Environment[name] = value;
        return Process.Start(start) ?? throw new InvalidOperationException("could not start lazystore");
    }

    /// <summary>
    /// Sends SIGTERM. (Not SIGINT: a process started from a non-interactive shell in the background
    /// inherits SIGINT as ignored, and .NET keeps it so.)
    /// </summary>
    public static bool Terminate(Process process) => kill(process.Id, SigTerm) == 0;

    private const int SigTerm = 15;

    [LibraryImport("libc", SetLastError = true)]
    private static partial int kill(int pid, int signal);
}
