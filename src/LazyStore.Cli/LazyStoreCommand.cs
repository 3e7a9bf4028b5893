using System.CommandLine;
using LazyStore.Cli.Commands;

namespace LazyStore.Cli;

/// <summary>The <c>lazystore</c> command tree and its one-line error reporting.</summary>
public static class LazyStoreCommand
{
    public static RootCommand Create(CliConsole console)
    {
        var root = new RootCommand("LazyStore: a lazily substituting overlay for the Nix store");
        root.Subcommands.Add(NarCommands.Create(console));
        foreach (var command in StoreCommands.Create(console))
            root.Subcommands.Add(command);
        root.Subcommands.Add(MountCommand.Create(console));
        root.Subcommands.Add(RegisterCommand.Create(console));
        root.Subcommands.Add(RealiseCommand.Create(console));
        root.Subcommands.Add(VerifyCommand.Create(console));
        root.Subcommands.Add(DemoCommand.Create(console));
        return root;
    }

    /// <summary>Parses and runs <paramref name="args"/>; exit status 0 on success, 1 with one line on stderr otherwise.</summary>
    public static int Run(string[] args, CliConsole console)
    {
        var root = Create(console);
        var configuration = new InvocationConfiguration
        {
            Output = console.Out,
            Error = console.Error,
            EnableDefaultExceptionHandler = false,
        };
        try
        {
            var parsed = root.Parse(args);
            int status = parsed.Invoke(configuration);
            console.Out.Flush();
            console.Stdout.Flush();
            return status;
        }
        catch (CliException e)
        {
            return Fail(console, e.Message);
        }
        catch (Exception e) when (e is IOException or InvalidDataException or FormatException or UnauthorizedAccessException or ArgumentException)
        {
            return Fail(console, e.Message);
        }
    }

    private static int Fail(CliConsole console, string message)
    {
        try
        {
            console.Out.Flush();
        }
        catch (IOException)
        {
            // stdout may be a closed pipe; the error line still goes to stderr.
        }
        console.Error.WriteLine("error: " + message.ReplaceLineEndings(" "));
        return 1;
    }
}

/// <summary>A failure the CLI reports as one line: what failed, where, why.</summary>
public sealed class CliException(string message, Exception? inner = null) : Exception(message, inner);
