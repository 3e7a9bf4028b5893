namespace LazyStore.Tests.Support;

/// <summary>
/// A test that mounts a small tmpfs to run out of space for real (mounting needs root). Outside CI it is
/// skipped with a reason when not run as root; under <c>CI=true</c> it always runs, so a CI machine that
/// cannot mount fails loudly.
/// </summary>
public sealed class SmallFileSystemFactAttribute : FactAttribute
{
    public SmallFileSystemFactAttribute()
    {
        Skip = SmallFileSystem.SkipReason;
    }
}

/// <summary>Counterpart of <see cref="SmallFileSystemFactAttribute"/> for tests that also mount FUSE.</summary>
public sealed class SmallFileSystemFuseFactAttribute : FactAttribute
{
    public SmallFileSystemFuseFactAttribute()
    {
        Skip = SmallFileSystem.SkipReason ?? FuseAvailability.SkipReason;
    }
}

/// <summary>
/// A tmpfs of a fixed size mounted on a fresh directory, which a test fills to leave exactly as much free
/// space as it wants; Dispose unmounts it (lazily if still busy) and removes the directory.
/// </summary>
public sealed class SmallFileSystem : IDisposable
{
    private const int Page = 4096;

    private readonly TempDir _dir = new("lazystore-small-fs-");

    public SmallFileSystem(long size)
    {
        Path = _dir.Sub("fs");
        Directory.CreateDirectory(Path);
        var mount = RequiredTools.Require("mount");
        ExternalTool.Run(mount, ["-t", "tmpfs", "-o", $"size={size},mode=0755", "tmpfs", Path]).EnsureSuccess($"mount -t tmpfs -o size={size}");
    }

    public static string? SkipReason =>
        Environment.UserName != "root" && !TestEnvironment.InCi
            ? "mounting a tmpfs to fill needs root (under CI=true this test never skips)"
            : null;

    public string Path { get; }

    public string Sub(string relative) => System.IO.Path.Combine(Path, relative);

    private string Filler => Sub("filler");

    /// <summary>Bytes an unprivileged write may still use, as statvfs(2) says.</summary>
    public long Available => new DriveInfo(Path).AvailableFreeSpace;

    /// <summary>Writes a filler file until <paramref name="free"/> bytes are left, or less by under a page.</summary>
    public void Fill(long free)
    {
        using var filler = new FileStream(Filler, FileMode.Append, FileAccess.Write, FileShare.None, bufferSize: 0);
        var chunk = new byte[1 << 20];
        long excess;
        while ((excess = Available - free) > 0)
            filler.Write(chunk, 0, (int)Math.Min(chunk.Length, (excess + Page - 1) / Page * Page));
        Assert.InRange(Available, Math.Max(0, free - Page), free);
    }

    /// <summary>Removes the filler: the space is free again.</summary>
    public void Unfill() => File.Delete(Filler);

    public void Dispose()
    {
        try
        {
            var umount = RequiredTools.Require("umount");
            if (ExternalTool.Run(umount, [Path]).ExitCode != 0)
                ExternalTool.Run(umount, ["-l", Path]).EnsureSuccess("umount -l " + Path);
        }
        finally
        {
            _dir.Dispose();
        }
    }
}
