using System.Text;
using LazyStore.Nix;
using LazyStore.Nix.Interop;
using LazyStore.Store.Catalog;

namespace LazyStore.Store.Registration;

/// <summary>
/// A private temporary directory laid out as a binary cache of narinfos alone — nix-cache-info and one
/// <c>&lt;hash&gt;.narinfo</c> a path, no NARs — from which <c>nix store copy-sigs</c> takes verified
/// signatures (<see cref="NixValidity.CopySignaturesAsync(string?, TemporaryNarInfoCache, IReadOnlyCollection{NarInfo}, StoreDirectory, CancellationToken, string)"/>).
/// </summary>
/// <remarks>
/// Written in the background from <see cref="Start"/> on, so that creating a file a path (slow on a busy
/// journaling file system) overlaps the registration's other steps. The directory (mode 0700, in TMPDIR) has
/// a new random name, so nothing Nix remembers of a cache URL applies to it; disposing removes it, whatever
/// happened. Its name carries the process's pid and start time (as <see cref="PendingRegistration"/> names a
/// run), so that the directories of runs killed outright are removed by the next run that writes one.
/// </remarks>
public sealed class TemporaryNarInfoCache : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly Task<Written> _writing;

    /// <summary>The directory and the narinfo written for each path.</summary>
    private sealed record Written(string Directory, Dictionary<StorePath, NarInfo> Infos);

    private TemporaryNarInfoCache(IReadOnlyList<NarInfo> infos, StoreDirectory storeDirectory)
    {
        _writing = Task.Run(() => Write(infos, storeDirectory, _stop.Token));
    }

    /// <summary>Starts writing <paramref name="infos"/> (those with signatures; the others give copy-sigs nothing) to a new directory.</summary>
    public static TemporaryNarInfoCache Start(IEnumerable<NarInfo> infos, StoreDirectory storeDirectory) =>
        new([.. infos.Where(i => i.Signatures.Count > 0).DistinctBy(i => i.StorePath)], storeDirectory);

    /// <summary>
    /// Waits until the narinfos are written, then makes <paramref name="infos"/> the ones the cache holds for
    /// their paths (writing any not yet there or different: the catalog may have kept another cache's narinfo
    /// of a path it knew); returns the directory. Throws <see cref="NixRegistrationException"/> when they
    /// could not be written.
    /// </summary>
    public async Task<string> HoldAsync(IReadOnlyCollection<NarInfo> infos, CancellationToken cancellationToken)
    {
        var written = await _writing.WaitAsync(cancellationToken).ConfigureAwait(false);
        foreach (var info in infos)
        {
            if (!written.Infos.TryGetValue(info.StorePath, out var had) || !SameToCopySigs(had, info))
            {
                WriteFile(written.Directory, info.StorePath.HashPart + ".narinfo", info.ToString());
                written.Infos[info.StorePath] = info;
            }
        }
        return written.Directory;
    }

    /// <summary>Whether copy-sigs takes the same from both: it compares NarHash, NarSize and references with Nix's database, then copies the Sig values (Nix 2.8 sigs.cc).</summary>
    private static bool SameToCopySigs(NarInfo a, NarInfo b) =>
        a.NarHash == b.NarHash && a.NarSize == b.NarSize && a.References.SequenceEqual(b.References) && a.Signatures.SequenceEqual(b.Signatures, StringComparer.Ordinal);

    /// <summary>Stops the writing if it still runs and removes the directory.</summary>
    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        Written written;
        try
        {
            written = await _writing.ConfigureAwait(false);
        }
        catch (Exception e) when (e is NixRegistrationException or OperationCanceledException)
        {
            // The writer removed what it had made; a failure to write was the concern of HoldAsync's caller, who was told.
            _stop.Dispose();
            return;
        }
        _stop.Dispose();
        Directory.Delete(written.Directory, recursive: true);
    }

    private static Written Write(IReadOnlyList<NarInfo> infos, StoreDirectory storeDirectory, CancellationToken stop)
    {
        string directory;
        try
        {
            directory = Directory.CreateTempSubdirectory(Prefix + PendingRegistration.ForThisProcess(null).Owner.Replace(':', '-') + "-").FullName;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new NixRegistrationException($"could not make a temporary directory for the narinfos in {Path.GetTempPath()}: {e.Message}");
        }
        try
        {
            WriteFile(directory, NixCacheInfo.FileName, new NixCacheInfo { StoreDirectory = storeDirectory }.ToString());
            var written = new Dictionary<StorePath, NarInfo>(infos.Count);
            foreach (var info in infos)
            {
                stop.ThrowIfCancellationRequested();
                WriteFile(directory, info.StorePath.HashPart + ".narinfo", info.ToString());
                written[info.StorePath] = info;
            }
            RemoveAbandoned(Path.GetDirectoryName(directory)!);
            return new Written(directory, written);
        }
        catch (Exception)
        {
            Directory.Delete(directory, recursive: true);
            throw;
        }
    }

    private const string Prefix = "lazystore-narinfos-";

    /// <summary>
    /// Removes the directories of runs that have ended without removing their own (killed): named
    /// <c>lazystore-narinfos-PID-START-…</c> for a process that is gone, and, since TMPDIR is shared, only
    /// real directories of this user (made with mode 0700, so nobody else can have put anything in them).
    /// </summary>
    private static void RemoveAbandoned(string temporary)
    {
        List<PosixDirectoryEntry> entries;
        try
        {
            entries = Posix.ReadDirectory(Posix.AtFdCwd, temporary, 0, int.MaxValue);
        }
        catch (PosixException)
        {
            // Only tidying: this run's own directory was made there, and the next run tries again.
            return;
        }
        foreach (var entry in entries)
        {
            if (!entry.Name.StartsWith(Prefix, StringComparison.Ordinal))
                continue;
            var owner = entry.Name[Prefix.Length..].Split('-');
            if (owner.Length != 3 || !PendingRegistration.IsOwnerGone(owner[0] + ":" + owner[1]))
                continue;
            var path = Path.Combine(temporary, entry.Name);
            try
            {
                var status = Posix.StatAt(Posix.AtFdCwd, path);
                if (status.Type == PosixFileType.Directory && status.Uid == Posix.EffectiveUserId)
                    Directory.Delete(path, recursive: true);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Another run removing it at the same time, or not ours to remove: left to its owner or the next run.
            }
        }
    }

    private static void WriteFile(string directory, string name, string text)
    {
        var path = Path.Combine(directory, name);
        try
        {
            File.WriteAllText(path, text, Utf8);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new NixRegistrationException($"could not write {path}: {e.Message}");
        }
    }

    private static readonly UTF8Encoding Utf8 = new(encoderShouldEmitUTF8Identifier: false);
}
