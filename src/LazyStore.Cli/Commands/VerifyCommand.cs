using System.CommandLine;
using System.Globalization;
using LazyStore.Nix;
using LazyStore.Store.Catalog;
using LazyStore.Store.Fetch;

namespace LazyStore.Cli.Commands;

/// <summary>
/// <c>lazystore verify [--repair] [STORE-PATH...]</c>: hashes stored NAR blobs again against their NarHash and
/// NarSize, as <c>nix store verify</c> checks contents; a corrupt one is printed, and with --repair deleted
/// with its index so the next open fetches it again. Reads only the state directory; asks no cache.
/// </summary>
internal static class VerifyCommand
{
    public static Command Create(CliConsole console)
    {
        var options = new StoreOptions();
        var paths = new Argument<string[]>("STORE-PATH")
        {
            Description = "Store paths whose stored NARs to check (default: every stored NAR)",
            Arity = ArgumentArity.ZeroOrMore,
        };
        var repair = new Option<bool>("--repair")
        {
            Description = "Delete each corrupt blob and its index; the path stays registered and its next open fetches the NAR again",
        };
        var command = new Command("verify", "Hash stored NARs again and report those that no longer match their NarHash or NarSize") { paths, repair };
        command.Options.Add(options.StateDir);
        command.Options.Add(options.StoreDir);
        command.SetAction(result =>
        {
            var state = StateDirectory.Open(options.StatePath(result));
            var catalog = new StoreCatalog(state);
            var storeDirectory = new StoreDirectory(result.GetValue(options.StoreDir)!);
            var arguments = result.GetValue(paths) ?? [];
            var stored = arguments.Length == 0 ? catalog.ListStoredNars() : Select(catalog, storeDirectory, arguments);

            var corrupt = 0;
            long bytes = 0;
            foreach (var (nar, baseNames) in stored)
            {
                var check = NarVerifier.Verify(state, nar);
                bytes += check.ActualSize ?? 0;
                if (check.IsIntact)
                    continue;
                corrupt++;
                var repaired = false;
                if (result.GetValue(repair))
                {
                    NarVerifier.Discard(catalog, nar);
                    repaired = true;
                }
                var names = baseNames.Count == 0 ? [$"NAR {nar.NarHash}"] : baseNames.Select(n => $"{storeDirectory.Path}/{n}");
                foreach (var name in names)
                {
                    console.Out.Write(string.Create(CultureInfo.InvariantCulture,
                        $"{name}: stored NAR is corrupt: {check.Problem}{(repaired ? "; repaired: blob and index deleted, the next open fetches it again" : "")}\n"));
                }
            }
            console.Out.Flush();
            if (corrupt > 0)
            {
                throw new CliException(string.Create(CultureInfo.InvariantCulture,
                    $"verify: {corrupt} of {stored.Count} stored NARs are corrupt{(result.GetValue(repair) ? " (repaired: they are fetched again at next use)" : "; `lazystore verify --repair` deletes them so they are fetched again")}"));
            }
            console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"verified {stored.Count} stored NAR{(stored.Count == 1 ? "" : "s")} ({StoreCommands.Human(bytes)}): all intact"));
        });
        return command;
    }

    /// <summary>The stored NARs of the named paths, each once; a path the catalog does not know is an error, one without a stored NAR has nothing to check.</summary>
    private static List<(NarRecord Nar, IReadOnlyList<string> BaseNames)> Select(StoreCatalog catalog, StoreDirectory storeDirectory, IEnumerable<string> arguments)
    {
        var selected = new List<(NarRecord, IReadOnlyList<string>)>();
        var byNar = new Dictionary<long, List<string>>();
        foreach (var argument in arguments)
        {
            StorePath path;
            try
            {
                path = argument.StartsWith('/') ? storeDirectory.ParsePath(argument) : StorePath.FromBaseName(argument);
            }
            catch (StorePathFormatException e)
            {
                throw new CliException("verify: " + e.Message, e);
            }
            var known = catalog.GetStorePath(path.HashPart) ?? throw new CliException($"verify: {storeDirectory.Print(path)} is not known to the catalog");
            if (catalog.GetNar(known.Nar.NarHash) is not { IsFetched: true } nar)
                continue;
            if (!byNar.TryGetValue(nar.Id, out var names))
            {
                byNar[nar.Id] = names = [];
                selected.Add((nar, names));
            }
            if (!names.Contains(path.BaseName))
                names.Add(path.BaseName);
        }
        return selected;
    }
}
