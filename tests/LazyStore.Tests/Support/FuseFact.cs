using LazyStore.Fuse;

namespace LazyStore.Tests.Support;

/// <summary>
/// A test that mounts a FUSE filesystem. Outside CI it is skipped with a reason when /dev/fuse or
/// libfuse3 is missing; under <c>CI=true</c> it always runs, so a machine without FUSE fails loudly.
/// </summary>
public sealed class FuseFactAttribute : FactAttribute
{
    public FuseFactAttribute()
    {
        Skip = FuseAvailability.SkipReason;
    }
}

/// <summary>Theory counterpart of <see cref="FuseFactAttribute"/>.</summary>
public sealed class FuseTheoryAttribute : TheoryAttribute
{
    public FuseTheoryAttribute()
    {
        Skip = FuseAvailability.SkipReason;
    }
}

public static class FuseAvailability
{
    public static string? SkipReason =>
        FuseMount.UnavailableReason is { } reason && !TestEnvironment.InCi
            ? $"{reason} (Debian: fuse3 libfuse3-3; under CI=true this test never skips)"
            : null;
}

/// <summary>
/// A FUSE test that acts as other users (<see cref="TestUser"/>), which only root can. Outside CI it is
/// skipped with a reason when not root, or when FUSE or one of <paramref name="tools"/> is missing; under
/// <c>CI=true</c> it always runs.
/// </summary>
public sealed class RootFuseFactAttribute : FactAttribute
{
    public RootFuseFactAttribute(params string[] tools)
    {
        Skip = FuseAvailability.SkipReason ?? RequiredTools.SkipReason(tools)
            ?? (!Environment.IsPrivilegedProcess && !TestEnvironment.InCi ? "acts as other users, which needs root (under CI=true this test never skips)" : null);
    }
}
