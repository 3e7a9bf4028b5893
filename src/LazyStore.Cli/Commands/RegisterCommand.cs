using System.CommandLine;
using System.Globalization;
using LazyStore.Nix;
using LazyStore.Store;
using LazyStore.Store.Mount;
using LazyStore.Store.Registration;
using LazyStore.Store.Substituters;

namespace LazyStore.Cli.Commands;

/// <summary><c>lazystore register</c>: store paths from the caches made valid in Nix's database, served lazily by the mount.</summary>
internal static class RegisterCommand
{
    public static Command Create(CliConsole console)
    {
        var options = new StoreOptions();
        var paths = new Argument<string[]>("STORE-PATH") { Description = "Store paths to register", Arity = ArgumentArity.OneOrMore };
        var storeRoot = new Option<string?>("--store-root")
        {
            Description = "The root of a chroot store (its store directory is ROOT/nix/store), as nix-store --store ROOT; default: the machine's store",
        };
        var closure = new Option<bool>("--closure") { Description = "Also register everything the paths refer to, transitively" };
        var jobs = new Option<int>("--jobs", "-j") { Description = "Parallel narinfo and listing lookups", DefaultValueFactory = _ => 8 };
        var command = new Command("register",
            "Register store paths the caches have as valid in Nix's database, without downloading their NARs; a LazyStore mount serves them")
        {
            paths, storeRoot, closure, jobs,
        };
        options.AddTo(command);
        command.SetAction(result =>
        {
            using var engine = options.OpenEngine(result);
            var root = result.GetValue(storeRoot);
            var physical = NixValidity.PhysicalStoreDirectory(root, engine.StoreDirectory);
            if (!StoreMount.IsMountedAt(physical))
                console.Error.WriteLine($"warning: no LazyStore mount serves {physical}; Nix will not find lazy paths there (start `lazystore mount {physical}` first)");
            var roots = result.GetValue(paths)!.Select(p => Parse(engine, p)).ToList();
            RegisteredPaths registered;
            try
            {
                registered = engine.RegisterAsync(roots, result.GetValue(closure), Math.Max(1, result.GetValue(jobs)), CancellationToken.None).GetAwaiter().GetResult();
            }
            catch (PathNotSubstitutableException e)
            {
                throw new CliException("register: nothing registered: " + e.Message, e);
            }
            try
            {
                NixValidity.Register(root, registered.Paths.Select(p => p.Info).ToList(), engine.StoreDirectory);
            }
            catch (NixRegistrationException e)
            {
                engine.Catalog.Unregister(registered.Added.Select(p => p.HashPart));
                throw new CliException("register: " + e.Message, e);
            }
            if (NixValidity.CopySignatures(root, registered.Paths.Select(p => (p.CacheUrl, p.Path)), engine.StoreDirectory) is { } why)
                console.Error.WriteLine($"warning: the caches' signatures are not in Nix's database, so `nix store verify` will call the paths untrusted: {why}");
            foreach (var path in registered.Paths.OrderBy(p => p.Path))
                console.Out.Write(string.Create(CultureInfo.InvariantCulture, $"{path.Path.ToFullPath(engine.StoreDirectory)}\t{path.Info.NarSize}\n"));
            var advertised = registered.Paths.Sum(p => (long)p.Info.NarSize);
            console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"registered {registered.Paths.Count} paths ({registered.Added.Count} new), {advertised} bytes of NAR advertised; {engine.Nars.BytesDownloaded} NAR bytes downloaded"));
        });
        return command;
    }

    private static StorePath Parse(LazyStoreEngine engine, string argument)
    {
        var (path, inside) = StoreCommands.Parse(engine, argument);
        return inside.Count == 0 ? path : throw new CliException($"register: '{argument}' is inside a store path; name the store path itself");
    }
}
