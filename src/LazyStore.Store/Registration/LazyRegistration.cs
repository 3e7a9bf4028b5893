using LazyStore.Nix;
using LazyStore.Store.Catalog;
using LazyStore.Store.Substituters;

namespace LazyStore.Store.Registration;

/// <summary>
/// What <see cref="LazyRegistration.RegisterAsync"/> registered, why Nix lacks the caches' signatures of it (if it
/// does), and how rows left pending by interrupted runs were settled first (null when there were none).
/// </summary>
public sealed record NixRegistration(RegisteredPaths Registered, string? SignaturesMissingBecause, PendingSettlement? Settled = null);

/// <summary>Rows an interrupted run had left pending, settled by asking Nix: those it holds are registered, the others taken back.</summary>
public sealed record PendingSettlement(IReadOnlyList<StorePath> Confirmed, IReadOnlyList<StorePath> TakenBack);

/// <summary>A registration was interrupted (SIGINT, SIGTERM); the message says what the catalog and Nix were left with.</summary>
public sealed class RegistrationInterruptedException(string message, Exception inner) : OperationCanceledException(message, inner);

/// <summary>
/// Makes paths found in the caches lazy paths for both readers of the store, in two phases
/// (<see cref="PendingRegistration"/>): first the catalog holds them as pending, so a LazyStore mount serves
/// them and Nix finds them in the store directory; then Nix's database takes them, and only then are they
/// registered in the catalog. If Nix refuses, or the run is interrupted, the run's pending rows are taken back
/// (when nix-store itself was interrupted, Nix is asked which it took). Rows of a run that was killed stay
/// pending until the next run on the same Nix store settles them the same way. Last, the caches' signatures
/// are copied into Nix's database from the narinfos already verified (no cache is asked again); without them
/// the paths are valid but untrusted.
/// </summary>
public static class LazyRegistration
{
    public static async Task<NixRegistration> RegisterAsync(LazyStoreEngine engine, string? storeRoot, IReadOnlyList<SubstitutablePath> found,
        CancellationToken cancellationToken, string nixStore = "nix-store")
    {
        cancellationToken.ThrowIfCancellationRequested();
        // Written while the paths are registered: creating a file a path is slow on a busy file system.
        await using var narinfos = TemporaryNarInfoCache.Start(found.Select(f => f.Info), engine.StoreDirectory);
        var pending = PendingRegistration.ForThisProcess(storeRoot);
        var settled = await SettleAbandonedAsync(engine, storeRoot, pending.Store, nixStore, cancellationToken).ConfigureAwait(false);

        RegisteredPaths registered;
        try
        {
            registered = await engine.RegisterAsync(found, pending, cancellationToken).ConfigureAwait(false);
            cancellationToken.ThrowIfCancellationRequested();
        }
        catch (Exception e)
        {
            // Whatever stopped the run (an interruption, the state directory failing), Nix never heard of the paths.
            engine.Catalog.TakeBackRegistration(pending.Owner);
            if (e is OperationCanceledException && cancellationToken.IsCancellationRequested)
                throw new RegistrationInterruptedException("interrupted before Nix was asked: nothing registered, the catalog's pending rows were taken back", e);
            throw;
        }

        var infos = registered.Paths.Select(p => p.Info).ToList();
        try
        {
            await NixValidity.RegisterAsync(storeRoot, infos, engine.StoreDirectory, cancellationToken, nixStore).ConfigureAwait(false);
        }
        catch (NixRegistrationException)
        {
            // --load-db registers all paths in one transaction: refused means none.
            engine.Catalog.TakeBackRegistration(pending.Owner);
            throw;
        }
        catch (OperationCanceledException e) when (cancellationToken.IsCancellationRequested)
        {
            throw new RegistrationInterruptedException(await SettleInterruptedAsync(engine, storeRoot, pending, infos, nixStore).ConfigureAwait(false), e);
        }
        engine.Catalog.ConfirmRegistration(registered.Paths.Select(p => p.Path.HashPart));

        try
        {
            await NixValidity.CopySignaturesAsync(storeRoot, narinfos, infos, engine.StoreDirectory, cancellationToken).ConfigureAwait(false);
            return new NixRegistration(registered, null, settled);
        }
        catch (NixRegistrationException e)
        {
            return new NixRegistration(registered, e.Message, settled);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            return new NixRegistration(registered, "interrupted while copying them", settled);
        }
    }

    /// <summary>
    /// Settles rows left pending for the Nix store <paramref name="store"/> by runs that have ended without
    /// finishing (killed): Nix is asked which of the paths it holds; those are registered, the others taken back.
    /// </summary>
    private static async Task<PendingSettlement?> SettleAbandonedAsync(LazyStoreEngine engine, string? storeRoot, string store, string nixStore,
        CancellationToken cancellationToken)
    {
        var abandoned = engine.Catalog.ListPendingRegistrations(store).Where(p => PendingRegistration.IsOwnerGone(p.Owner)).ToList();
        if (abandoned.Count == 0)
            return null;
        var valid = await NixValidity.QueryValidAsync(storeRoot, abandoned.Select(p => p.Path).ToList(), engine.StoreDirectory, cancellationToken, nixStore)
            .ConfigureAwait(false);
        var confirmed = abandoned.Where(p => valid.Contains(p.Path)).Select(p => p.Path).ToList();
        engine.Catalog.ConfirmRegistration(confirmed.Select(p => p.HashPart));
        var takenBack = new List<StorePath>();
        foreach (var run in abandoned.Where(p => !valid.Contains(p.Path)).GroupBy(p => p.Owner, StringComparer.Ordinal))
        {
            var hashParts = engine.Catalog.TakeBackRegistration(run.Key, run.Select(p => p.Path.HashPart)).ToHashSet(StringComparer.Ordinal);
            takenBack.AddRange(run.Select(p => p.Path).Where(p => hashParts.Contains(p.HashPart)));
        }
        return new PendingSettlement(confirmed, takenBack);
    }

    /// <summary>
    /// nix-store was stopped while it registered the paths: its transaction either happened or not, so Nix is
    /// asked (not interruptible, and quick). Returns what the catalog and Nix were left with.
    /// </summary>
    private static async Task<string> SettleInterruptedAsync(LazyStoreEngine engine, string? storeRoot, PendingRegistration pending, IReadOnlyList<NarInfo> infos,
        string nixStore)
    {
        IReadOnlySet<StorePath> valid;
        try
        {
            valid = await NixValidity.QueryValidAsync(storeRoot, infos.Select(i => i.StorePath).ToList(), engine.StoreDirectory, CancellationToken.None, nixStore)
                .ConfigureAwait(false);
        }
        catch (NixRegistrationException e)
        {
            return $"interrupted while nix-store registered the paths, and Nix cannot say which it took ({e.Message}): they stay pending until the next register or realise on this store settles them";
        }
        if (valid.Count == 0)
        {
            engine.Catalog.TakeBackRegistration(pending.Owner);
            return "interrupted while nix-store registered the paths, before it took them: nothing registered, the catalog's pending rows were taken back";
        }
        engine.Catalog.ConfirmRegistration(valid.Select(p => p.HashPart));
        engine.Catalog.TakeBackRegistration(pending.Owner);
        return $"interrupted after Nix had taken the paths: {valid.Count} registered, without the caches' signatures";
    }
}
