using System.Diagnostics;
using System.Text;
using LazyStore.Nix;

namespace LazyStore.Store.Registration;

/// <summary>Nix refused to register paths; the message carries what nix-store said.</summary>
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
    public static void Register(string? storeRoot, IReadOnlyCollection<NarInfo> infos, StoreDirectory storeDirectory, string nixStore = "nix-store")
    {
        if (infos.Count == 0)
            return;
        var physical = PhysicalStoreDirectory(storeRoot, storeDirectory);
        var missing = infos.Where(i => !Exists(Path.Combine(physical, i.StorePath.BaseName))).Select(i => i.StorePath.BaseName).Order().ToList();
        if (missing.Count > 0)
        {
            throw new NixRegistrationException(
                $"not registering: {string.Join(", ", missing)} {(missing.Count == 1 ? "does" : "do")} not exist in {physical} (is a LazyStore mount serving it?)");
        }
        var (exitCode, said) = RunNix(nixStore, [.. StoreArguments(storeRoot), "--load-db"], Format(infos, storeDirectory));
        if (exitCode != 0)
            throw new NixRegistrationException($"nix-store{(storeRoot is null ? "" : " --store " + storeRoot)} --load-db failed (exit {exitCode}): {said}");
    }

    /// <summary>
    /// Copies the caches' signatures of registered paths into Nix's database with
    /// <c>nix store copy-sigs</c> (Nix asks each cache for the narinfo itself and keeps the signatures of
    /// those whose NarHash matches), so <c>nix store verify</c> finds them trusted. <c>--load-db</c>
    /// carries no signatures. Returns why it failed, or null; the paths stay valid either way.
    /// </summary>
    public static string? CopySignatures(string? storeRoot, IEnumerable<(string CacheUrl, StorePath Path)> paths, StoreDirectory storeDirectory, string nix = "nix")
    {
        foreach (var group in paths.GroupBy(p => p.CacheUrl, StringComparer.Ordinal))
        {
            foreach (var batch in group.Select(p => p.Path.ToFullPath(storeDirectory)).Chunk(500))
            {
                string[] arguments = [.. StoreArguments(storeRoot), "store", "copy-sigs", "--extra-experimental-features", "nix-command", "--substituter", group.Key, .. batch];
                var (exitCode, said) = RunNix(nix, arguments, input: null);
                if (exitCode != 0)
                    return $"nix store copy-sigs --substituter {group.Key} failed (exit {exitCode}): {said}";
            }
        }
        return null;
    }

    private static string[] StoreArguments(string? storeRoot) => storeRoot is null ? [] : ["--store", storeRoot];

    /// <summary>Runs a Nix tool to its end, feeding it <paramref name="input"/>; returns its exit code and what it said on stderr.</summary>
    private static (int ExitCode, string Stderr) RunNix(string tool, IEnumerable<string> arguments, string? input)
    {
        var start = new ProcessStartInfo(tool)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
            start.ArgumentList.Add(argument);
        Process process;
        try
        {
            process = Process.Start(start) ?? throw new NixRegistrationException($"could not start {tool}");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new NixRegistrationException($"could not run {tool} (is Nix installed and on PATH?): {e.Message}");
        }
        using (process)
        {
            var stderr = process.StandardError.ReadToEndAsync();
            var stdout = process.StandardOutput.ReadToEndAsync();
            if (input is not null)
                process.StandardInput.Write(input);
            process.StandardInput.Close();
            process.WaitForExit();
            stdout.GetAwaiter().GetResult();
            return (process.ExitCode, stderr.GetAwaiter().GetResult().Trim());
        }
    }

    /// <summary>Where ROOT's store directory is on disk: <c>ROOT/nix/store</c> for a chroot store, the store directory itself otherwise.</summary>
    public static string PhysicalStoreDirectory(string? storeRoot, StoreDirectory storeDirectory) =>
        storeRoot is null ? storeDirectory.Path : Path.Join(Path.GetFullPath(storeRoot), storeDirectory.Path);

    private static bool Exists(string path)
    {
        try
        {
            Nix.Interop.Posix.StatAt(Nix.Interop.Posix.AtFdCwd, path);
            return true;
        }
        catch (Nix.Interop.PosixException)
        {
            return false;
        }
    }
}
