using System.CommandLine;
using LazyStore.Nix.Nar;

namespace LazyStore.Cli.Commands;

/// <summary><c>lazystore nar …</c>: NAR tools that behave like Nix's own.</summary>
internal static class NarCommands
{
    public static Command Create(CliConsole console)
    {
        var nar = new Command("nar", "Create, inspect and unpack Nix archives (NARs)");
        nar.Subcommands.Add(Dump(console));
        nar.Subcommands.Add(Restore(console));
        nar.Subcommands.Add(List(console));
        nar.Subcommands.Add(Cat(console));
        return nar;
    }

    private static Command Dump(CliConsole console)
    {
        var path = new Argument<string>("PATH") { Description = "File, symlink or directory to serialise" };
        var command = new Command("dump", "Write the NAR of PATH to stdout, byte-identical to nix-store --dump") { path };
        command.SetAction(result =>
        {
            var source = result.GetValue(path)!;
            if (!Path.Exists(source) && new FileInfo(source).LinkTarget is null)
                throw new CliException($"nar dump: '{source}' does not exist");
            NarWriter.Dump(source, console.Stdout);
        });
        return command;
    }

    private static Command Restore(CliConsole console)
    {
        var target = new Argument<string>("DIR") { Description = "Where to unpack; must not exist yet" };
        var command = new Command("restore", "Unpack the NAR read from stdin into DIR") { target };
        command.SetAction(result =>
        {
            var dir = result.GetValue(target)!;
            try
            {
                NarRestorer.Restore(console.Stdin, dir);
            }
            catch (NarFormatException e)
            {
                throw new CliException($"nar restore: <stdin>: {e.Message}", e);
            }
        });
        return command;
    }

    private static Command List(CliConsole console)
    {
        var narFile = new Argument<string>("NAR") { Description = "The NAR file" };
        var path = new Argument<string>("PATH") { Description = "Absolute path inside the NAR", DefaultValueFactory = _ => "/" };
        var listing = new ListingOptions();
        var command = new Command("ls", "List the contents of a NAR, as nix nar ls does") { narFile, path };
        listing.AddTo(command);
        command.SetAction(result =>
        {
            var file = result.GetValue(narFile)!;
            var inside = result.GetValue(path)!;
            var components = SplitInsidePath(inside);
            var root = ReadListing(file);
            var node = NarListing.Find(root, components)
                ?? throw new CliException($"nar ls: {file}: path '{inside}' does not exist");
            listing.Print(result, console.Out, node, components);
        });
        return command;
    }

    private static Command Cat(CliConsole console)
    {
        var narFile = new Argument<string>("NAR") { Description = "The NAR file" };
        var path = new Argument<string>("PATH") { Description = "Absolute path of a regular file inside the NAR" };
        var command = new Command("cat", "Print a regular file inside a NAR, as nix nar cat does") { narFile, path };
        command.SetAction(result =>
        {
            var file = result.GetValue(narFile)!;
            var inside = result.GetValue(path)!;
            var wanted = string.Join('/', SplitInsidePath(inside));
            using var stream = OpenNar(file);
            using var reader = new NarReader(stream);
            try
            {
                while (reader.GetNextEntry() is { } entry)
                {
                    if (entry.Path != wanted)
                        continue;
                    if (entry.Type != NarEntryType.Regular)
                        throw new CliException($"nar cat: {file}: path '{inside}' is not a regular file");
                    using var payload = entry.OpenPayload();
                    payload.CopyTo(console.Stdout, 128 * 1024);
                    return;
                }
            }
            catch (NarFormatException e)
            {
                throw new CliException($"nar cat: {file}: {e.Message}", e);
            }
            throw new CliException($"nar cat: {file}: path '{inside}' does not exist");
        });
        return command;
    }

    internal static IReadOnlyList<string> SplitInsidePath(string inside)
    {
        try
        {
            return NarListing.SplitPath(inside);
        }
        catch (ArgumentException e)
        {
            throw new CliException(e.Message, e);
        }
    }

    private static NarListingNode ReadListing(string file)
    {
        using var stream = OpenNar(file);
        try
        {
            return NarListing.FromNar(stream);
        }
        catch (NarFormatException e)
        {
            throw new CliException($"{file}: {e.Message}", e);
        }
    }

    private static FileStream OpenNar(string file)
    {
        try
        {
            return new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.SequentialScan);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CliException($"cannot open NAR '{file}': {e.Message}", e);
        }
    }
}
