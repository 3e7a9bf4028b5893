namespace LazyStore.Nix.Nar;

/// <summary>
/// A NAR broke one of the grammar rules in <see cref="NarGrammar"/>. An <see cref="IOException"/>
/// (InvalidDataException is sealed) because a NAR is always read from a stream. Carries the byte offset of the
/// offending string (its length prefix) or byte, and what the grammar expected there.
/// </summary>
public sealed class NarFormatException : IOException
{
    public NarFormatException(long offset, string expected, string? found = null)
        : base(found is null
            ? $"invalid NAR at byte {offset}: expected {expected}"
            : $"invalid NAR at byte {offset}: expected {expected}, found {found}")
    {
        Offset = offset;
        Expected = expected;
        Found = found;
    }

    /// <summary>Byte offset from the start of the NAR at which the violation was detected.</summary>
    public long Offset { get; }

    /// <summary>What the grammar required at <see cref="Offset"/>.</summary>
    public string Expected { get; }

    /// <summary>What was there instead, when it can be shown.</summary>
    public string? Found { get; }
}
