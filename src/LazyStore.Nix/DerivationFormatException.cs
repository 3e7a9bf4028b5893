namespace LazyStore.Nix;

/// <summary>
/// A malformed derivation (<c>.drv</c>): names the file, the part of the derivation (outputs, inputDrvs,
/// inputSrcs, system, builder, args, env) and the character offset where the text went wrong.
/// </summary>
public sealed class DerivationFormatException : MetadataFormatException
{
    public DerivationFormatException(string source, MetadataErrorKind kind, string? field, int offset, string reason, Exception? inner = null)
        : base(source, kind, field, null, $"at offset {offset}: {reason}", inner)
    {
        Offset = offset;
    }

    /// <summary>The 0-based character offset in the derivation's text.</summary>
    public int Offset { get; }
}
