namespace LazyStore.Tests.Support;

/// <summary>
/// A test that runs external command-line tools. Outside CI it is skipped with a reason when a tool is
/// not on PATH; under <c>CI=true</c> it always runs, so a missing tool fails loudly.
/// </summary>
public sealed class ToolFactAttribute : FactAttribute
{
    public ToolFactAttribute(params string[] tools)
    {
        Skip = RequiredTools.SkipReason(tools);
    }
}

/// <summary>Theory counterpart of <see cref="ToolFactAttribute"/>.</summary>
public sealed class ToolTheoryAttribute : TheoryAttribute
{
    public ToolTheoryAttribute(params string[] tools)
    {
        Skip = RequiredTools.SkipReason(tools);
    }
}

public static class RequiredTools
{
    public static string? SkipReason(IEnumerable<string> tools)
    {
        var missing = tools.Where(t => ExternalTool.Find(t) is null).ToList();
        if (missing.Count == 0 || TestEnvironment.InCi)
            return null;
        return $"not on PATH: {string.Join(", ", missing)} (Debian: xz-utils zstd bzip2 brotli gzip acl; under CI=true this test never skips)";
    }

    /// <summary>The tool's full path; throws with a clear message when it is missing (CI=true runs without skipping).</summary>
    public static string Require(string tool) =>
        ExternalTool.Find(tool) ?? throw new InvalidOperationException($"{tool} not found on PATH (install its Debian package; CI=true requires it)");
}
