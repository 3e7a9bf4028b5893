using System.Globalization;
using LazyStore.Nix.Compression;
using LazyStore.Store.Catalog;
using LazyStore.Tests.Support;
using Microsoft.Data.Sqlite;

namespace LazyStore.Tests.Store;

public class StateDirectoryTests(OwnCaches caches) : IClassFixture<OwnCaches>
{
    [Fact]
    public void Opening_creates_the_layout_in_wal_mode_at_the_current_schema_version()
    {
        using var dir = new TempDir();
        var state = StateDirectory.Open(dir.Sub("state"));
        Assert.True(File.Exists(state.DatabasePath));
        Assert.True(Directory.Exists(state.NarsPath));
        using var connection = state.OpenConnection();
        Assert.Equal("wal", Scalar(connection, "PRAGMA journal_mode"));
        Assert.Equal(CatalogSchema.CurrentVersion.ToString(CultureInfo.InvariantCulture), Scalar(connection, "PRAGMA user_version"));
        // Opening again migrates nothing and keeps the data.
        new StoreCatalog(state).PutNarInfoLookup("file:///c", "x", null);
        var again = StateDirectory.Open(dir.Sub("state"));
        Assert.NotNull(new StoreCatalog(again).GetNarInfoLookup("file:///c", "x"));
    }

    [Fact]
    public void A_version_1_database_is_migrated_keeping_its_rows()
    {
        using var dir = new TempDir();
        var state = StateDirectory.Open(dir.Sub("state"));
        new StoreCatalog(state).PutNarInfoLookup("file:///c", "x", "kept");
        using (var connection = state.OpenConnection())
            Scalar(connection, "ALTER TABLE nars DROP COLUMN listing_missing_at; ALTER TABLE nars DROP COLUMN blob_inode; ALTER TABLE nars DROP COLUMN blob_ctime_ns; "
                + "ALTER TABLE store_paths DROP COLUMN pending_owner; ALTER TABLE store_paths DROP COLUMN pending_store; PRAGMA user_version = 1;");
        SqliteConnection.ClearAllPools();
        var migrated = StateDirectory.Open(dir.Sub("state"));
        using (var connection = migrated.OpenConnection())
        {
            Assert.Equal(CatalogSchema.CurrentVersion.ToString(CultureInfo.InvariantCulture), Scalar(connection, "PRAGMA user_version"));
            Assert.Equal("3", Scalar(connection, "SELECT count(*) FROM pragma_table_info('nars') WHERE name IN ('listing_missing_at', 'blob_inode', 'blob_ctime_ns')"));
            Assert.Equal("2", Scalar(connection, "SELECT count(*) FROM pragma_table_info('store_paths') WHERE name IN ('pending_owner', 'pending_store')"));
        }
        Assert.Equal("kept", new StoreCatalog(migrated).GetNarInfoLookup("file:///c", "x")!.NarInfo);
    }

    [Fact]
    public void A_database_from_a_newer_lazystore_is_refused()
    {
        using var dir = new TempDir();
        var state = StateDirectory.Open(dir.Sub("state"));
        using (var connection = state.OpenConnection())
            Scalar(connection, $"PRAGMA user_version = {CatalogSchema.CurrentVersion + 1}");
        SqliteConnection.ClearAllPools();
        var e = Assert.Throws<IOException>(() => StateDirectory.Open(dir.Sub("state")));
        Assert.Contains("newer than this LazyStore understands", e.Message);
    }

    [Fact]
    public void Temporary_files_of_dead_processes_are_removed_at_start_and_live_ones_kept()
    {
        using var dir = new TempDir();
        var state = StateDirectory.Open(dir.Sub("state"));
        var dead = Path.Combine(state.TempPath, "999999999-abc.partial");
        var live = state.NewTemporaryPath();
        var stray = Path.Combine(state.TempPath, "no-pid");
        File.WriteAllText(dead, "x");
        File.WriteAllText(live, "x");
        File.WriteAllText(stray, "x");
        StateDirectory.Open(dir.Sub("state"));
        Assert.False(File.Exists(dead));
        Assert.False(File.Exists(stray));
        Assert.True(File.Exists(live));
    }

    [Fact]
    public async Task A_verified_blob_left_uncommitted_is_indexed_from_disk_without_downloading()
    {
        var info = caches.Infos(CompressionMethod.Xz)[0];
        string blob;
        using (var first = new StoreHarness([caches.CacheDir(CompressionMethod.Xz)], [caches.Key.PublicKey]))
        {
            await first.FetchAsync(info.StorePath.ToFullPath());
            blob = Assert.Single(Directory.EnumerateFiles(first.State.NarsPath));
            using var second = new StoreHarness([caches.CacheDir(CompressionMethod.Xz)], [caches.Key.PublicKey]);
            File.Copy(blob, Path.Combine(second.State.NarsPath, Path.GetFileName(blob)));
            var nar = await second.FetchAsync(info.StorePath.ToFullPath());
            Assert.Equal(0, second.Engine.Nars.DownloadsStarted);
            second.AssertTreeMatches(nar, caches.SourceTree);
        }
    }

    [Fact]
    public void An_engine_opened_where_a_closed_one_had_its_state_directory_removed_sees_the_new_catalog()
    {
        using var dir = new TempDir();
        var options = new LazyStore.Store.LazyStoreOptions { StateDirectory = dir.Sub("state"), Substituters = new LazyStore.Store.Configuration.SubstituterSettings { Substituters = [], TrustedPublicKeys = [] } };
        using (var first = LazyStore.Store.LazyStoreEngine.Open(options))
            first.Catalog.PutNarInfoLookup("file:///c", "x", null);
        Directory.Delete(options.StateDirectory, recursive: true);
        // A pooled connection kept open past Dispose would still read the removed database file.
        using var second = LazyStore.Store.LazyStoreEngine.Open(options);
        Assert.Null(second.Catalog.GetNarInfoLookup("file:///c", "x"));
    }

    [Fact]
    public async Task Two_engines_share_one_state_directory()
    {
        var info = caches.Infos(CompressionMethod.Zstd)[0];
        using var a = new StoreHarness([caches.CacheDir(CompressionMethod.Zstd)], [caches.Key.PublicKey]);
        var stateDir = a.State.Path;
        using var b = OpenSecond(stateDir);
        await a.FetchAsync(info.StorePath.ToFullPath());
        var lazy = await b.GetPathAsync(info.StorePath, register: false, CancellationToken.None);
        Assert.True(lazy.Nar.IsFetched);
        await b.EnsureFetchedAsync(lazy, CancellationToken.None);
        Assert.Equal(0, b.Nars.DownloadsStarted);

        LazyStore.Store.LazyStoreEngine OpenSecond(string path) => LazyStore.Store.LazyStoreEngine.Open(new LazyStore.Store.LazyStoreOptions
        {
            StateDirectory = path,
            Substituters = a.Engine.Substituters.Settings,
            Transport = StoreHarness.FastTransport,
        });
    }

    private static string Scalar(SqliteConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        return Convert.ToString(command.ExecuteScalar(), CultureInfo.InvariantCulture) ?? "";
    }
}
