namespace LazyStore.Fuse;

/// <summary>A filesystem could not be mounted, or its session failed; the message says where and why.</summary>
public sealed class FuseMountException : IOException
{
    public FuseMountException(string message)
        : base(message)
    {
    }

    public FuseMountException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
