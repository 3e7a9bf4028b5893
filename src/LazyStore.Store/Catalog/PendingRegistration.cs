using System.Globalization;

namespace LazyStore.Store.Catalog;

/// <summary>
/// Registration in two phases. A <c>register</c> or <c>realise</c> run first writes its paths to the catalog as
/// pending — the mount serves them, so that Nix finds them in the store directory — and only when Nix has
/// accepted them are they registered; if Nix refuses, or the run is interrupted, the run takes its pending
/// rows back. A pending row names its run (<see cref="Owner"/>: the process, by pid and start time, so a
/// reused pid is not taken for it) and the Nix store it registers with (<see cref="Store"/>), so that rows
/// left by a run that was killed can be settled by the next run on that store, by asking Nix which it holds.
/// </summary>
public sealed record PendingRegistration(string Owner, string Store)
{
    /// <summary>The pending registration of this process with the Nix store at <paramref name="storeRoot"/> (null: the machine's store).</summary>
    public static PendingRegistration ForThisProcess(string? storeRoot) =>
        new(OwnerOf(Environment.ProcessId) ?? throw new IOException("cannot read /proc/self/stat: is /proc mounted?"), StoreKey(storeRoot));

    /// <summary>How a Nix store is named in the catalog: the full path of a chroot store's root, or "" for the machine's store.</summary>
    public static string StoreKey(string? storeRoot) => storeRoot is null ? "" : Path.TrimEndingDirectorySeparator(Path.GetFullPath(storeRoot));

    /// <summary>Whether the run that wrote rows as <paramref name="owner"/> has ended (its process is gone, or the pid now belongs to another).</summary>
    public static bool IsOwnerGone(string owner)
    {
        var colon = owner.IndexOf(':', StringComparison.Ordinal);
        return colon < 0 || !int.TryParse(owner.AsSpan(0, colon), NumberStyles.None, CultureInfo.InvariantCulture, out var pid) || OwnerOf(pid) != owner;
    }

    /// <summary>"pid:start time" of a running process (the start time in clock ticks after boot, field 22 of /proc/PID/stat); null when it is not running.</summary>
    private static string? OwnerOf(int pid)
    {
        string stat;
        try
        {
            stat = File.ReadAllText(string.Create(CultureInfo.InvariantCulture, $"/proc/{pid}/stat"));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
        // The command name (field 2) is in parentheses and may itself hold spaces and parentheses.
        var fields = stat[(stat.LastIndexOf(')') + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return fields.Length > 19 ? string.Create(CultureInfo.InvariantCulture, $"{pid}:{fields[19]}") : null;
    }
}
