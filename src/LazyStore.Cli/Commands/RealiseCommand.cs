using System.CommandLine;
using System.Globalization;
using LazyStore.Nix;
using LazyStore.Store.Registration;
using LazyStore.Store.Substituters;

namespace LazyStore.Cli.Commands;

/// <summary>
/// <c>lazystore realise</c>: makes derivation outputs and store paths valid in Nix's database from the caches
/// without downloading their NARs, and names the outputs Nix will have to build.
/// </summary>
internal static class RealiseCommand
{
    public static Command Create(CliConsole console)
    {
        var options = new StoreOptions();
        var targets = new Argument<string[]>("DRV-OR-STORE-PATH")
        {
            Description = "Derivations (.drv: every output) and store paths to realise",
            Arity = ArgumentArity.OneOrMore,
        };
        var storeRoot = RegisterCommand.StoreRootOption();
        var jobs = RegisterCommand.JobsOption();
        var command = new Command("realise",
            "Register what the caches have of derivations' outputs (or of their inputs, for outputs no cache has) and of store paths, "
            + "with their closures, as valid in Nix's database without downloading NARs; a LazyStore mount serves them")
        {
            targets, storeRoot, jobs,
        };
        options.AddTo(command);
        command.SetAction(result =>
        {
            using var engine = options.OpenEngine(result);
            var root = result.GetValue(storeRoot);
            RegisterCommand.WarnWithoutMount(console, engine, root);
            var wanted = result.GetValue(targets)!.Select(p => RegisterCommand.ParseStorePath(engine, p, "realise")).Distinct().ToList();
            var parallelism = RegisterCommand.Parallelism(result, jobs, engine);
            var realisation = new Realisation(engine.Substituters, NixValidity.PhysicalStoreDirectory(root, engine.StoreDirectory),
                (paths, ct) => NixValidity.QueryValidAsync(root, paths, engine.StoreDirectory, ct), parallelism);
            RealisationPlan plan;
            try
            {
                plan = realisation.PlanAsync(wanted, CancellationToken.None).GetAwaiter().GetResult();
            }
            catch (Exception e) when (e is PathNotSubstitutableException or RealisationException or DerivationFormatException or NixRegistrationException)
            {
                throw new CliException("realise: nothing registered: " + e.Message, e);
            }
            var registered = RegisterCommand.Register(console, engine, root, plan.Paths, "realise");
            foreach (var output in plan.ToBuild)
            {
                var path = output.Path is { } p ? " " + p.ToFullPath(engine.StoreDirectory) : "";
                console.Error.WriteLine($"to build by Nix: {output.Derivation.ToFullPath(engine.StoreDirectory)}!{output.Output}{path}: {output.Reason}");
            }
            console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"realised {wanted.Count} derivations/paths: {RegisterCommand.Summary(engine, registered)}"));
        });
        return command;
    }
}
