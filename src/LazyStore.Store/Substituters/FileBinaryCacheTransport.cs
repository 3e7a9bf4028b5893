namespace LazyStore.Store.Substituters;

/// <summary>A binary cache in a local directory (<c>file:///path</c>), as <c>nix copy --to file://…</c> writes it.</summary>
public sealed class FileBinaryCacheTransport : BinaryCacheTransport
{
    private readonly string _root;

    public FileBinaryCacheTransport(Uri baseUri)
        : base(baseUri)
    {
        if (!baseUri.IsFile)
            throw new ArgumentException($"'{baseUri}' is not a file:// URL", nameof(baseUri));
        _root = baseUri.LocalPath;
    }

    public override async Task<byte[]?> TryGetBytesAsync(string relativePath, long maxBytes, CancellationToken cancellationToken)
    {
        using var response = await TryOpenAsync(relativePath, cancellationToken).ConfigureAwait(false);
        if (response is null)
            return null;
        if (response.Length > maxBytes)
            throw new BinaryCacheException(Resolve(relativePath), $"file is {response.Length} bytes, more than the {maxBytes} allowed");
        var bytes = new byte[response.Length!.Value];
        await response.Body.ReadExactlyAsync(bytes, cancellationToken).ConfigureAwait(false);
        return bytes;
    }

    public override Task<BinaryCacheResponse?> TryOpenAsync(string relativePath, CancellationToken cancellationToken)
    {
        var path = LocalPath(relativePath);
        try
        {
            var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 0, FileOptions.SequentialScan);
            return Task.FromResult<BinaryCacheResponse?>(new BinaryCacheResponse(stream, stream.Length));
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return Task.FromResult<BinaryCacheResponse?>(null);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new BinaryCacheException(Resolve(relativePath), e.Message, e);
        }
    }

    private string LocalPath(string relativePath)
    {
        // Paths come from narinfo URL fields, which are remote data: never leave the cache directory.
        var full = Path.GetFullPath(Path.Combine(_root, relativePath));
        var root = Path.TrimEndingDirectorySeparator(Path.GetFullPath(_root)) + Path.DirectorySeparatorChar;
        if (!full.StartsWith(root, StringComparison.Ordinal))
            throw new BinaryCacheException(Resolve(relativePath), "path leaves the cache directory");
        return full;
    }
}
