using System.Diagnostics;
using System.Text;
using LazyStore.Nix;

namespace LazyStore.Store.Registration;

/// <summary>Nix refused to register paths, or could not say which are valid; the message carries what nix-store said.</summary>
public sealed class NixRegistrationException(string message) : IOException(message);

/// <summary>
/// Makes store paths valid in Nix's database through Nix itself, with the NarHash, NarSize, deriver and
/// references of their trusted narinfos; Nix stays the only writer of its database.
/// </summary>
/// <remarks>
/// The input is <c>nix-store --register-validity --hash-given</c>'s, fed to <c>nix-store --load-db</c>,
/// which reads the same records (registerValidity with the hash given) but does not canonicalise. Nix
/// 2.8's --register-validity canonicalises each path at its logical location even with
/// <c>--store ROOT</c> (opRegisterValidity passes printStorePath, not the real path), so it fails on
/// every chroot store; lazy paths are canonical by construction anyway. That the paths exist — which
/// canonicalisation used to prove — is checked here first.
/// </remarks>
public static class NixValidity
{
    /// <summary>How many paths one <c>nix-store --check-validity</c> is given; keeps its command line far below ARG_MAX.</summary>
    public const int ValidityBatchSize = 500;

    /// <summary>
    /// The text <c>nix-store --register-validity --hash-given</c> reads: per path its full path, NarHash,
    /// NarSize, deriver (an empty line for none), the number of references, then each reference
    /// (decodeValidPathInfo, Nix 2.8 store-api.cc). References come before their referrers.
    /// </summary>
    public static string Format(IReadOnlyCollection<NarInfo> infos, StoreDirectory storeDirectory)
    {
        var text = new StringBuilder();
        foreach (var info in ReferencesFirst(infos))
        {
            text.Append(info.StorePath.ToFullPath(storeDirectory)).Append('\n');
            text.Append(info.NarHash.ToString()).Append('\n');
            text.Append(info.NarSize).Append('\n');
            text.Append(info.Deriver?.ToFullPath(storeDirectory) ?? "").Append('\n');
            text.Append(info.References.Count).Append('\n');
            foreach (var reference in info.References)
                text.Append(reference.ToFullPath(storeDirectory)).Append('\n');
        }
        return text.ToString();
    }

    /// <summary>
    /// <paramref name="infos"/> ordered so that every path comes after the paths it refers to (those in the
    /// set; self-references and paths outside it do not constrain the order); otherwise in name order.
    /// </summary>
    public static IReadOnlyList<NarInfo> ReferencesFirst(IReadOnlyCollection<NarInfo> infos)
    {
        var byPath = infos.GroupBy(i => i.StorePath).ToDictionary(g => g.Key, g => g.First());
        var ordered = new List<NarInfo>(byPath.Count);
        var state = new Dictionary<StorePath, bool>();
        foreach (var path in byPath.Keys.Order())
            Visit(path);
        return ordered;

        void Visit(StorePath path)
        {
            // References form a DAG in a real store; a cycle in hostile metadata is cut rather than looped on.
            if (!state.TryAdd(path, false))
                return;
            var info = byPath[path];
            foreach (var reference in info.References)
            {
                if (reference != path && byPath.ContainsKey(reference))
                    Visit(reference);
            }
            state[path] = true;
            ordered.Add(info);
        }
    }

    /// <summary>
    /// Registers <paramref name="infos"/> with <c>nix-store [--store ROOT] --load-db</c>. Every path must
    /// exist in ROOT's store directory (for lazy paths: a LazyStore mount serves them there), or nothing is
    /// registered.
    /// </summary>
    public static async Task RegisterAsync(string? storeRoot, IReadOnlyCollection<NarInfo> infos, StoreDirectory storeDirectory,
        CancellationToken cancellationToken, string nixStore = "nix-store")
    {
        if (infos.Count == 0)
            return;
        var physical = PhysicalStoreDirectory(storeRoot, storeDirectory);
        var present = NamesIn(physical);
        var missing = infos.Select(i => i.StorePath.BaseName).Where(n => !present.Contains(n)).Distinct().Order(StringComparer.Ordinal).ToList();
        if (missing.Count > 0)
        {
            throw new NixRegistrationException(
                $"not registering: {string.Join(", ", missing)} {(missing.Count == 1 ? "does" : "do")} not exist in {physical} (is a LazyStore mount serving it?)");
        }
        await RunAsync(nixStore, storeRoot, ["--load-db"], Format(infos, storeDirectory), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// The names in the store directory, read once: a stat of each path through a mount would be a lookup
    /// each, and make the mount load each path's tree. A store directory that does not exist holds nothing.
    /// </summary>
    private static HashSet<string> NamesIn(string physical)
    {
        List<Nix.Interop.PosixDirectoryEntry> entries;
        try
        {
            entries = Nix.Interop.Posix.ReadDirectory(Nix.Interop.Posix.AtFdCwd, physical, 0, int.MaxValue);
        }
        catch (Nix.Interop.PosixException e) when (e.Errno == NoSuchFile)
        {
            return [];
        }
        catch (Nix.Interop.PosixException e)
        {
            throw new NixRegistrationException($"not registering: cannot read the store directory {physical}: {e.Message}");
        }
        return entries.Select(e => e.Name).ToHashSet(StringComparer.Ordinal);
    }

    private const int NoSuchFile = 2;

    /// <summary>
    /// Which of <paramref name="paths"/> Nix's database holds as valid, asked of Nix itself with
    /// <c>nix-store [--store ROOT] --check-validity --print-invalid PATH…</c> (which prints the invalid ones),
    /// <see cref="ValidityBatchSize"/> paths at a time.
    /// </summary>
    public static async Task<IReadOnlySet<StorePath>> QueryValidAsync(string? storeRoot, IReadOnlyCollection<StorePath> paths, StoreDirectory storeDirectory,
        CancellationToken cancellationToken, string nixStore = "nix-store")
    {
        var valid = new HashSet<StorePath>();
        foreach (var batch in paths.Distinct().Chunk(ValidityBatchSize))
        {
            var said = await RunAsync(nixStore, storeRoot, ["--check-validity", "--print-invalid", .. batch.Select(storeDirectory.Print)], null, cancellationToken)
                .ConfigureAwait(false);
            var invalid = new HashSet<StorePath>();
            foreach (var line in said.Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                if (!storeDirectory.TryParsePath(line, out var path) || !batch.Contains(path!))
                    throw new NixRegistrationException($"nix-store --check-validity printed '{line}', which is not one of the paths it was asked about");
                invalid.Add(path!);
            }
            valid.UnionWith(batch.Where(p => !invalid.Contains(p)));
        }
        return valid;
    }

    /// <summary>
    /// Copies the caches' signatures of registered paths into Nix's database from the narinfos LazyStore
    /// verified, asking no cache again: <paramref name="cache"/> holds them as a binary cache of narinfos
    /// alone (Nix 2.8's copy-sigs reads nothing else), and <c>nix store copy-sigs --substituter file://DIR
    /// PATH…</c> keeps each Sig of a narinfo whose NarHash, NarSize and references are the registered path's.
    /// Nix checks the signatures against its trusted keys when it verifies, as it would those of any cache.
    /// <c>--load-db</c> carries no signatures.
    /// </summary>
    /// <remarks>
    /// One call takes every path unless their full paths overflow execve's argument space
    /// (<see cref="ArgumentBatches"/>).
    /// </remarks>
    public static async Task CopySignaturesAsync(string? storeRoot, TemporaryNarInfoCache cache, IReadOnlyCollection<NarInfo> infos,
        StoreDirectory storeDirectory, CancellationToken cancellationToken, string nix = "nix")
    {
        var signed = infos.Where(i => i.Signatures.Count > 0).DistinctBy(i => i.StorePath).ToList();
        if (signed.Count == 0)
            return;
        var directory = await cache.HoldAsync(signed, cancellationToken).ConfigureAwait(false);
        string[] command = ["store", "copy-sigs", "--extra-experimental-features", "nix-command", "--substituter", "file://" + directory];
        var space = Nix.Interop.Posix.ArgumentSpace - EnvironmentSize() - ArgumentSize([nix, "--store", storeRoot ?? "", .. command]) - ExecSlack;
        foreach (var batch in ArgumentBatches(signed.Select(i => storeDirectory.Print(i.StorePath)).ToList(), space))
            await RunAsync(nix, storeRoot, [.. command, .. batch], null, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// <paramref name="arguments"/> split into as few runs as fit <paramref name="space"/> bytes of execve
    /// argument space each (<see cref="ArgumentSize"/>); in order, none empty. An argument larger than the
    /// space on its own goes alone (a store path is far below Linux's per-argument limit, 128 KiB).
    /// </summary>
    public static IEnumerable<string[]> ArgumentBatches(IReadOnlyList<string> arguments, long space)
    {
        var batch = new List<string>();
        long used = 0;
        foreach (var argument in arguments)
        {
            var size = ArgumentSize([argument]);
            if (batch.Count > 0 && used + size > space)
            {
                yield return [.. batch];
                batch.Clear();
                used = 0;
            }
            batch.Add(argument);
            used += size;
        }
        if (batch.Count > 0)
            yield return [.. batch];
    }

    /// <summary>What strings take of execve's argument space: their bytes, a NUL and a pointer each (fs/exec.c counts both).</summary>
    private static long ArgumentSize(IEnumerable<string> strings) =>
        strings.Sum(s => (long)Encoding.UTF8.GetByteCount(s) + 1 + IntPtr.Size);

    /// <summary>Argument space kept free for what execve adds (the program's path, the stack's alignment).</summary>
    private const long ExecSlack = 8 * 1024;

    /// <summary>The argument space the environment a child inherits takes, as NAME=VALUE strings.</summary>
    private static long EnvironmentSize() =>
        ArgumentSize(Environment.GetEnvironmentVariables().Cast<System.Collections.DictionaryEntry>().Select(e => $"{e.Key}={e.Value}"));

    /// <summary>Runs <c>nix-store [--store ROOT] ARGS…</c> (or another Nix tool) with <paramref name="input"/> on its standard input; returns its standard output.</summary>
    private static async Task<string> RunAsync(string nixStore, string? storeRoot, IReadOnlyList<string> arguments, string? input, CancellationToken cancellationToken)
    {
        var start = new ProcessStartInfo(nixStore)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        if (storeRoot is not null)
        {
            start.ArgumentList.Add("--store");
            start.ArgumentList.Add(storeRoot);
        }
        foreach (var argument in arguments)
            start.ArgumentList.Add(argument);
        Process process;
        try
        {
            process = Process.Start(start) ?? throw new NixRegistrationException($"could not start {nixStore}");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new NixRegistrationException($"could not run {nixStore} (is Nix installed and on PATH?): {e.Message}");
        }
        using (process)
        {
            var stderr = process.StandardError.ReadToEndAsync(CancellationToken.None);
            var stdout = process.StandardOutput.ReadToEndAsync(CancellationToken.None);
            try
            {
                if (input is not null)
                    await process.StandardInput.WriteAsync(input.AsMemory(), cancellationToken).ConfigureAwait(false);
                process.StandardInput.Close();
            }
            catch (IOException)
            {
                // nix-store stopped reading (it failed early): its exit status and stderr below say why.
            }
            try
            {
                await process.WaitForExitAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                process.Kill();
                throw;
            }
            if (process.ExitCode != 0)
            {
                var said = (await stderr.ConfigureAwait(false)).Trim();
                throw new NixRegistrationException(
                    $"{Describe(storeRoot, arguments)} failed (exit {process.ExitCode}): {said}");
            }
            return await stdout.ConfigureAwait(false);
        }
    }

    /// <summary>A Nix call as a user would type it, up to what it was asked to do: nix-store's operation flag, or the nix command's two words.</summary>
    private static string Describe(string? storeRoot, IReadOnlyList<string> arguments)
    {
        var store = storeRoot is null ? "" : " --store " + storeRoot;
        return arguments[0].StartsWith('-') ? $"nix-store{store} {arguments[0]}" : $"nix{store} {arguments[0]} {arguments[1]}";
    }

    /// <summary>Where ROOT's store directory is on disk: <c>ROOT/nix/store</c> for a chroot store, the store directory itself otherwise.</summary>
    public static string PhysicalStoreDirectory(string? storeRoot, StoreDirectory storeDirectory) =>
        storeRoot is null ? storeDirectory.Path : Path.Join(Path.GetFullPath(storeRoot), storeDirectory.Path);
}
