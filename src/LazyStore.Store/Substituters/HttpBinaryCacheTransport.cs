namespace LazyStore.Store.Substituters;

// Placeholder until the HTTP transport lands from its branch.
public sealed class HttpBinaryCacheTransport(Uri baseUri, TransportOptions options) : BinaryCacheTransport(baseUri)
{
    public TransportOptions Options { get; } = options;

    public override Task<byte[]?> TryGetBytesAsync(string relativePath, long maxBytes, CancellationToken cancellationToken) =>
        throw new NotSupportedException();

    public override Task<BinaryCacheResponse?> TryOpenAsync(string relativePath, CancellationToken cancellationToken) =>
        throw new NotSupportedException();
}
