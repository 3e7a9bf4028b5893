using LazyStore.Store.Substituters;

namespace LazyStore.Store.Registration;

/// <summary>What <see cref="LazyRegistration.RegisterAsync"/> registered, and why Nix lacks the caches' signatures of it, if it does.</summary>
public sealed record NixRegistration(RegisteredPaths Registered, string? SignaturesMissingBecause);

/// <summary>
/// Makes paths found in the caches lazy paths for both readers of the store: first the catalog, from which
/// a LazyStore mount serves them, then Nix's database, which needs them to exist in the store directory
/// (the mount makes that true). If Nix refuses, the paths this registration added to the catalog are taken
/// back, so the mount does not keep serving paths Nix was never told of. Last, the caches' signatures are
/// copied into Nix's database; without them the paths are valid but untrusted.
/// </summary>
public static class LazyRegistration
{
    public static async Task<NixRegistration> RegisterAsync(LazyStoreEngine engine, string? storeRoot, IReadOnlyList<SubstitutablePath> found, int parallelism,
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
        try
        {
            await NixValidity.CopySignaturesAsync(storeRoot, registered.Paths.Select(p => (p.CacheUrl, p.Path)).ToList(), engine.StoreDirectory, cancellationToken)
                .ConfigureAwait(false);
            return new NixRegistration(registered, null);
        }
        catch (NixRegistrationException e)
        {
            return new NixRegistration(registered, e.Message);
        }
    }
}
