using System.Globalization;
using LazyStore.Nix;
using LazyStore.Nix.Signatures;
using LazyStore.Tests.Support;

namespace LazyStore.Tests.Integration;

/// <summary>
/// A signed binary cache written by the real <c>nix copy</c> (zstd, with listings) holding a closure
/// built by the real Nix: a static busybox, ten documentation trees of this machine, a path of about
/// 100 MB of real libraries with a small README, a path that is a single file, and on top the output of a derivation (busybox as its
/// builder) that refers to all of them. Built once for the tests that share it.
/// </summary>
public sealed class NixClosureCache : IDisposable
{
    public const long LargeBytes = 100L * 1024 * 1024;

    private readonly TempDir _dir = new("lazystore-nix-closure-");

    public NixClosureCache()
    {
        if (FuseAvailability.SkipReason is not null || (!RealNix.IsAvailable && !TestEnvironment.InCi))
        {
            CacheDir = Busybox = Large = Note = Top = "";
            Docs = Closure = [];
            TrustedKey = null!;
            return;
        }
        var source = _dir.Sub("source-root");
        RealNix.Run("nix-store", "--generate-binary-cache-key", "lazystore-e2e-1", _dir.Sub("sk"), _dir.Sub("pk")).EnsureSuccess("generate a cache key");
        TrustedKey = PublicKey.Parse(File.ReadAllText(_dir.Sub("pk")).Trim());

        var busybox = _dir.Sub("busybox");
        Directory.CreateDirectory(Path.Combine(busybox, "bin"));
        File.Copy(BusyboxBinary, Path.Combine(busybox, "bin", "busybox"));
        Busybox = Add(source, busybox);
        var large = _dir.Sub("large");
        FixtureTrees.WriteLargeFile(large, LargeBytes);
        Large = Add(source, large);
        Docs = DocumentationTrees(10).Select(d => Add(source, d)).ToList();
        File.WriteAllText(_dir.Sub("note.txt"), "a store path that is a single file\n");
        Note = Add(source, _dir.Sub("note.txt"));

        var expression = _dir.Sub("top.nix");
        File.WriteAllText(expression, Derivation("top", $"{Shell} mkdir $out; echo {string.Join(' ', Docs.Prepend(Note).Prepend(Large).Prepend(Busybox))} > $out/refs",
            [Busybox, Large, Note, .. Docs]));
        Top = RealNix.Run("nix-build", "--store", source, "--no-out-link", expression).EnsureSuccess("nix-build top.nix").StdoutText.Trim();
        Closure = RealNix.Run("nix-store", "--store", source, "-qR", Top).EnsureSuccess("nix-store -qR")
            .StdoutText.Split('\n', StringSplitOptions.RemoveEmptyEntries).Order(StringComparer.Ordinal).ToList();

        CacheDir = _dir.Sub("cache");
        RealNix.Run("nix", "copy", "--store", source, "--to",
            $"file://{CacheDir}?compression=zstd&write-nar-listing=true&secret-key={_dir.Sub("sk")}", Top).EnsureSuccess("nix copy");
    }

    public const string BusyboxBinary = "/bin/busybox";

    public string CacheDir { get; }

    public PublicKey TrustedKey { get; }

    /// <summary>The busybox path: <c>bin/busybox</c>, run as a builder by the name Nix gives it.</summary>
    public string Busybox { get; }

    /// <summary>The ~100 MB path: <c>large.bin</c> and a small <c>README</c>.</summary>
    public string Large { get; }

    public IReadOnlyList<string> Docs { get; }

    /// <summary>A path that is a single file (Nix hard-links such inputs into a build chroot, or copies them).</summary>
    public string Note { get; }

    /// <summary>The derivation output referring to every other path.</summary>
    public string Top { get; }

    /// <summary>Every path of <see cref="Top"/>'s closure, as full store paths in name order.</summary>
    public IReadOnlyList<string> Closure { get; }

    /// <summary>busybox's shell, by which builders run their script.</summary>
    public string Shell => Busybox + "/bin/busybox";

    /// <summary>A derivation whose builder is the busybox shell running <paramref name="script"/>, with <paramref name="inputs"/> as input sources.</summary>
    public string Derivation(string name, string script, IEnumerable<string> inputs) =>
        string.Create(CultureInfo.InvariantCulture, $$"""
            derivation {
              name = "{{name}}";
              system = builtins.currentSystem;
              builder = "${builtins.storePath "{{Busybox}}"}/bin/busybox";
              args = [ "sh" "-c" "{{script.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal).Replace("$", "\\$", StringComparison.Ordinal)}}" ];
              inputs = [ {{string.Join(' ', inputs.Select(i => $"(builtins.storePath \"{i}\")"))}} ];
            }
            """);

    public static StorePath ToStorePath(string fullPath) => StorePath.FromBaseName(Path.GetFileName(fullPath));

    private static string Add(string storeRoot, string tree) =>
        RealNix.Run("nix-store", "--store", storeRoot, "--add", tree).EnsureSuccess("nix-store --add " + tree).StdoutText.Trim();

    /// <summary>
    /// <paramref name="count"/> package directories of /usr/share/doc with a regular file each (Debian
    /// keeps at least the copyright file even in slim images), copied so their names are store-path safe.
    /// </summary>
    private IEnumerable<string> DocumentationTrees(int count)
    {
        var found = Directory.EnumerateDirectories("/usr/share/doc").Order(StringComparer.Ordinal)
            .Where(d => File.Exists(Path.Combine(d, "copyright")) && Path.GetFileName(d).All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '.' or '_' or '+'))
            .Take(count).ToList();
        if (found.Count < count)
            throw new InvalidOperationException($"/usr/share/doc has only {found.Count} package directories with a copyright file; the end-to-end tests need {count}");
        Directory.CreateDirectory(_dir.Sub("doc"));
        return found.Select(d =>
        {
            var copy = _dir.Sub("doc/" + Path.GetFileName(d));
            var copied = ExternalTool.Run("cp", ["-r", "--no-preserve=all", d, copy]);
            copied.EnsureSuccess("cp -r " + d);
            return copy;
        }).ToList();
    }

    public void Dispose() => _dir.Dispose();
}
