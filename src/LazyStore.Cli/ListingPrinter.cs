using System.CommandLine;
using System.Globalization;
using LazyStore.Nix.Nar;

namespace LazyStore.Cli;

/// <summary>The options of <c>nix nar ls</c> / <c>nix store ls</c>, and the output they choose.</summary>
internal sealed class ListingOptions
{
    private readonly Option<bool> _recursive = new("--recursive", "-R") { Description = "List subdirectories recursively" };
    private readonly Option<bool> _json = new("--json") { Description = "Print JSON, as nix nar ls --json" };
    private readonly Option<bool> _long = new("--long", "-l") { Description = "Show type, size and symlink targets" };
    private readonly Option<bool> _directory = new("--directory", "-d") { Description = "Show directories rather than their contents" };

    public void AddTo(Command command)
    {
        command.Options.Add(_recursive);
        command.Options.Add(_json);
        command.Options.Add(_long);
        command.Options.Add(_directory);
    }

    /// <summary>Prints <paramref name="node"/>, found at <paramref name="components"/>, as the options ask.</summary>
    public void Print(ParseResult result, TextWriter output, NarListingNode node, IReadOnlyList<string> components)
    {
        if (result.GetValue(_json))
        {
            output.Write(NarListing.ToJson(node, result.GetValue(_recursive)));
            output.Write('\n');
            return;
        }
        ListingPrinter.Print(output, node, components, result.GetValue(_long), result.GetValue(_recursive), result.GetValue(_directory));
    }
}

/// <summary>The plain and long text formats of <c>nix nar ls</c> (nix/ls.cc in Nix 2.8).</summary>
internal sealed class ListingPrinter(TextWriter output, bool longFormat, bool recursive)
{
    /// <summary>Prints <paramref name="node"/>, found at <paramref name="components"/>, as <c>nix nar ls</c> / <c>nix store ls</c> do.</summary>
    public static void Print(TextWriter output, NarListingNode node, IReadOnlyList<string> components, bool longFormat, bool recursive, bool showDirectory)
    {
        var relative = node is NarListingDirectory ? "." : components.Count == 0 ? "" : components[^1];
        new ListingPrinter(output, longFormat, recursive).Print(node, relative, showDirectory);
    }

    private void Print(NarListingNode node, string relative, bool showDirectory)
    {
        if (node is NarListingDirectory directory && !showDirectory)
        {
            foreach (var (name, child) in directory.Entries)
                ShowFile(child, relative + "/" + name);
        }
        else
        {
            ShowFile(node, relative);
        }
    }

    private void ShowFile(NarListingNode node, string relative)
    {
        if (longFormat)
        {
            var (mode, size) = node switch
            {
                NarListingRegular r => (r.IsExecutable ? "-r-xr-xr-x" : "-r--r--r--", r.Size),
                NarListingSymlink => ("lrwxrwxrwx", 0L),
                _ => ("dr-xr-xr-x", 0L),
            };
            var line = string.Create(CultureInfo.InvariantCulture, $"{mode} {size,20} {relative}");
            if (node is NarListingSymlink symlink)
                line += " -> " + symlink.Target;
            output.Write(line + "\n");
        }
        else
        {
            output.Write(relative + "\n");
        }
        if (recursive && node is NarListingDirectory)
            Print(node, relative, showDirectory: false);
    }
}
