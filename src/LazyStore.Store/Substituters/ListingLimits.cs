namespace LazyStore.Store.Substituters;

/// <summary>
/// The largest cache listing (<c>&lt;hash&gt;.ls</c>) LazyStore accepts. A listing is an optimisation: one
/// over a bound is treated as absent and the path's NAR is read instead, so a hostile or merely huge
/// listing costs neither unbounded memory nor minutes of parsing.
/// </summary>
public sealed record ListingLimits
{
    /// <summary>Bytes downloaded, and bytes after decompression (64 MiB: about 600,000 entries of typical names).</summary>
    public long MaxBytes { get; init; } = 64L << 20;

    /// <summary>Entries of the tree, the root included.</summary>
    public int MaxEntries { get; init; } = 500_000;

    public static ListingLimits Default { get; } = new();
}
