using LazyStore.Nix;
using LazyStore.Nix.Compression;
using LazyStore.Store;
using LazyStore.Store.Catalog;
using LazyStore.Tests.Support;

namespace LazyStore.Tests.Cli;

/// <summary><c>lazystore verify [--repair]</c>: stored blobs hashed again against their NarHash and NarSize.</summary>
public sealed class VerifyCommandTests(OwnCaches caches) : IClassFixture<OwnCaches>, IDisposable
{
    private readonly StoreHarness _store = new([caches.CacheDir(CompressionMethod.Xz)], [caches.Key.PublicKey]);

    private NarInfo Tree => caches.Infos(CompressionMethod.Xz)[0];

    private NarInfo Large => caches.Infos(CompressionMethod.Xz)[1];

    private CliResult Run(params string[] args) =>
        CliRunner.Run([.. args, "--state-dir", _store.State.Path, "--substituter", "file://" + caches.CacheDir(CompressionMethod.Xz),
            "--trusted-public-key", caches.Key.PublicKey.ToString()]);

    private CliResult Verify(params string[] args) => CliRunner.Run(["verify", .. args, "--state-dir", _store.State.Path]);

    [Fact]
    public async Task A_clean_store_verifies_with_exit_0()
    {
        await _store.FetchAsync(Tree.StorePath.ToFullPath());
        await _store.FetchAsync(Large.StorePath.ToFullPath());

        var result = Verify();
        Assert.True(result.ExitCode == 0, result.Stderr);
        Assert.Empty(result.Stdout);
        Assert.StartsWith("verified 2 stored NARs (", result.Stderr, StringComparison.Ordinal);
        Assert.EndsWith("): all intact\n", result.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_byte_changed_in_a_stored_blob_is_reported_and_repair_makes_cat_serve_the_right_bytes_again()
    {
        await _store.Engine.GetPathAsync(Tree.StorePath, register: true, CancellationToken.None);
        var nar = await _store.FetchAsync(Tree.StorePath.ToFullPath());
        await _store.FetchAsync(Large.StorePath.ToFullPath());
        var plain = _store.Engine.Resolve(nar, ["plain.txt"])!;
        var blob = _store.State.BlobPath("sha256-" + Tree.NarHash.ToNix32());
        CacheDamage.FlipByte(blob, plain.PayloadOffset!.Value);
        var actual = NixHash.Compute(NixHashAlgorithm.Sha256, File.ReadAllBytes(blob));

        var found = Verify();
        Assert.Equal(1, found.ExitCode);
        Assert.Equal(
            $"{Tree.StorePath.ToFullPath()}: stored NAR is corrupt: NarHash mismatch: expected hash '{Tree.NarHash}', got '{actual}'\n",
            found.StdoutText);
        Assert.Equal("error: verify: 1 of 2 stored NARs are corrupt; `lazystore verify --repair` deletes them so they are fetched again\n", found.Stderr);
        Assert.True(File.Exists(blob));

        // Naming only the intact path checks only its NAR.
        var other = Verify(Large.StorePath.ToFullPath());
        Assert.True(other.ExitCode == 0, other.Stderr);
        Assert.StartsWith("verified 1 stored NAR (", other.Stderr, StringComparison.Ordinal);

        var repaired = Verify("--repair", Tree.StorePath.ToFullPath());
        Assert.Equal(1, repaired.ExitCode);
        Assert.EndsWith("; repaired: blob and index deleted, the next open fetches it again\n", repaired.StdoutText, StringComparison.Ordinal);
        Assert.False(File.Exists(blob));
        var record = _store.Engine.Catalog.GetNar(Tree.NarHash.ToString())!;
        Assert.False(record.IsFetched);
        Assert.Equal(NarTree.None, record.Tree);
        Assert.Empty(_store.Engine.Catalog.GetTree(record.Id));
        Assert.True(_store.Engine.Catalog.GetStorePath(Tree.StorePath.HashPart)!.Registered);

        var cat = Run("cat", Tree.StorePath.ToFullPath() + "/plain.txt");
        Assert.True(cat.ExitCode == 0, cat.Stderr);
        Assert.Equal("hello\n", cat.StdoutText);
        Assert.Equal(0, Verify().ExitCode);
    }

    [Fact]
    public void A_path_the_catalog_does_not_know_is_an_error()
    {
        var result = Verify(Tree.StorePath.ToFullPath());
        Assert.Equal(1, result.ExitCode);
        Assert.Equal($"error: verify: {Tree.StorePath.ToFullPath()} is not known to the catalog\n", result.Stderr);
    }

    public void Dispose() => _store.Dispose();
}
