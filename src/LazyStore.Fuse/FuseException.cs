using System.Runtime.InteropServices;

namespace LazyStore.Fuse;

/// <summary>
/// Thrown by a filesystem handler to answer a request with an error number; the binding replies
/// <see cref="Errno"/> to the kernel and the caller's system call fails with it. Any other exception
/// is logged and answered with <see cref="Errno.EIO"/>.
/// </summary>
public sealed class FuseException : Exception
{
    public FuseException(int errno)
        : this(errno, Marshal.GetPInvokeErrorMessage(errno))
    {
    }

    public FuseException(int errno, string message)
        : base(message)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(errno);
        Errno = errno;
    }

    public FuseException(int errno, string message, Exception innerException)
        : base(message, innerException)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(errno);
        Errno = errno;
    }

    /// <summary>The positive error number the request is answered with.</summary>
    public int Errno { get; }
}
