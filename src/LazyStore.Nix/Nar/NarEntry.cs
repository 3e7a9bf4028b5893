namespace LazyStore.Nix.Nar;

public enum NarEntryType
{
    Regular,
    Symlink,
    Directory,
}

/// <summary>One node of a NAR, as <see cref="NarReader.GetNextEntry"/> yields it (parents before children).</summary>
public sealed class NarEntry
{
    private readonly NarReader? _reader;
    private readonly int _generation;

    internal NarEntry(NarReader? reader, int generation, string path, int depth, NarEntryType type,
        bool executable, long size, long payloadOffset, string? linkTarget)
    {
        _reader = reader;
        _generation = generation;
        Path = path;
        Depth = depth;
        Type = type;
        IsExecutable = executable;
        Size = size;
        PayloadOffset = payloadOffset;
        LinkTarget = linkTarget;
    }

    /// <summary>Path relative to the NAR root, components joined by '/'; empty for the root node.</summary>
    public string Path { get; }

    /// <summary>The last component of <see cref="Path"/>; empty for the root node.</summary>
    public string Name => Path.Length == 0 ? "" : Path[(Path.LastIndexOf('/') + 1)..];

    /// <summary>0 for the root node, 1 for its entries, and so on.</summary>
    public int Depth { get; }

    public NarEntryType Type { get; }

    public bool IsExecutable { get; }

    /// <summary>Payload size of a regular file; 0 for other types.</summary>
    public long Size { get; }

    /// <summary>Byte offset of a regular file's payload within the NAR (what Nix calls narOffset); 0 otherwise.</summary>
    public long PayloadOffset { get; }

    public string? LinkTarget { get; }

    /// <summary>
    /// The payload of a regular file as a read-only stream bounded to <see cref="Size"/> bytes. Valid until
    /// the reader moves to the next entry; whatever is left unread is skipped then.
    /// </summary>
    public Stream OpenPayload()
    {
        if (Type != NarEntryType.Regular)
            throw new InvalidOperationException($"'{Path}' is a {Type.ToString().ToLowerInvariant()}, not a regular file");
        if (_reader is null)
            throw new InvalidOperationException("this entry has no reader behind it");
        return _reader.OpenPayload(_generation);
    }

    public override string ToString() => $"{Type} '{Path}'";
}
