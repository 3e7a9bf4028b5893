using LazyStore.Nix;
using LazyStore.Nix.Nar;
using Microsoft.Data.Sqlite;

namespace LazyStore.Store.Catalog;

/// <summary>
/// Queries and updates of <c>index.sqlite</c>. Every method opens a pooled connection of its own, so one
/// instance serves any number of threads; other processes see each commit at once (WAL).
/// </summary>
public sealed class StoreCatalog(StateDirectory state, TimeProvider? time = null)
{
    private readonly TimeProvider _time = time ?? TimeProvider.System;

    public StateDirectory State { get; } = state;

    public long Now => _time.GetUtcNow().ToUnixTimeSeconds();

    // ---- narinfo lookups (per cache, positive and negative) ----

    /// <summary>A remembered answer of <paramref name="cache"/> for a hash: the narinfo text, or null for "not there".</summary>
    public NarInfoLookup? GetNarInfoLookup(string cache, string hashPart) => Use(connection =>
    {
        using var command = Command(connection, "SELECT narinfo, looked_up_at FROM narinfo_lookups WHERE cache = $cache AND hash_part = $hash",
            ("$cache", cache), ("$hash", hashPart));
        using var reader = command.ExecuteReader();
        if (!reader.Read())
            return null;
        return new NarInfoLookup(reader.IsDBNull(0) ? null : reader.GetString(0), reader.GetInt64(1));
    });

    public void PutNarInfoLookup(string cache, string hashPart, string? narInfo) => PutNarInfoLookups([new(cache, hashPart, narInfo)]);

    /// <summary>Remembers caches' answers (a narinfo, or null for "not there"), all in one transaction.</summary>
    public void PutNarInfoLookups(IReadOnlyCollection<NarInfoAnswer> answers) => Use(connection =>
    {
        using var transaction = connection.BeginTransaction(deferred: false);
        using var command = Command(connection,
            "INSERT OR REPLACE INTO narinfo_lookups (cache, hash_part, narinfo, looked_up_at) VALUES ($cache, $hash, $narinfo, $now)",
            ("$cache", ""), ("$hash", ""), ("$narinfo", null), ("$now", Now));
        command.Transaction = transaction;
        foreach (var answer in answers)
        {
            command.Parameters["$cache"].Value = answer.Cache;
            command.Parameters["$hash"].Value = answer.HashPart;
            command.Parameters["$narinfo"].Value = (object?)answer.NarInfo ?? DBNull.Value;
            command.ExecuteNonQuery();
        }
        transaction.Commit();
    });

    // ---- nix-cache-info ----

    public CacheInfoRecord? GetCacheInfo(string cache) => Use(connection =>
    {
        using var command = Command(connection, "SELECT store_dir, priority, want_mass_query, fetched_at FROM caches WHERE url = $url", ("$url", cache));
        using var reader = command.ExecuteReader();
        if (!reader.Read())
            return null;
        return new CacheInfoRecord(
            reader.IsDBNull(0) ? null : reader.GetString(0),
            reader.IsDBNull(1) ? null : reader.GetInt32(1),
            reader.IsDBNull(2) ? null : reader.GetInt64(2) != 0,
            reader.GetInt64(3));
    });

    public void PutCacheInfo(string cache, NixCacheInfo info) => Use(connection =>
    {
        using var command = Command(connection,
            "INSERT OR REPLACE INTO caches (url, store_dir, priority, want_mass_query, fetched_at) VALUES ($url, $dir, $priority, $mass, $now)",
            ("$url", cache), ("$dir", info.StoreDirectory?.Path), ("$priority", info.Priority),
            ("$mass", info.WantMassQuery is { } m ? (m ? 1 : 0) : null), ("$now", Now));
        command.ExecuteNonQuery();
    });

    // ---- store paths and NARs ----

    /// <summary>
    /// Records a store path with the verified narinfo it was accepted with (and its NAR row). A path already
    /// known keeps its NAR state; <paramref name="register"/> only ever turns registration on.
    /// </summary>
    public KnownStorePath AddStorePath(NarInfo info, string cache, bool register) => AddStorePaths([(info, cache)], register)[0].Path;

    /// <summary>
    /// <see cref="AddStorePath"/> for many paths in one transaction; each comes back with whether it was
    /// registered before.
    /// </summary>
    public IReadOnlyList<(KnownStorePath Path, bool WasRegistered)> AddStorePaths(IReadOnlyList<(NarInfo Info, string Cache)> paths, bool register) =>
        AddStorePaths(paths, register ? Registration.Registered : Registration.None, pending: null);

    /// <summary>
    /// The first phase of a registration with Nix: records the paths as pending for <paramref name="pending"/> (the
    /// mount serves them; paths already registered stay so). Each comes back with whether it was registered before.
    /// </summary>
    public IReadOnlyList<(KnownStorePath Path, bool WasRegistered)> AddPendingStorePaths(IReadOnlyList<(NarInfo Info, string Cache)> paths, PendingRegistration pending) =>
        AddStorePaths(paths, Registration.Pending, pending);

    private IReadOnlyList<(KnownStorePath Path, bool WasRegistered)> AddStorePaths(IReadOnlyList<(NarInfo Info, string Cache)> paths, Registration registration,
        PendingRegistration? pending) => Use(connection =>
    {
        using var transaction = connection.BeginTransaction(deferred: false);
        using var nar = Command(connection, "INSERT INTO nars (nar_hash, nar_size) VALUES ($hash, $size) ON CONFLICT (nar_hash) DO NOTHING",
            ("$hash", ""), ("$size", 0L));
        using var path = Command(connection,
            """
            INSERT INTO store_paths (hash_part, base_name, cache, narinfo, nar_id, registered, added_at, pending_owner, pending_store)
            VALUES ($hash, $name, $cache, $narinfo, (SELECT id FROM nars WHERE nar_hash = $narHash), $registered, $now, $owner, $store)
            ON CONFLICT (hash_part) DO UPDATE SET
                registered = CASE WHEN excluded.registered = 0 OR registered = 1 THEN registered ELSE excluded.registered END,
                pending_owner = CASE WHEN excluded.registered = 0 OR registered = 1 THEN pending_owner ELSE excluded.pending_owner END,
                pending_store = CASE WHEN excluded.registered = 0 OR registered = 1 THEN pending_store ELSE excluded.pending_store END
            """,
            ("$hash", ""), ("$name", ""), ("$cache", ""), ("$narinfo", ""), ("$narHash", ""), ("$registered", (int)registration), ("$now", Now),
            ("$owner", pending?.Owner), ("$store", pending?.Store));
        nar.Transaction = path.Transaction = transaction;
        // Prepared once for the whole batch: parsing each statement anew cost more than running it.
        nar.Prepare();
        path.Prepare();
        using var query = new StorePathQuery(connection, transaction);
        var added = new List<(KnownStorePath, bool)>(paths.Count);
        foreach (var (info, cache) in paths)
        {
            var wasRegistered = query.Get(info.StorePath.HashPart) is { Registered: true, Pending: false };
            var narHash = info.NarHash.ToString();
            nar.Parameters["$hash"].Value = narHash;
            nar.Parameters["$size"].Value = (long)info.NarSize;
            nar.ExecuteNonQuery();
            path.Parameters["$hash"].Value = info.StorePath.HashPart;
            path.Parameters["$name"].Value = info.StorePath.BaseName;
            path.Parameters["$cache"].Value = cache;
            path.Parameters["$narinfo"].Value = info.ToString();
            path.Parameters["$narHash"].Value = narHash;
            path.ExecuteNonQuery();
            added.Add((query.Get(info.StorePath.HashPart)!, wasRegistered));
        }
        transaction.Commit();
        return added;
    });

    public KnownStorePath? GetStorePath(string hashPart) => Use(connection =>
    {
        return GetStorePath(connection, hashPart);
    });

    /// <summary>The second phase of a registration: Nix accepted these paths, so those pending (for any run) are registered.</summary>
    public void ConfirmRegistration(IEnumerable<string> hashParts) => Use(connection =>
    {
        using var transaction = connection.BeginTransaction(deferred: false);
        using var command = Command(connection,
            "UPDATE store_paths SET registered = 1, pending_owner = NULL, pending_store = NULL WHERE hash_part = $hash AND registered = 2",
            ("$hash", ""));
        command.Transaction = transaction;
        foreach (var hashPart in hashParts)
        {
            command.Parameters["$hash"].Value = hashPart;
            command.ExecuteNonQuery();
        }
        transaction.Commit();
    });

    /// <summary>
    /// Takes back the rows still pending for the run <paramref name="owner"/> (all, or those of <paramref name="hashParts"/>):
    /// Nix refused or never heard of them, so the mount stops showing them; their narinfo and NAR state stay.
    /// Rows another run has since made its own, or that Nix accepted meanwhile, are left alone. Returns the hash parts taken back.
    /// </summary>
    public IReadOnlyList<string> TakeBackRegistration(string owner, IEnumerable<string>? hashParts = null) => Use(connection =>
    {
        using var transaction = connection.BeginTransaction(deferred: false);
        using var command = Command(connection,
            """
            UPDATE store_paths SET registered = 0, pending_owner = NULL, pending_store = NULL
            WHERE registered = 2 AND pending_owner = $owner AND ($hash IS NULL OR hash_part = $hash)
            RETURNING hash_part
            """, ("$owner", owner), ("$hash", null));
        command.Transaction = transaction;
        var taken = new List<string>();
        foreach (var hashPart in hashParts?.Select(h => (string?)h) ?? [null])
        {
            command.Parameters["$hash"].Value = (object?)hashPart ?? DBNull.Value;
            using var reader = command.ExecuteReader();
            while (reader.Read())
                taken.Add(reader.GetString(0));
        }
        transaction.Commit();
        return taken;
    });

    /// <summary>The rows pending for registration with the Nix store <paramref name="store"/> (<see cref="PendingRegistration.StoreKey"/>), with the run that wrote each.</summary>
    public IReadOnlyList<(StorePath Path, string Owner)> ListPendingRegistrations(string store) => Use(connection =>
    {
        using var command = Command(connection,
            "SELECT base_name, pending_owner FROM store_paths WHERE registered = 2 AND pending_store = $store ORDER BY base_name", ("$store", store));
        using var reader = command.ExecuteReader();
        var pending = new List<(StorePath, string)>();
        while (reader.Read())
            pending.Add((StorePath.FromBaseName(reader.GetString(0)), reader.GetString(1)));
        return pending;
    });

    /// <summary>
    /// Removes a store path from the catalog (Nix deleted it). When no other known path shares its NAR,
    /// the NAR's tree goes too and the returned record names the blob to delete; its row stays, so the
    /// bytes once downloaded still count in the statistics. Null when the path was not known.
    /// </summary>
    public StorePathRemoval? RemoveStorePath(string hashPart) => Use(connection =>
    {
        using var transaction = connection.BeginTransaction(deferred: false);
        var known = GetStorePath(connection, hashPart);
        if (known is null)
            return null;
        using (var delete = Command(connection, "DELETE FROM store_paths WHERE hash_part = $hash", ("$hash", hashPart)))
        {
            delete.Transaction = transaction;
            delete.ExecuteNonQuery();
        }
        using (var shared = Command(connection, "SELECT EXISTS (SELECT 1 FROM store_paths WHERE nar_id = $id)", ("$id", known.Nar.Id)))
        {
            shared.Transaction = transaction;
            if (Convert.ToInt64(shared.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture) != 0)
            {
                transaction.Commit();
                return new StorePathRemoval(known, FreedNar: null);
            }
        }
        FreeNar(connection, transaction, known.Nar.Id);
        transaction.Commit();
        return new StorePathRemoval(known, known.Nar);
    });

    /// <summary>
    /// Forgets everything stored of a NAR — its tree and its blob — but not the store paths that have it, so the
    /// next use fetches it again (<c>lazystore verify --repair</c> of a corrupt blob; the caller deletes the file).
    /// </summary>
    public void ForgetNar(long narId) => Use(connection =>
    {
        using var transaction = connection.BeginTransaction(deferred: false);
        FreeNar(connection, transaction, narId);
        transaction.Commit();
    });

    private static void FreeNar(SqliteConnection connection, SqliteTransaction transaction, long narId)
    {
        using var free = Command(connection,
            """
            DELETE FROM entries WHERE nar_id = $id;
            UPDATE nars SET tree = $none, blob_size = NULL, blob_inode = NULL, blob_ctime_ns = NULL, listing_missing_at = NULL WHERE id = $id;
            """, ("$id", narId), ("$none", (int)NarTree.None));
        free.Transaction = transaction;
        free.ExecuteNonQuery();
    }

    /// <summary>Every NAR whose blob is stored, in NarHash order, with the base names of the store paths that have it.</summary>
    public IReadOnlyList<(NarRecord Nar, IReadOnlyList<string> BaseNames)> ListStoredNars() => Use(connection =>
    {
        using var command = Command(connection,
            """
            SELECT n.id, n.nar_hash, n.nar_size, n.tree, n.blob_size, n.listing_missing_at, n.blob_inode, n.blob_ctime_ns, p.base_name
            FROM nars n LEFT JOIN store_paths p ON p.nar_id = n.id
            WHERE n.blob_size IS NOT NULL ORDER BY n.nar_hash, p.base_name
            """);
        using var reader = command.ExecuteReader();
        var stored = new List<(NarRecord, IReadOnlyList<string>)>();
        List<string>? names = null;
        while (reader.Read())
        {
            var nar = ReadNar(reader, 0);
            if (stored.Count == 0 || stored[^1].Item1.Id != nar.Id)
                stored.Add((nar, names = []));
            if (!reader.IsDBNull(8))
                names!.Add(reader.GetString(8));
        }
        return stored;
    });

    /// <summary>Store paths the mount serves — registered or pending — in name order with their NAR and, when the tree is known, the type of its root.</summary>
    public IReadOnlyList<RegisteredRoot> ListRegisteredRoots() => Use(connection =>
    {
        using var command = Command(connection,
            """
            SELECT p.base_name, p.nar_id, e.type FROM store_paths p
            LEFT JOIN entries e ON e.nar_id = p.nar_id AND e.id = 0
            WHERE p.registered <> 0 ORDER BY p.base_name
            """);
        using var reader = command.ExecuteReader();
        var roots = new List<RegisteredRoot>();
        while (reader.Read())
            roots.Add(new RegisteredRoot(reader.GetString(0), reader.GetInt64(1), reader.IsDBNull(2) ? null : (NarEntryType)reader.GetInt32(2)));
        return roots;
    });

    private static KnownStorePath? GetStorePath(SqliteConnection connection, string hashPart)
    {
        using var query = new StorePathQuery(connection, transaction: null);
        return query.Get(hashPart);
    }

    /// <summary>A store path's row with its NAR's, by hash part: one prepared statement for any number of lookups.</summary>
    private sealed class StorePathQuery : IDisposable
    {
        private readonly SqliteCommand _command;

        public StorePathQuery(SqliteConnection connection, SqliteTransaction? transaction)
        {
            _command = Command(connection,
                """
                SELECT p.base_name, p.cache, p.narinfo, p.registered, n.id, n.nar_hash, n.nar_size, n.tree, n.blob_size, n.listing_missing_at, n.blob_inode, n.blob_ctime_ns
                FROM store_paths p JOIN nars n ON n.id = p.nar_id WHERE p.hash_part = $hash
                """, ("$hash", ""));
            // CreateCommand already enlists the command in the connection's transaction, if any.
            if (transaction is not null)
                _command.Transaction = transaction;
        }

        public KnownStorePath? Get(string hashPart)
        {
            _command.Parameters[0].Value = hashPart;
            using var reader = _command.ExecuteReader();
            if (!reader.Read())
                return null;
            return new KnownStorePath(
                StorePath.FromBaseName(reader.GetString(0)),
                reader.GetString(1),
                reader.GetString(2),
                reader.GetInt64(3) != (int)Registration.None,
                ReadNar(reader, 4),
                reader.GetInt64(3) == (int)Registration.Pending);
        }

        public void Dispose() => _command.Dispose();
    }

    public NarRecord? GetNar(string narHash) => Use(connection =>
    {
        using var command = Command(connection, "SELECT id, nar_hash, nar_size, tree, blob_size, listing_missing_at, blob_inode, blob_ctime_ns FROM nars WHERE nar_hash = $hash", ("$hash", narHash));
        using var reader = command.ExecuteReader();
        return reader.Read() ? ReadNar(reader, 0) : null;
    });

    private static NarRecord ReadNar(SqliteDataReader reader, int first) =>
        new(reader.GetInt64(first), reader.GetString(first + 1), reader.GetInt64(first + 2), (NarTree)reader.GetInt32(first + 3),
            reader.IsDBNull(first + 4) ? null : reader.GetInt64(first + 4),
            reader.IsDBNull(first + 5) ? null : reader.GetInt64(first + 5),
            reader.IsDBNull(first + 4) || reader.IsDBNull(first + 6) || reader.IsDBNull(first + 7)
                ? null
                : new BlobStamp(reader.GetInt64(first + 6), reader.GetInt64(first + 7), reader.GetInt64(first + 4)));

    /// <summary>Remembers that the cache had no (usable) listing for a NAR just now.</summary>
    public void MarkListingMissing(long narId) => Use(connection =>
    {
        using var command = Command(connection, "UPDATE nars SET listing_missing_at = $now WHERE id = $id", ("$now", Now), ("$id", narId));
        command.ExecuteNonQuery();
    });

    /// <summary>Stores a listing's tree for a NAR whose tree is not known yet; a tree read from the NAR is never replaced.</summary>
    public void PutListing(long narId, IReadOnlyList<NarIndexEntry> entries) => PutListings([(narId, entries)]);

    /// <summary>
    /// <see cref="PutListing"/> for many NARs in one transaction: the mount writes the listings that arrive
    /// together (its background fetch of registered paths' listings) at one commit's cost.
    /// </summary>
    public void PutListings(IReadOnlyList<(long NarId, IReadOnlyList<NarIndexEntry> Entries)> listings) => Use(connection =>
    {
        using var transaction = connection.BeginTransaction(deferred: false);
        using var check = Command(connection, "SELECT tree FROM nars WHERE id = $id", ("$id", 0L));
        using var update = Command(connection, "UPDATE nars SET tree = $tree WHERE id = $id", ("$tree", (int)NarTree.Listing), ("$id", 0L));
        check.Transaction = update.Transaction = transaction;
        using var insert = new EntryInserter(connection, transaction);
        foreach (var (narId, entries) in listings)
        {
            check.Parameters["$id"].Value = narId;
            if (Convert.ToInt32(check.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture) != (int)NarTree.None)
                continue;
            insert.Insert(narId, entries);
            update.Parameters["$id"].Value = narId;
            update.ExecuteNonQuery();
        }
        transaction.Commit();
    });

    /// <summary>
    /// Records a verified blob now in <c>nars/</c> and its tree with payload offsets, in one transaction, so
    /// a reader sees either no blob or the blob with its complete index.
    /// </summary>
    public void CommitNar(string narHash, long narSize, long downloadedBytes, IReadOnlyList<NarIndexEntry> entries, BlobStamp stamp) => Use(connection =>
    {
        using var transaction = connection.BeginTransaction(deferred: false);
        long narId;
        using (var upsert = Command(connection,
            """
            INSERT INTO nars (nar_hash, nar_size) VALUES ($hash, $size) ON CONFLICT (nar_hash) DO NOTHING;
            SELECT id FROM nars WHERE nar_hash = $hash;
            """, ("$hash", narHash), ("$size", narSize)))
        {
            upsert.Transaction = transaction;
            narId = (long)upsert.ExecuteScalar()!;
        }
        using (var clear = Command(connection, "DELETE FROM entries WHERE nar_id = $id", ("$id", narId)))
        {
            clear.Transaction = transaction;
            clear.ExecuteNonQuery();
        }
        InsertEntries(connection, transaction, narId, entries);
        using (var update = Command(connection,
            """
            UPDATE nars SET tree = $tree, blob_size = $size, downloaded_bytes = downloaded_bytes + $downloaded,
                fetched_at = $now, last_access = $now, blob_inode = $inode, blob_ctime_ns = $ctime WHERE id = $id
            """, ("$tree", (int)NarTree.Nar), ("$size", narSize), ("$downloaded", downloadedBytes), ("$now", Now), ("$id", narId),
            ("$inode", stamp.Inode), ("$ctime", stamp.ChangeTimeNs)))
        {
            update.Transaction = transaction;
            update.ExecuteNonQuery();
        }
        transaction.Commit();
    }, $"cannot record the verified NAR {narHash}");

    /// <summary>Forgets a blob that vanished or changed on disk, keeping its tree (offsets stay valid for the same NarHash).</summary>
    public void ForgetBlob(long narId) => Use(connection =>
    {
        using var command = Command(connection, "UPDATE nars SET blob_size = NULL, blob_inode = NULL, blob_ctime_ns = NULL WHERE id = $id", ("$id", narId));
        command.ExecuteNonQuery();
    });

    public void TouchNar(long narId) => Use(connection =>
    {
        using var command = Command(connection, "UPDATE nars SET last_access = $now WHERE id = $id", ("$now", Now), ("$id", narId));
        command.ExecuteNonQuery();
    });

    private static void InsertEntries(SqliteConnection connection, SqliteTransaction transaction, long narId, IReadOnlyList<NarIndexEntry> entries)
    {
        using var insert = new EntryInserter(connection, transaction);
        insert.Insert(narId, entries);
    }

    /// <summary>The prepared insert of a NAR's entries, for any number of NARs in one transaction.</summary>
    private sealed class EntryInserter : IDisposable
    {
        private readonly SqliteCommand _insert;
        private readonly SqliteParameter _nar, _id, _parent, _name, _type, _exec, _size, _offset, _target;

        public EntryInserter(SqliteConnection connection, SqliteTransaction transaction)
        {
            _insert = connection.CreateCommand();
            _insert.Transaction = transaction;
            _insert.CommandText =
                """
                INSERT INTO entries (nar_id, id, parent, name, type, executable, size, payload_offset, target)
                VALUES ($nar, $id, $parent, $name, $type, $exec, $size, $offset, $target)
                """;
            _nar = _insert.Parameters.Add("$nar", SqliteType.Integer);
            _id = _insert.Parameters.Add("$id", SqliteType.Integer);
            _parent = _insert.Parameters.Add("$parent", SqliteType.Integer);
            _name = _insert.Parameters.Add("$name", SqliteType.Text);
            _type = _insert.Parameters.Add("$type", SqliteType.Integer);
            _exec = _insert.Parameters.Add("$exec", SqliteType.Integer);
            _size = _insert.Parameters.Add("$size", SqliteType.Integer);
            _offset = _insert.Parameters.Add("$offset", SqliteType.Integer);
            _target = _insert.Parameters.Add("$target", SqliteType.Text);
            _insert.Prepare();
        }

        public void Insert(long narId, IReadOnlyList<NarIndexEntry> entries)
        {
            _nar.Value = narId;
            foreach (var e in entries)
            {
                _id.Value = e.Id;
                _parent.Value = (object?)e.Parent ?? DBNull.Value;
                _name.Value = e.Name;
                _type.Value = (int)e.Type;
                _exec.Value = e.IsExecutable ? 1 : 0;
                _size.Value = e.Size;
                _offset.Value = (object?)e.PayloadOffset ?? DBNull.Value;
                _target.Value = (object?)e.Target ?? DBNull.Value;
                _insert.ExecuteNonQuery();
            }
        }

        public void Dispose() => _insert.Dispose();
    }

    // ---- the tree ----

    public NarIndexEntry? GetEntry(long narId, int entryId) => Use(connection =>
    {
        using var command = Command(connection, EntryColumns + " WHERE nar_id = $nar AND id = $id", ("$nar", narId), ("$id", entryId));
        return ReadEntries(command).FirstOrDefault();
    });

    public NarIndexEntry? LookupEntry(long narId, int parentId, string name) => Use(connection =>
    {
        using var command = Command(connection, EntryColumns + " WHERE nar_id = $nar AND parent = $parent AND name = $name",
            ("$nar", narId), ("$parent", parentId), ("$name", name));
        return ReadEntries(command).FirstOrDefault();
    });

    /// <summary>Follows path components from the root without following symlinks; null when nothing is there.</summary>
    public NarIndexEntry? ResolveEntry(long narId, IReadOnlyList<string> components)
    {
        var entry = GetEntry(narId, 0);
        foreach (var component in components)
        {
            if (entry is null || entry.Type != NarEntryType.Directory)
                return null;
            entry = LookupEntry(narId, entry.Id, component);
        }
        return entry;
    }

    /// <summary>A directory's entries in NAR (name) order.</summary>
    public IReadOnlyList<NarIndexEntry> ListDirectory(long narId, int directoryId) => Use(connection =>
    {
        using var command = Command(connection, EntryColumns + " WHERE nar_id = $nar AND parent = $parent ORDER BY id",
            ("$nar", narId), ("$parent", directoryId));
        return ReadEntries(command);
    });

    /// <summary>Every entry of a NAR's tree in NAR order.</summary>
    public IReadOnlyList<NarIndexEntry> GetTree(long narId) => Use(connection =>
    {
        using var command = Command(connection, EntryColumns + " WHERE nar_id = $nar ORDER BY id", ("$nar", narId));
        return ReadEntries(command);
    });

    /// <summary>
    /// Hands <paramref name="build"/> the number of entries of a NAR's tree and the entries in NAR order, read
    /// one by one as they are enumerated (a large tree is never held as a list of rows), both from one
    /// snapshot of the database.
    /// </summary>
    public T ReadTree<T>(long narId, Func<int, IEnumerable<NarIndexEntry>, T> build)
    {
        using var connection = State.OpenConnection();
        using var transaction = connection.BeginTransaction(deferred: true);
        using var count = Command(connection, "SELECT count(*) FROM entries WHERE nar_id = $nar", ("$nar", narId));
        count.Transaction = transaction;
        var entries = Convert.ToInt32(count.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture);
        using var command = Command(connection, EntryColumns + " WHERE nar_id = $nar ORDER BY id", ("$nar", narId));
        command.Transaction = transaction;
        return build(entries, StreamEntries(command));
    }

    private const string EntryColumns = "SELECT id, parent, name, type, executable, size, payload_offset, target FROM entries";

    private static List<NarIndexEntry> ReadEntries(SqliteCommand command) => [.. StreamEntries(command)];

    private static IEnumerable<NarIndexEntry> StreamEntries(SqliteCommand command)
    {
        using var reader = command.ExecuteReader();
        while (reader.Read())
        {
            yield return new NarIndexEntry(
                reader.GetInt32(0),
                reader.IsDBNull(1) ? null : reader.GetInt32(1),
                reader.GetString(2),
                (NarEntryType)reader.GetInt32(3),
                reader.GetInt64(4) != 0,
                reader.GetInt64(5),
                reader.IsDBNull(6) ? null : reader.GetInt64(6),
                reader.IsDBNull(7) ? null : reader.GetString(7));
        }
    }

    // ---- failures and statistics ----

    public void RecordFailure(string narHash, string cache, string reason) => Use(connection =>
    {
        using var command = Command(connection,
            "INSERT INTO fetch_failures (nar_hash, cache, reason, failed_at) VALUES ($hash, $cache, $reason, $now)",
            ("$hash", narHash), ("$cache", cache), ("$reason", reason), ("$now", Now));
        command.ExecuteNonQuery();
    });

    public IReadOnlyList<FetchFailureRecord> GetFailures(string narHash) => Use(connection =>
    {
        using var command = Command(connection, "SELECT cache, reason, failed_at FROM fetch_failures WHERE nar_hash = $hash ORDER BY id", ("$hash", narHash));
        using var reader = command.ExecuteReader();
        var failures = new List<FetchFailureRecord>();
        while (reader.Read())
            failures.Add(new FetchFailureRecord(reader.GetString(0), reader.GetString(1), reader.GetInt64(2)));
        return failures;
    });

    public CatalogStatistics GetStatistics() => Use(connection =>
    {
        using var command = Command(connection,
            """
            SELECT
              (SELECT count(*) FROM store_paths),
              (SELECT count(*) FROM store_paths WHERE registered = 1),
              (SELECT count(*) FROM nars WHERE tree = 1),
              (SELECT count(*) FROM nars WHERE blob_size IS NOT NULL),
              (SELECT coalesce(sum(blob_size), 0) FROM nars WHERE blob_size IS NOT NULL),
              (SELECT coalesce(sum(downloaded_bytes), 0) FROM nars),
              (SELECT coalesce(sum(nar_size), 0) FROM nars WHERE blob_size IS NOT NULL),
              (SELECT coalesce(sum(nar_size), 0) FROM nars n WHERE EXISTS (SELECT 1 FROM store_paths p WHERE p.nar_id = n.id)),
              (SELECT count(*) FROM fetch_failures)
            """);
        using var reader = command.ExecuteReader();
        reader.Read();
        return new CatalogStatistics(reader.GetInt64(0), reader.GetInt64(1), reader.GetInt64(2), reader.GetInt64(3),
            reader.GetInt64(4), reader.GetInt64(5), reader.GetInt64(6), reader.GetInt64(7), reader.GetInt64(8));
    });

    /// <summary>
    /// Runs <paramref name="body"/> on a connection of its own; every storage error of the catalog (a full disk,
    /// an I/O error, a damaged or locked database) leaves as a <see cref="StateStorageException"/> naming
    /// <c>index.sqlite</c> and SQLite's reason.
    /// </summary>
    private T Use<T>(Func<SqliteConnection, T> body, string? action = null)
    {
        try
        {
            using var connection = State.OpenConnection();
            return body(connection);
        }
        catch (SqliteException e)
        {
            throw StateStorageException.From(State, State.DatabasePath, action, e);
        }
    }

    private void Use(Action<SqliteConnection> body, string? action = null) => Use<bool>(connection =>
    {
        body(connection);
        return true;
    }, action);

    private static SqliteCommand Command(SqliteConnection connection, string sql, params (string Name, object? Value)[] parameters)
    {
        var command = connection.CreateCommand();
        command.CommandText = sql;
        foreach (var (name, value) in parameters)
            command.Parameters.AddWithValue(name, value ?? DBNull.Value);
        return command;
    }
}

public enum NarTree
{
    None = 0,
    Listing = 1,
    Nar = 2,
}

public sealed record NarInfoLookup(string? NarInfo, long LookedUpAt);

/// <summary>One cache's answer for a store path hash, to be remembered: the narinfo text it served (verified), or null for "not there".</summary>
public readonly record struct NarInfoAnswer(string Cache, string HashPart, string? NarInfo);

public sealed record CacheInfoRecord(string? StoreDirectory, int? Priority, bool? WantMassQuery, long FetchedAt);

/// <param name="Stamp">The stored blob's identity at commit (<see cref="BlobStamp"/>); null when no blob is stored or it was committed before stamps were kept.</param>
public sealed record NarRecord(long Id, string NarHash, long NarSize, NarTree Tree, long? BlobSize, long? ListingMissingAt = null, BlobStamp? Stamp = null)
{
    public bool IsFetched => BlobSize is not null;
}

/// <param name="Registered">Whether the mount serves the path: registered with Nix, or pending (<see cref="PendingRegistration"/>).</param>
/// <param name="Pending">Registered in the catalog by a run that has not heard back from Nix (yet).</param>
public sealed record KnownStorePath(StorePath Path, string Cache, string NarInfoText, bool Registered, NarRecord Nar, bool Pending = false);

/// <summary>The values of <c>store_paths.registered</c>.</summary>
internal enum Registration
{
    None = 0,
    Registered = 1,
    Pending = 2,
}

/// <summary>A store path taken out of the catalog, and its NAR when no other path shares it (its blob, if any, is to be deleted).</summary>
public sealed record StorePathRemoval(KnownStorePath Path, NarRecord? FreedNar);

public sealed record RegisteredRoot(string BaseName, long NarId, NarEntryType? RootType);

public sealed record FetchFailureRecord(string Cache, string Reason, long FailedAt);

/// <summary>What <c>lazystore stats</c> shows.</summary>
public sealed record CatalogStatistics(
    long KnownPaths,
    long RegisteredPaths,
    long ListedNars,
    long StoredNars,
    long BytesOnDisk,
    long BytesDownloaded,
    long FetchedNarSize,
    long AdvertisedNarSize,
    long FetchFailures);
