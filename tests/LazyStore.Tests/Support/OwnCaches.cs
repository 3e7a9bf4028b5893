using System.Text.RegularExpressions;
using LazyStore.Nix;
using LazyStore.Nix.Compression;
using LazyStore.Nix.Signatures;
using LazyStore.Store.Substituters;

namespace LazyStore.Tests.Support;

/// <summary>
/// Binary caches written by LazyStore's own <see cref="BinaryCacheWriter"/> (xz, zstd, none), signed, with
/// listings, holding the edge-case tree, a multi-megabyte file, and a path referring to both.
/// </summary>
public sealed class OwnCaches : IDisposable
{
    public static readonly CompressionMethod[] Methods = [CompressionMethod.None, CompressionMethod.Xz, CompressionMethod.Zstd];

    private readonly TempDir _dir = new("lazystore-own-caches-");
    private readonly Dictionary<CompressionMethod, NarInfo[]> _infos = [];

    public OwnCaches()
    {
        Key = SecretKey.Generate("own-cache-1");
        OtherKey = SecretKey.Generate("own-cache-1");
        FixtureTrees.WriteEdgeCases(SourceTree);
        FixtureTrees.WriteLargeFile(SourceLarge, 3L * 1024 * 1024);
        foreach (var method in Methods)
        {
            var writer = new BinaryCacheWriter(CacheDir(method), method, Key);
            var tree = writer.AddTree(SourceTree, "tree");
            var large = writer.AddTree(SourceLarge, "large");
            Directory.CreateDirectory(_dir.Sub("src/referrer"));
            File.WriteAllText(_dir.Sub("src/referrer/refs"), tree.StorePath.ToFullPath() + "\n" + large.StorePath.ToFullPath() + "\n");
            var referrer = writer.AddTree(_dir.Sub("src/referrer"), "referrer", [tree.StorePath, large.StorePath]);
            _infos[method] = [tree, large, referrer];
        }
    }

    public SecretKey Key { get; }

    public SecretKey OtherKey { get; }

    public string SourceTree => _dir.Sub("src/tree");

    public string SourceLarge => _dir.Sub("src/large");

    public string CacheDir(CompressionMethod method) => _dir.Sub("cache-" + NarCompression.ToNarInfoValue(method));

    /// <summary>The tree, large and referrer paths' narinfos in the cache of <paramref name="method"/>.</summary>
    public IReadOnlyList<NarInfo> Infos(CompressionMethod method) => _infos[method];

    /// <summary>A private copy of a cache, for a test to damage.</summary>
    public string Copy(CompressionMethod method, string destination)
    {
        var source = CacheDir(method);
        foreach (var file in Directory.EnumerateFiles(source, "*", SearchOption.AllDirectories))
        {
            var target = Path.Combine(destination, Path.GetRelativePath(source, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }
        return destination;
    }

    public void Dispose()
    {
        Key.Dispose();
        OtherKey.Dispose();
        _dir.Dispose();
    }
}

/// <summary>Ways to damage a binary cache on disk, each as an attacker or a broken server would.</summary>
public static class CacheDamage
{
    public static string NarInfoFile(string cache, NarInfo info) => Path.Combine(cache, info.StorePath.HashPart + ".narinfo");

    public static string NarFile(string cache, NarInfo info) => Path.Combine(cache, info.Url);

    public static void FlipByte(string file, long offset)
    {
        using var stream = new FileStream(file, FileMode.Open, FileAccess.ReadWrite);
        stream.Position = offset;
        var b = stream.ReadByte();
        stream.Position = offset;
        stream.WriteByte((byte)(b ^ 0x01));
    }

    /// <summary>Rewrites fields of a narinfo's text, drops its signatures, and signs it again with <paramref name="key"/> if given.</summary>
    public static NarInfo RewriteNarInfo(string cache, NarInfo info, SecretKey? key, params (string Field, string Value)[] changes)
    {
        var file = NarInfoFile(cache, info);
        var text = File.ReadAllText(file);
        text = Regex.Replace(text, "^Sig: .*\n", "", RegexOptions.Multiline);
        foreach (var (field, value) in changes)
            text = Regex.Replace(text, $"^{field}: .*$", $"{field}: {value}", RegexOptions.Multiline);
        var rewritten = NarInfo.Parse(text);
        if (key is not null)
            rewritten = rewritten.Sign(key);
        File.WriteAllText(file, rewritten.ToString());
        return rewritten;
    }

    /// <summary>Replaces the NAR file with <paramref name="contents"/> and makes FileHash/FileSize (unsigned fields) match it.</summary>
    public static NarInfo ReplaceNarFile(string cache, NarInfo info, SecretKey key, byte[] contents)
    {
        File.WriteAllBytes(NarFile(cache, info), contents);
        return RewriteNarInfo(cache, info, key,
            ("FileHash", NixHash.Compute(NixHashAlgorithm.Sha256, contents).ToString()),
            ("FileSize", contents.Length.ToString(System.Globalization.CultureInfo.InvariantCulture)));
    }
}
