using System.CommandLine;
using System.Globalization;
using System.Runtime.InteropServices;
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
        var storeRoot = StoreRootOption();
        var closure = new Option<bool>("--closure") { Description = "Also register everything the paths refer to, transitively" };
        var jobs = JobsOption();
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
            WarnWithoutMount(console, engine, root);
            var roots = result.GetValue(paths)!.Select(p => ParseStorePath(engine, p, "register")).ToList();
            var parallelism = Parallelism(result, jobs, engine);
            IReadOnlyList<SubstitutablePath> found;
            try
            {
                found = engine.Substituters.QueryClosureAsync(roots, parallelism, CancellationToken.None, followReferences: result.GetValue(closure))
                    .GetAwaiter().GetResult();
            }
            catch (PathNotSubstitutableException e)
            {
                throw new CliException("register: nothing registered: " + e.Message, e);
            }
            var registered = Register(console, engine, root, found, "register");
            console.Error.WriteLine(Summary(engine, registered));
        });
        return command;
    }

    internal static Option<string?> StoreRootOption() => new("--store-root")
    {
        Description = "The root of a chroot store (its store directory is ROOT/nix/store), as nix-store --store ROOT; default: the machine's store",
    };

    internal static Option<int?> JobsOption() => new("--jobs", "-j")
    {
        Description = "Narinfo lookups at a time (default: nix.conf's http-connections, 25)",
    };

    /// <summary>How many lookups at a time: <c>-j</c>, else what nix.conf's <c>http-connections</c> allows.</summary>
    internal static int Parallelism(ParseResult result, Option<int?> jobs, LazyStoreEngine engine) =>
        result.GetValue(jobs) is { } given ? Math.Max(1, given) : engine.Substituters.Settings.LookupParallelism;

    /// <summary>Nix finds lazy paths only through a mount; registering without one is allowed (it may start later) but said.</summary>
    internal static void WarnWithoutMount(CliConsole console, LazyStoreEngine engine, string? storeRoot)
    {
        var physical = NixValidity.PhysicalStoreDirectory(storeRoot, engine.StoreDirectory);
        if (!StoreMount.IsMountedAt(physical))
            console.Error.WriteLine($"warning: no LazyStore mount serves {physical}; Nix will not find lazy paths there (start `lazystore mount {physical}` first)");
    }

    /// <summary>
    /// Registers <paramref name="found"/> with the catalog and Nix, in two phases (the catalog's pending rows are
    /// taken back if Nix refuses or SIGINT/SIGTERM interrupts; missing signatures are a warning), then prints one
    /// line per path on stdout: its full path and NarSize.
    /// </summary>
    internal static RegisteredPaths Register(CliConsole console, LazyStoreEngine engine, string? storeRoot, IReadOnlyList<SubstitutablePath> found,
        string commandName)
    {
        NixRegistration registration;
        using (var interrupted = new CancellationTokenSource())
        using (Interrupt(PosixSignal.SIGINT, interrupted))
        using (Interrupt(PosixSignal.SIGTERM, interrupted))
        {
            try
            {
                registration = LazyRegistration.RegisterAsync(engine, storeRoot, found, interrupted.Token).GetAwaiter().GetResult();
            }
            catch (NixRegistrationException e)
            {
                throw new CliException($"{commandName}: {e.Message}", e);
            }
            catch (OperationCanceledException e) when (interrupted.IsCancellationRequested)
            {
                var what = e is RegistrationInterruptedException ? e.Message : "interrupted before anything was registered";
                throw new CliException($"{commandName}: {what}", e);
            }
        }
        if (registration.Settled is { } settled)
        {
            console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"note: an interrupted register had left {settled.Confirmed.Count + settled.TakenBack.Count} paths pending; Nix had {settled.Confirmed.Count} of them (now registered), the other {settled.TakenBack.Count} were taken back"));
        }
        if (registration.SignaturesMissingBecause is { } why)
            console.Error.WriteLine($"warning: the caches' signatures are not in Nix's database, so `nix store verify` will call the paths untrusted: {why}");
        var registered = registration.Registered;
        foreach (var path in registered.Paths.OrderBy(p => p.Path))
            console.Out.Write(string.Create(CultureInfo.InvariantCulture, $"{path.Path.ToFullPath(engine.StoreDirectory)}\t{path.Info.NarSize}\n"));
        return registered;
    }

    /// <summary>Turns <paramref name="signal"/> into a cancellation the registration answers by taking its pending rows back.</summary>
    private static PosixSignalRegistration Interrupt(PosixSignal signal, CancellationTokenSource interrupted) =>
        PosixSignalRegistration.Create(signal, context =>
        {
            context.Cancel = true;
            interrupted.Cancel();
        });

    /// <summary>The closing line on stderr: paths registered, how many were new, NAR bytes advertised and really downloaded.</summary>
    internal static string Summary(LazyStoreEngine engine, RegisteredPaths registered) => string.Create(CultureInfo.InvariantCulture,
        $"registered {registered.Paths.Count} paths ({registered.Added.Count} new), {registered.Paths.Sum(p => (long)p.Info.NarSize)} bytes of NAR advertised; {engine.Nars.BytesDownloaded} NAR bytes downloaded");

    /// <summary>A store path argument, full or a base name; a path inside a store path is refused.</summary>
    internal static StorePath ParseStorePath(LazyStoreEngine engine, string argument, string commandName)
    {
        var (path, inside) = StoreCommands.Parse(engine, argument);
        return inside.Count == 0 ? path : throw new CliException($"{commandName}: '{argument}' is inside a store path; name the store path itself");
    }
}
