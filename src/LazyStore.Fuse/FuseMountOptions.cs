namespace LazyStore.Fuse;

/// <summary>Whether the kernel lists directories with readdirplus (names with attributes) or readdir.</summary>
public enum FuseReaddirPlusMode
{
    /// <summary>Plain readdir only; attributes come from lookups.</summary>
    Off,

    /// <summary>The kernel chooses: readdirplus when a listing is followed by lookups (ls -l), readdir otherwise (FUSE_CAP_READDIRPLUS_AUTO).</summary>
    Auto,

    /// <summary>Always readdirplus.</summary>
    Always,
}

/// <summary>How a <see cref="FuseMount"/> is mounted and run.</summary>
public sealed record FuseMountOptions
{
    /// <summary>The mount's source in the mount table (<c>fsname=</c>); libfuse's default when null.</summary>
    public string? FileSystemName { get; init; }

    /// <summary>The mount type becomes <c>fuse.&lt;subtype&gt;</c> (<c>subtype=</c>).</summary>
    public string? Subtype { get; init; }

    /// <summary>Let users other than the mounting one in (<c>allow_other</c>; needs <c>user_allow_other</c> in /etc/fuse.conf unless root).</summary>
    public bool AllowOther { get; init; }

    /// <summary>Let the kernel check permissions from the mode bits (<c>default_permissions</c>); access is then never called.</summary>
    public bool DefaultPermissions { get; init; }

    /// <summary>Mount read-only (<c>ro</c>): the kernel refuses writes with EROFS before asking the filesystem.</summary>
    public bool ReadOnly { get; init; }

    /// <summary>Further <c>-o</c> options passed to libfuse as they are (for example <c>noatime</c>, <c>max_read=131072</c>).</summary>
    public IReadOnlyList<string> AdditionalOptions { get; init; } = [];

    /// <summary>
    /// The most libfuse worker threads that read requests at once. Handlers that complete
    /// asynchronously free their worker at once, so a few suffice for many slow requests.
    /// </summary>
    public int MaxThreads { get; init; } = 16;

    public FuseReaddirPlusMode ReaddirPlus { get; init; } = FuseReaddirPlusMode.Auto;

    /// <summary>Mount even where something is already mounted (stacking over it); refused by default.</summary>
    public bool AllowMountOverMountPoint { get; init; }

    /// <summary>Where handler exceptions and libfuse's messages go; standard error when null.</summary>
    public TextWriter? Log { get; init; }

    /// <summary>How long <see cref="FuseMount.Dispose"/> waits for the session to end.</summary>
    public TimeSpan DisposeTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Whether an unmount that does not end the session may abort its connection through fusectl; off only to test the ending without it.</summary>
    internal bool AbortThroughControlFileSystem { get; init; } = true;
}
