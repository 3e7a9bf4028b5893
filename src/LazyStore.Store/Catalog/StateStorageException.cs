using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;
using LazyStore.Nix.Interop;
using Microsoft.Data.Sqlite;

namespace LazyStore.Store.Catalog;

/// <summary>
/// The state directory could not be read or written: its catalog (<c>index.sqlite</c>) or a NAR blob. This is
/// LazyStore's own storage failing (a full disk, a read-only or failing file system, a damaged database), never
/// a cache's fault; the message names the state directory, the file and the reason in one line.
/// </summary>
public sealed partial class StateStorageException : IOException
{
    // Below this much free space a failed write is taken for a full file system: SQLite reports ENOSPC
    // as SQLITE_FULL, or as SQLITE_IOERR when it hit while extending the WAL index.
    private const long NearlyFull = 1 << 20;

    public StateStorageException(string message, Exception? inner = null)
        : base(message, inner)
    {
    }

    /// <summary>
    /// The one translation of a storage error into a <see cref="StateStorageException"/>:
    /// "state directory DIR: FILE: [ACTION: ]REASON", where REASON is SQLite's message or the system's, and
    /// says "no space left on device" when the file system holding the state directory is (nearly) full.
    /// </summary>
    /// <param name="state">The state directory.</param>
    /// <param name="file">The file that failed (inside the state directory).</param>
    /// <param name="action">What was being done, or null when the reason says enough.</param>
    /// <param name="error">The <see cref="SqliteException"/>, <see cref="IOException"/> or <see cref="UnauthorizedAccessException"/>.</param>
    public static StateStorageException From(StateDirectory state, string file, string? action, Exception error)
    {
        if (error is StateStorageException already)
            return already;
        var reason = error switch
        {
            SqliteException sqlite => SqliteReason(sqlite),
            IOException io when io.HResult is > 0 and < 4096 => Marshal.GetPInvokeErrorMessage(io.HResult),
            _ => error.Message,
        };
        var spaceProblem = error is SqliteException or IOException && !reason.Contains("no space left", StringComparison.OrdinalIgnoreCase)
            ? FullFileSystem(state.Path)
            : null;
        var relative = Path.GetRelativePath(state.Path, file);
        var where = relative == "." ? $"state directory {state.Path}" : $"state directory {state.Path}: {relative}";
        return new StateStorageException($"{where}: {(action is null ? "" : action + ": ")}{reason}{spaceProblem}", error);
    }

    private static string SqliteReason(SqliteException e)
    {
        // Microsoft.Data.Sqlite words it "SQLite Error 13: 'database or disk is full'."; keep SQLite's own words.
        var match = SqliteMessage().Match(e.Message);
        var text = match.Success ? match.Groups["text"].Value : e.Message;
        return string.Create(CultureInfo.InvariantCulture, $"{text} (SQLite error {e.SqliteErrorCode})");
    }

    /// <summary>"; no space left on device (N bytes free on its file system)" when the state directory's file system is (nearly) full.</summary>
    private static string? FullFileSystem(string directory)
    {
        try
        {
            using var fd = Posix.OpenAt(Posix.AtFdCwd, directory, Posix.OPath | Posix.ODirectory);
            var stat = Posix.StatFileSystem(fd.Fd);
            var available = (long)(stat.BlocksAvailable * stat.FragmentSize);
            return available < NearlyFull
                ? string.Create(CultureInfo.InvariantCulture, $"; no space left on device ({available} bytes free on its file system)")
                : null;
        }
        catch (PosixException)
        {
            // The reason above stands on its own; the free space is only a diagnosis.
            return null;
        }
    }

    [GeneratedRegex(@"^SQLite Error \d+: '(?<text>.*)'\.?$", RegexOptions.Singleline)]
    private static partial Regex SqliteMessage();
}
