using System.Text;
using LazyStore.Nix;
using LazyStore.Nix.Compression;
using LazyStore.Nix.IO;
using LazyStore.Nix.Nar;
using LazyStore.Nix.Signatures;

namespace LazyStore.Store.Substituters;

/// <summary>
/// Writes a binary cache directory in the layout <c>nix copy --to file://DIR</c> produces: nix-cache-info,
/// <c>nar/&lt;FileHash&gt;.nar[.ext]</c>, signed <c>&lt;hash&gt;.narinfo</c> files and <c>&lt;hash&gt;.ls</c> listings.
/// Everything streams; a NAR is never held in memory.
/// </summary>
public sealed class BinaryCacheWriter
{
    private readonly string _directory;

    public BinaryCacheWriter(string directory, CompressionMethod compression, SecretKey? signingKey,
        StoreDirectory? storeDirectory = null, bool writeListings = true, int? priority = null)
    {
        _directory = Path.GetFullPath(directory);
        Compression = compression;
        SigningKey = signingKey;
        StoreDirectory = storeDirectory ?? StoreDirectory.Default;
        WriteListings = writeListings;
        Directory.CreateDirectory(Path.Combine(_directory, "nar"));
        var info = new NixCacheInfo { StoreDirectory = StoreDirectory, WantMassQuery = true, Priority = priority };
        File.WriteAllText(Path.Combine(_directory, NixCacheInfo.FileName), info.ToString());
    }

    public CompressionMethod Compression { get; }

    public SecretKey? SigningKey { get; }

    public StoreDirectory StoreDirectory { get; }

    public bool WriteListings { get; }

    /// <summary>
    /// Adds the tree at <paramref name="source"/> as a content-addressed store path named
    /// <paramref name="name"/> (the path <c>nix-store --add</c> would give it) that refers to
    /// <paramref name="references"/>.
    /// </summary>
    public NarInfo AddTree(string source, string name, IReadOnlyList<StorePath>? references = null)
    {
        references ??= [];
        var nar = Path.Combine(_directory, "nar", $".{Guid.NewGuid():N}.nar.tmp");
        try
        {
            using (var file = new FileStream(nar, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20))
                NarWriter.Dump(source, file);
            var inspected = Inspect(nar);
            var path = StorePath.MakeSourcePath(inspected.NarHash, name, references, StoreDirectory);
            return AddNar(nar, path, inspected, references, $"fixed:r:{inspected.NarHash}");
        }
        finally
        {
            File.Delete(nar);
        }
    }

    /// <summary>Adds a NAR file as store path <paramref name="path"/>; the NAR is read twice (hash and listing, then compression).</summary>
    public NarInfo AddNar(string narFile, StorePath path, IReadOnlyList<StorePath> references, StorePath? deriver = null) =>
        AddNar(narFile, path, Inspect(narFile), references, contentAddress: null, deriver);

    private sealed record InspectedNar(NixHash NarHash, long NarSize, NarListingNode Listing);

    /// <summary>One pass over a NAR: its hash, its size and its tree.</summary>
    private static InspectedNar Inspect(string narFile)
    {
        using var file = new FileStream(narFile, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20, FileOptions.SequentialScan);
        using var hashing = new HashingReadStream(file, NixHashAlgorithm.Sha256, leaveOpen: true);
        var listing = NarListing.FromNar(hashing);
        hashing.Drain();
        return new InspectedNar(hashing.FinishHash(), hashing.BytesRead, listing);
    }

    private NarInfo AddNar(string narFile, StorePath path, InspectedNar nar, IReadOnlyList<StorePath> references,
        string? contentAddress, StorePath? deriver = null)
    {
        var compressed = Path.Combine(_directory, "nar", $".{Guid.NewGuid():N}.tmp");
        try
        {
            NixHash fileHash;
            long fileSize;
            using (var output = new FileStream(compressed, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1 << 20))
            {
                using (var input = new FileStream(narFile, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20, FileOptions.SequentialScan))
                using (var encoder = NarCompression.Compress(Compression, output, leaveOpen: true))
                    input.CopyTo(encoder, 1 << 20);
                output.Position = 0;
                using var hashing = new HashingReadStream(output, NixHashAlgorithm.Sha256, leaveOpen: true);
                hashing.Drain();
                fileHash = hashing.FinishHash();
                fileSize = output.Length;
            }
            var url = $"nar/{fileHash.ToNix32()}{NarCompression.NarFileExtension(Compression)}";
            File.Move(compressed, Path.Combine(_directory, url), overwrite: true);
            var info = new NarInfo
            {
                StorePath = path,
                StoreDirectory = StoreDirectory,
                Url = url,
                Compression = NarCompression.ToNarInfoValue(Compression),
                FileHash = fileHash,
                FileSize = (ulong)fileSize,
                NarHash = nar.NarHash,
                NarSize = (ulong)nar.NarSize,
                References = references.Order().ToList(),
                Deriver = deriver,
                ContentAddress = contentAddress,
            };
            if (SigningKey is not null)
                info = info.Sign(SigningKey);
            if (WriteListings)
                File.WriteAllText(Path.Combine(_directory, path.HashPart + ".ls"), NarListing.ToListingFile(nar.Listing), new UTF8Encoding(false));
            File.WriteAllText(Path.Combine(_directory, path.HashPart + ".narinfo"), info.ToString(), new UTF8Encoding(false));
            return info;
        }
        finally
        {
            if (File.Exists(compressed))
                File.Delete(compressed);
        }
    }
}
