using Microsoft.Data.Sqlite;

namespace LazyStore.Store.Catalog;

/// <summary>
/// The schema of <c>index.sqlite</c>, versioned with <c>PRAGMA user_version</c>. Each migration takes the
/// database from version N-1 to N inside one transaction; a database newer than this build is refused.
/// </summary>
internal static class CatalogSchema
{
    private static readonly string[] Migrations =
    [
        // 1: the first schema.
        """
        -- One row per binary cache and store-path hash asked about: the narinfo text as received and
        -- verified, or NULL when the cache did not have it. Expires by the narinfo-cache TTLs.
        CREATE TABLE narinfo_lookups (
            cache TEXT NOT NULL,
            hash_part TEXT NOT NULL,
            narinfo TEXT,
            looked_up_at INTEGER NOT NULL,
            PRIMARY KEY (cache, hash_part)
        ) WITHOUT ROWID;

        -- nix-cache-info of each cache, so priorities need not be fetched on every start.
        CREATE TABLE caches (
            url TEXT PRIMARY KEY,
            store_dir TEXT,
            priority INTEGER,
            want_mass_query INTEGER,
            fetched_at INTEGER NOT NULL
        ) WITHOUT ROWID;

        -- One row per NAR (keyed by NarHash, so store paths with equal contents share it).
        -- tree: 0 nothing known, 1 from a listing, 2 from the NAR itself (entries carry payload offsets).
        -- blob_size is set once the verified blob is in nars/.
        CREATE TABLE nars (
            id INTEGER PRIMARY KEY,
            nar_hash TEXT NOT NULL UNIQUE,
            nar_size INTEGER NOT NULL,
            tree INTEGER NOT NULL DEFAULT 0,
            blob_size INTEGER,
            downloaded_bytes INTEGER NOT NULL DEFAULT 0,
            fetched_at INTEGER,
            last_access INTEGER
        );

        -- Store paths LazyStore knows, with the verified narinfo they were accepted with.
        -- registered: served by the mount (the catalog), as opposed to merely looked up.
        CREATE TABLE store_paths (
            hash_part TEXT PRIMARY KEY,
            base_name TEXT NOT NULL,
            cache TEXT NOT NULL,
            narinfo TEXT NOT NULL,
            nar_id INTEGER NOT NULL REFERENCES nars(id),
            registered INTEGER NOT NULL DEFAULT 0,
            added_at INTEGER NOT NULL
        ) WITHOUT ROWID;
        CREATE INDEX store_paths_by_nar ON store_paths(nar_id);

        -- The tree of a NAR. id numbers entries in NAR order (root 0), which is name order within a
        -- directory, so ORDER BY id lists a directory as Nix sorts it.
        CREATE TABLE entries (
            nar_id INTEGER NOT NULL REFERENCES nars(id) ON DELETE CASCADE,
            id INTEGER NOT NULL,
            parent INTEGER,
            name TEXT NOT NULL,
            type INTEGER NOT NULL,
            executable INTEGER NOT NULL,
            size INTEGER NOT NULL,
            payload_offset INTEGER,
            target TEXT,
            PRIMARY KEY (nar_id, id)
        ) WITHOUT ROWID;
        CREATE UNIQUE INDEX entries_by_name ON entries(nar_id, parent, name);

        -- Why fetches failed, newest last, for `lazystore info` and the logs.
        CREATE TABLE fetch_failures (
            id INTEGER PRIMARY KEY,
            nar_hash TEXT NOT NULL,
            cache TEXT NOT NULL,
            reason TEXT NOT NULL,
            failed_at INTEGER NOT NULL
        );
        CREATE INDEX fetch_failures_by_nar ON fetch_failures(nar_hash);
        """,

        // 2: when a cache last had no listing for a NAR, so tree lookups do not ask again and again.
        """
        ALTER TABLE nars ADD COLUMN listing_missing_at INTEGER;
        """,

        // 3: the blob's identity when it was committed, so a blob changed behind the catalog's back is not served.
        // A rename or a write changes it; blobs committed before have none and are verified again at next use.
        """
        ALTER TABLE nars ADD COLUMN blob_inode INTEGER;
        ALTER TABLE nars ADD COLUMN blob_ctime_ns INTEGER;
        """,

        // 4: registration in two phases (PendingRegistration). store_paths.registered: 0 no, 1 yes (Nix accepted
        // it), 2 pending: written by the register run pending_owner ("pid:start time") for the Nix store
        // pending_store ('' for the machine's), which has not heard back from Nix yet.
        """
        ALTER TABLE store_paths ADD COLUMN pending_owner TEXT;
        ALTER TABLE store_paths ADD COLUMN pending_store TEXT;
        """,
    ];

    public static int CurrentVersion => Migrations.Length;

    public static void Migrate(SqliteConnection connection, string databasePath)
    {
        // BEGIN IMMEDIATE takes the write lock first, so two processes starting at once migrate only once.
        using var transaction = connection.BeginTransaction(deferred: false);
        var version = Convert.ToInt32(Scalar(connection, transaction, "PRAGMA user_version"), System.Globalization.CultureInfo.InvariantCulture);
        if (version > CurrentVersion)
            throw new IOException($"{databasePath}: schema version {version} is newer than this LazyStore understands ({CurrentVersion}); upgrade LazyStore or use another --state-dir");
        for (var next = version; next < CurrentVersion; next++)
        {
            using var command = connection.CreateCommand();
            command.Transaction = transaction;
            command.CommandText = Migrations[next] + $"\nPRAGMA user_version = {next + 1};";
            command.ExecuteNonQuery();
        }
        transaction.Commit();
    }

    private static object? Scalar(SqliteConnection connection, SqliteTransaction transaction, string sql)
    {
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = sql;
        return command.ExecuteScalar();
    }
}
