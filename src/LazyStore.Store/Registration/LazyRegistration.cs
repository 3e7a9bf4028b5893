using LazyStore.Store.Substituters;

namespace LazyStore.Store.Registration;

/// <summary>
/// Makes paths found in the caches lazy paths for both readers of the store: first the catalog, from which
/// a LazyStore mount serves them, then Nix's database, which needs them to exist in the store directory
/// (the mount makes that true). If Nix refuses, the paths this registration added to the catalog are taken
/// back, so the mount does not keep serving paths Nix was never told of.
/// </summary>
public static class LazyRegistration
{
    public static async Task<RegisteredPaths> RegisterAsync(LazyStoreEngine engine, string? storeRoot, IReadOnlyList<SubstitutablePath> found, int parallelism,
        CancellationToken cancellationToken, string nixStore = "nix-store")
    {
        var registered = await engine.RegisterAsync(found, parallelism, cancellationToken).ConfigureAwait(false);
        try
        {
            await NixValidity.RegisterAsync(storeRoot, registered.Paths.Select(p => p.Info).ToList(), engine.StoreDirectory, cancellationToken, nixStore)
                .ConfigureAwait(false);
        }
        catch (NixRegistrationException)
        {
            engine.Catalog.Unregister(registered.Added.Select(p => p.HashPart));
            throw;
        }
        return registered;
    }
}
