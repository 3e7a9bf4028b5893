using LazyStore.Nix;
using LazyStore.Store.Substituters;

namespace LazyStore.Store.Registration;

/// <summary>A derivation output that no cache has, so Nix builds it; <see cref="Reason"/> says why it is not substituted.</summary>
/// <param name="Path">The output's path, or null when it is known only after building (floating content-addressed, deferred).</param>
public sealed record OutputToBuild(StorePath Derivation, string Output, StorePath? Path, string Reason);

/// <summary>
/// What realising some targets takes: the paths to register lazily (found in the caches; nothing already
/// valid) and the derivation outputs Nix has to build.
/// </summary>
public sealed record RealisationPlan(IReadOnlyList<SubstitutablePath> Paths, IReadOnlyList<OutputToBuild> ToBuild);

/// <summary>Realising cannot start: a derivation that is not in the store, or an output it does not have.</summary>
public sealed class RealisationException(string message) : IOException(message);

/// <summary>
/// Plans <c>lazystore realise</c>: which store paths to register so that Nix finds the targets valid, or can
/// build them from valid inputs, without downloading a NAR.
/// </summary>
/// <remarks>
/// A store path target is wanted with its closure. For a derivation target, each output whose path a
/// trusted cache has is wanted with its closure; an output no cache has is left for Nix to build, so its
/// inputs are wanted instead: the requested outputs of its input derivations (planned the same way, each
/// input <c>.drv</c> read from the store directory) and the closures of its input sources. Paths valid in
/// Nix's database already are neither looked up nor followed. Derivations are planned one breadth-first
/// round after another; the closures wanted are then walked with <c>parallelism</c> lookups in flight
/// (<see cref="SubstituterSet.QueryClosureAsync"/>), Nix asked about discovered paths in batches.
/// </remarks>
/// <param name="derivationDirectory">Where the store's <c>.drv</c> files are on disk (ROOT/nix/store for a chroot store).</param>
/// <param name="valid">Which of some paths Nix's database holds as valid (<see cref="NixValidity.QueryValidAsync"/>).</param>
public sealed class Realisation(
    SubstituterSet substituters,
    string derivationDirectory,
    Func<IReadOnlyCollection<StorePath>, CancellationToken, Task<IReadOnlySet<StorePath>>> valid,
    int parallelism)
{
    private StoreDirectory StoreDirectory => substituters.StoreDirectory;

    /// <summary>
    /// Plans the realisation of <paramref name="targets"/> (derivations: every output). Throws
    /// <see cref="PathNotSubstitutableException"/> naming every path that is needed but neither valid nor in a
    /// cache, <see cref="RealisationException"/> for a derivation missing from the store, and
    /// <see cref="DerivationFormatException"/> for a malformed one.
    /// </summary>
    public async Task<RealisationPlan> PlanAsync(IReadOnlyList<StorePath> targets, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(parallelism, 1);
        var wanted = new HashSet<StorePath>(targets.Where(t => !Derivation.IsDerivation(t)));
        var toBuild = new List<OutputToBuild>();
        var planned = new Dictionary<StorePath, HashSet<string>>();
        var derivations = new Dictionary<StorePath, Derivation>();
        // A null output list asks for every output the derivation has.
        var frontier = targets.Where(Derivation.IsDerivation).Distinct().ToDictionary(d => d, _ => (HashSet<string>?)null);
        while (frontier.Count > 0)
        {
            var outputs = new List<(StorePath Derivation, string Output, DerivationOutput Value)>();
            foreach (var (path, requested) in frontier)
            {
                if (!derivations.TryGetValue(path, out var derivation))
                    derivations[path] = derivation = await ReadDerivationAsync(path, cancellationToken).ConfigureAwait(false);
                var done = planned.TryGetValue(path, out var seen) ? seen : planned[path] = new HashSet<string>(StringComparer.Ordinal);
                foreach (var name in requested ?? derivation.Outputs.Keys.ToHashSet(StringComparer.Ordinal))
                {
                    if (!derivation.Outputs.TryGetValue(name, out var output))
                        throw new RealisationException($"{StoreDirectory.Print(path)} has no output '{name}' (it has: {string.Join(", ", derivation.Outputs.Keys)})");
                    if (done.Add(name))
                        outputs.Add((path, name, output));
                }
            }
            var known = outputs.Where(o => o.Value.Path is not null).Select(o => o.Value.Path!).Distinct().ToList();
            var present = known.Count == 0 ? new HashSet<StorePath>() : await valid(known, cancellationToken).ConfigureAwait(false);
            var cached = await substituters.QueryPathInfosAsync(known.Where(p => !present.Contains(p)), parallelism, cancellationToken).ConfigureAwait(false);

            var next = new Dictionary<StorePath, HashSet<string>?>();
            foreach (var (path, name, output) in outputs)
            {
                string reason;
                if (output.Path is not { } outputPath)
                {
                    reason = "its path is known only once it is built (a floating content-addressed or deferred output)";
                }
                else if (present.Contains(outputPath))
                {
                    continue;
                }
                else if (cached[outputPath] is { Found: not null })
                {
                    wanted.Add(outputPath);
                    continue;
                }
                else
                {
                    reason = "no cache has it (" + string.Join("; ", cached[outputPath].Missing!.Answers) + ")";
                }
                toBuild.Add(new OutputToBuild(path, name, output.Path, reason));
                var derivation = derivations[path];
                wanted.UnionWith(derivation.InputSrcs);
                foreach (var (input, names) in derivation.InputDrvs)
                {
                    if (!next.TryGetValue(input, out var merged))
                        next[input] = merged = new HashSet<string>(StringComparer.Ordinal);
                    merged!.UnionWith(names);
                }
            }
            frontier = next;
        }
        var paths = await substituters.QueryClosureAsync(wanted.Order(), parallelism, cancellationToken, present: valid).ConfigureAwait(false);
        return new RealisationPlan(paths, toBuild);
    }

    private async Task<Derivation> ReadDerivationAsync(StorePath path, CancellationToken cancellationToken)
    {
        var file = Path.Combine(derivationDirectory, path.BaseName);
        string text;
        try
        {
            text = await File.ReadAllTextAsync(file, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new RealisationException($"{StoreDirectory.Print(path)} is not in the store ({file} does not exist; instantiate it there first)");
        }
        return Derivation.Parse(text, StoreDirectory, file);
    }
}
