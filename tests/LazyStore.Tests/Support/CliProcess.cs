namespace LazyStore.Tests.Support;

/// <summary>Runs the built <c>lazystore</c> program as a separate process (copied next to the tests).</summary>
public static class CliProcess
{
    public static string AssemblyPath => Path.Combine(AppContext.BaseDirectory, "lazystore.dll");

    public static ProcessResult Run(IEnumerable<string> args, Stream? stdin = null, string? stdoutFile = null)
    {
        var dotnet = Environment.ProcessPath is { } p && Path.GetFileNameWithoutExtension(p) == "dotnet"
            ? p
            : ExternalTool.Find("dotnet") ?? throw new InvalidOperationException("dotnet not found on PATH");
        return ExternalTool.Run(dotnet, new[] { AssemblyPath }.Concat(args), stdin: stdin, stdoutFile: stdoutFile);
    }
}
