using LazyStore.Nix;
using LazyStore.Nix.IO;
using LazyStore.Store.Catalog;

namespace LazyStore.Store.Fetch;

/// <summary>What hashing one stored NAR blob again found; <see cref="Problem"/> is null when it is intact.</summary>
public sealed record NarVerification(NarRecord Nar, NixHash Expected, NixHash? Actual, long? ActualSize, string? Problem)
{
    public bool IsIntact => Problem is null;
}

/// <summary>
/// Checks stored blobs as <c>nix store verify</c> checks a path's contents: the whole blob hashed again with
/// the NarHash algorithm and counted, against the NarHash and NarSize of the narinfo it was verified with.
/// </summary>
public static class NarVerifier
{
    public static NarVerification Verify(StateDirectory state, NarRecord nar)
    {
        var expected = NixHash.Parse(nar.NarHash);
        var path = state.BlobPath(NarFetcher.BlobKey(expected));
        try
        {
            using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20, FileOptions.SequentialScan);
            using var hashing = new HashingReadStream(file, expected.Algorithm);
            hashing.Drain();
            var actual = hashing.FinishHash();
            var problems = new List<string>(2);
            if (hashing.BytesRead != nar.NarSize)
                problems.Add($"NarSize mismatch: expected {nar.NarSize} bytes, the blob has {hashing.BytesRead}");
            if (actual != expected)
                problems.Add($"NarHash mismatch: expected hash '{expected}', got '{actual}'");
            return new NarVerification(nar, expected, actual, hashing.BytesRead, problems.Count == 0 ? null : string.Join("; ", problems));
        }
        catch (FileNotFoundException)
        {
            return new NarVerification(nar, expected, null, null, $"its blob {path} is missing");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return new NarVerification(nar, expected, null, null, $"its blob cannot be read: {e.Message}");
        }
    }

    /// <summary>
    /// Repairs a NAR that failed verification: its index rows go first (so nothing is told the blob is there),
    /// then the blob; the store paths that have it stay, and the next open fetches and verifies it again.
    /// </summary>
    public static void Discard(StoreCatalog catalog, NarRecord nar)
    {
        catalog.ForgetNar(nar.Id);
        var path = catalog.State.BlobPath(NarFetcher.BlobKey(NixHash.Parse(nar.NarHash)));
        try
        {
            File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw StateStorageException.From(catalog.State, path, "cannot delete the corrupt NAR blob", e);
        }
    }
}
