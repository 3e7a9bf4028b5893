namespace LazyStore.Fuse;

/// <summary>
/// A name resolved to a node: the reply to lookup, mknod, mkdir, symlink, link and create, and one
/// entry of readdirplus. Every such reply with a non-zero <see cref="NodeId"/> adds one to the
/// kernel's lookup count of that node, which <see cref="IFuseFileSystem.Forget"/> later gives back.
/// </summary>
public readonly record struct FuseEntry
{
    /// <summary>
    /// The node id the kernel uses for this node in later requests; unique while the kernel holds a
    /// lookup count on it. <see cref="IFuseFileSystem.RootNodeId"/> is the root. 0 makes a negative
    /// entry (lookup only): the name does not exist, and the kernel remembers that for <see cref="EntryTimeout"/>.
    /// </summary>
    public ulong NodeId { get; init; }

    /// <summary>Distinguishes successive nodes that reuse a node id (only matters for NFS export).</summary>
    public ulong Generation { get; init; }

    public FuseAttributes Attributes { get; init; }

    /// <summary>How long the kernel may cache the name (or, for a negative entry, its absence).</summary>
    public TimeSpan EntryTimeout { get; init; }

    /// <summary>How long the kernel may cache <see cref="Attributes"/>.</summary>
    public TimeSpan AttributeTimeout { get; init; }

    public bool IsNegative => NodeId == 0;

    /// <summary>
    /// A lookup answer for a name that does not exist, cached by the kernel for <paramref name="timeout"/>:
    /// cheaper than throwing ENOENT, and with a zero timeout equivalent to it.
    /// </summary>
    public static FuseEntry Negative(TimeSpan timeout) => new() { EntryTimeout = timeout };
}
