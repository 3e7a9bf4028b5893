using System.Text;
using LazyStore.Cli;

namespace LazyStore.Tests.Support;

public sealed record CliResult(int ExitCode, byte[] Stdout, string Stderr)
{
    public string StdoutText => Encoding.UTF8.GetString(Stdout);
}

/// <summary>Runs the <c>lazystore</c> command in-process with captured streams.</summary>
public static class CliRunner
{
    public static CliResult Run(byte[]? stdin, params string[] args)
    {
        using var input = new MemoryStream(stdin ?? []);
        using var output = new MemoryStream();
        using var error = new StringWriter();
        int code = LazyStoreCommand.Run(args, new CliConsole(input, output, error));
        return new CliResult(code, output.ToArray(), error.ToString());
    }

    public static CliResult Run(params string[] args) => Run(null, args);
}
