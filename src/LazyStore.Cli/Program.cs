namespace LazyStore.Cli;

internal static class Program
{
    private static int Main(string[] args)
    {
        using var stdin = Console.OpenStandardInput();
        using var stdout = Console.OpenStandardOutput();
        return LazyStoreCommand.Run(args, new CliConsole(stdin, stdout, Console.Error, isTerminal: !Console.IsErrorRedirected));
    }
}
