using System.Diagnostics;

namespace LazyStore.Tests.Support;

/// <summary>
/// A test that drives the real Nix tools (Debian's <c>nix-bin</c>). Outside CI it is skipped with a
/// reason when <c>nix-store</c> is not on PATH; under <c>CI=true</c> it always runs, so a missing Nix
/// fails loudly instead of silently skipping.
/// </summary>
public sealed class RealNixFactAttribute : FactAttribute
{
    public RealNixFactAttribute()
    {
        if (!RealNix.IsAvailable && !TestEnvironment.InCi)
            Skip = "nix-store not on PATH (install Debian's nix-bin; under CI=true this test never skips)";
    }
}

/// <summary>Theory counterpart of <see cref="RealNixFactAttribute"/>.</summary>
public sealed class RealNixTheoryAttribute : TheoryAttribute
{
    public RealNixTheoryAttribute()
    {
        if (!RealNix.IsAvailable && !TestEnvironment.InCi)
            Skip = "nix-store not on PATH (install Debian's nix-bin; under CI=true this test never skips)";
    }
}

public static class TestEnvironment
{
    public static bool InCi => string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase);
}

/// <summary>Runs the real Nix command-line tools.</summary>
public static class RealNix
{
    public static bool IsAvailable => ExternalTool.Find("nix-store") is not null && ExternalTool.Find("nix") is not null;

    /// <summary>Throws with a clear message when Nix is missing; called by every real-Nix test.</summary>
    public static void Require()
    {
        if (!IsAvailable)
            throw new InvalidOperationException("nix-store/nix not found on PATH: install Debian's nix-bin (CI=true requires it)");
    }

    /// <summary><c>nix-store --dump PATH &gt; NARFILE</c>, streamed to the file.</summary>
    public static void Dump(string path, string narFile)
    {
        Require();
        ExternalTool.Run(ExternalTool.Find("nix-store")!, ["--dump", path], stdoutFile: narFile).EnsureSuccess($"nix-store --dump {path}");
    }

    /// <summary>Runs a Nix command with the experimental CLI enabled and a private, throw-away configuration.</summary>
    public static ProcessResult Run(string tool, params string[] args)
    {
        Require();
        var env = new Dictionary<string, string?>
        {
            ["NIX_CONFIG"] = "experimental-features = nix-command\nsandbox = false\nsubstituters =\n",
        };
        return ExternalTool.Run(tool, args, env);
    }
}
