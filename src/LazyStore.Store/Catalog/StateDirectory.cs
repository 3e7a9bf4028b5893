using System.Globalization;
using System.Runtime.CompilerServices;
using Microsoft.Data.Sqlite;

namespace LazyStore.Store.Catalog;

/// <summary>
/// LazyStore's state directory: <c>index.sqlite</c> (WAL mode, shared by every process using the directory),
/// <c>nars/</c> with one verified, uncompressed NAR per NarHash, and <c>tmp/</c> for downloads in progress.
/// </summary>
public sealed class StateDirectory
{
    public const string DatabaseFileName = "index.sqlite";

    private StateDirectory(string path)
    {
        Path = System.IO.Path.GetFullPath(path);
        NarsPath = System.IO.Path.Combine(Path, "nars");
        TempPath = System.IO.Path.Combine(Path, "tmp");
        DatabasePath = System.IO.Path.Combine(Path, DatabaseFileName);
    }

    public string Path { get; }

    public string NarsPath { get; }

    public string TempPath { get; }

    public string DatabasePath { get; }

    /// <summary>
    /// The directory LazyStore uses when none is given: <c>$LAZYSTORE_STATE_DIR</c>, else
    /// <c>/var/lib/lazystore</c> for root, else <c>$XDG_CACHE_HOME/lazystore</c> (or <c>~/.cache/lazystore</c>).
    /// </summary>
    public static string DefaultPath(Func<string, string?> environment)
    {
        if (environment("LAZYSTORE_STATE_DIR") is { Length: > 0 } explicitPath)
            return explicitPath;
        if (Environment.UserName == "root")
            return "/var/lib/lazystore";
        var cache = environment("XDG_CACHE_HOME");
        if (string.IsNullOrEmpty(cache))
            cache = System.IO.Path.Combine(environment("HOME") ?? Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
        return System.IO.Path.Combine(cache, "lazystore");
    }

    /// <summary>
    /// Creates the directory if needed, brings the database schema up to date, and removes the temporary
    /// downloads of processes that no longer run. (A blob renamed into <c>nars/</c> but never committed was
    /// verified before the rename; the next request for it re-indexes it from disk instead.)
    /// </summary>
    public static StateDirectory Open(string path)
    {
        var state = new StateDirectory(path);
        try
        {
            Directory.CreateDirectory(state.Path);
            Directory.CreateDirectory(state.NarsPath);
            Directory.CreateDirectory(state.TempPath);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw StateStorageException.From(state, state.Path, "cannot create its directories", e);
        }
        try
        {
            using var connection = state.OpenConnection();
            CatalogSchema.Migrate(connection, state.DatabasePath);
        }
        catch (SqliteException e)
        {
            throw StateStorageException.From(state, state.DatabasePath, "cannot open the catalog", e);
        }
        state.RemoveLeftoverTemporaryFiles();
        return state;
    }

    private string ConnectionString => _connectionString ??= new SqliteConnectionStringBuilder
    {
        DataSource = DatabasePath,
        Mode = SqliteOpenMode.ReadWriteCreate,
        Cache = SqliteCacheMode.Private,
        Pooling = true,
        DefaultTimeout = 60,
    }.ToString();

    private string? _connectionString;

    public SqliteConnection OpenConnection()
    {
        var connection = new SqliteConnection(ConnectionString);
        connection.Open();
        // A pooled connection keeps its settings: they are made once per SQLite connection, not at every open
        // (running them cost more than most of the queries that follow).
        if (_configured.TryGetValue(connection.Handle!, out _))
            return connection;
        using var pragmas = connection.CreateCommand();
        // WAL lets readers in other processes (the mount) proceed while one writer commits; busy_timeout makes
        // concurrent writers wait instead of failing with SQLITE_BUSY.
        pragmas.CommandText = "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; PRAGMA busy_timeout=60000;";
        pragmas.ExecuteNonQuery();
        _configured.AddOrUpdate(connection.Handle!, Configured);
        return connection;
    }

    private static readonly object Configured = new();

    // The SQLite connections (pooled, reused by later opens) whose settings are made.
    private readonly ConditionalWeakTable<SQLitePCL.sqlite3, object> _configured = new();

    /// <summary>
    /// Closes the pooled connections to the catalog. A pooled connection keeps its database file open, so
    /// without this a later open of a removed and re-created state directory at the same path would read
    /// the removed file.
    /// </summary>
    public void ReleaseConnections()
    {
        using var connection = new SqliteConnection(ConnectionString);
        SqliteConnection.ClearPool(connection);
    }

    /// <summary>Where the blob of a NAR lives once verified: <c>nars/&lt;nix32 of the NarHash digest&gt;.nar</c>.</summary>
    public string BlobPath(string narHashKey) => System.IO.Path.Combine(NarsPath, narHashKey + ".nar");

    /// <summary>
    /// A new temporary file name for a download by this process. The process id in the name lets another
    /// process starting later tell a crashed download from one still running.
    /// </summary>
    public string NewTemporaryPath() =>
        System.IO.Path.Combine(TempPath, string.Create(CultureInfo.InvariantCulture, $"{Environment.ProcessId}-{Guid.NewGuid():N}.partial"));

    private void RemoveLeftoverTemporaryFiles()
    {
        foreach (var file in Directory.EnumerateFiles(TempPath))
        {
            var name = System.IO.Path.GetFileName(file);
            var dash = name.IndexOf('-', StringComparison.Ordinal);
            if (dash > 0 && int.TryParse(name.AsSpan(0, dash), NumberStyles.None, CultureInfo.InvariantCulture, out var pid)
                && (pid == Environment.ProcessId || ProcessIsAlive(pid)))
            {
                continue;
            }
            TryDelete(file);
        }
    }

    private static bool ProcessIsAlive(int pid) => Directory.Exists(string.Create(CultureInfo.InvariantCulture, $"/proc/{pid}"));

    internal static void TryDelete(string file)
    {
        try
        {
            File.Delete(file);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Best effort: a file that cannot be removed now is retried at the next start.
        }
    }
}
