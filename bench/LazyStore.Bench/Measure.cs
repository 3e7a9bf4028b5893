using System.Diagnostics;

namespace LazyStore.Bench;

internal interface IScenario
{
    string Name { get; }

    ScenarioResult Run(BenchData data, int rounds);
}

/// <summary>
/// One scenario's outcome: LazyStore's and the baseline's median throughput over the same bytes, and
/// the target the ratio (or, without a baseline, the absolute rate) must meet.
/// </summary>
internal sealed record ScenarioResult(string Name, string What, long Bytes, double OursSeconds, string? Baseline, double? BaselineSeconds, string Target, bool MeetsTarget)
{
    public double OursRate => Bytes / OursSeconds;

    public double? BaselineRate => BaselineSeconds is { } s ? Bytes / s : null;

    public double? Ratio => BaselineRate is { } b ? OursRate / b : null;

    /// <summary>A figure other than a rate (peak memory, say), shown instead of LazyStore's throughput.</summary>
    public string? Figure { get; init; }

    public string Shown => Figure ?? $"{OursRate / 1e6:F0} MB/s";

    /// <summary>The baseline's figure when it is not a rate (a time, say).</summary>
    public string? BaselineFigure { get; init; }

    /// <summary>The comparison when it is not a throughput ratio (a ratio of times or of bytes).</summary>
    public string? RatioFigure { get; init; }

    /// <summary>Why the scenario could not run here (no FUSE, not root); a skipped scenario fails no target.</summary>
    public string? SkipReason { get; init; }

    public string BaselineShown => BaselineFigure ?? (BaselineRate is { } b ? $"{Baseline}: {b / 1e6:F0} MB/s" : "—");

    public string RatioShown => RatioFigure ?? (Ratio is { } x ? $"{x:F2}×" : "—");

    public string Summary => SkipReason is not null ? $"{Name}: skipped: {SkipReason}" : Figure is not null
        ? $"{Name}: {Figure}{(BaselineFigure is not null ? $" vs {BaselineFigure} = {RatioShown}" : "")} (target {Target}) {(MeetsTarget ? "ok" : "MISSED")}"
        : Ratio is { } r
        ? $"{Name}: {OursRate / 1e6:F0} MB/s vs {Baseline} {BaselineRate!.Value / 1e6:F0} MB/s = {r:F2}× (target {Target}) {(MeetsTarget ? "ok" : "MISSED")}"
        : $"{Name}: {OursRate / 1e6:F0} MB/s (target {Target}) {(MeetsTarget ? "ok" : "MISSED")}";
}

internal static class Measure
{
    /// <summary>Runs each action <paramref name="rounds"/> times, interleaved, and returns their median seconds.</summary>
    public static (double First, double Second) Interleaved(int rounds, Action first, Action? second)
    {
        var a = new List<double>();
        var b = new List<double>();
        first();
        second?.Invoke();
        for (int i = 0; i < rounds; i++)
        {
            a.Add(Time(first));
            if (second is not null)
                b.Add(Time(second));
        }
        return (Median(a), second is null ? double.NaN : Median(b));
    }

    public static double Time(Action action)
    {
        var sw = Stopwatch.StartNew();
        action();
        return sw.Elapsed.TotalSeconds;
    }

    /// <summary>Runs a shell pipeline with its output discarded; throws if it fails.</summary>
    public static void Shell(string command)
    {
        var psi = new ProcessStartInfo("sh") { ArgumentList = { "-c", command }, UseShellExecute = false, RedirectStandardOutput = false };
        using var p = Process.Start(psi)!;
        p.WaitForExit();
        if (p.ExitCode != 0)
            throw new InvalidOperationException($"command failed (exit {p.ExitCode}): {command}");
    }

    private static double Median(List<double> values)
    {
        values.Sort();
        return values[values.Count / 2];
    }
}
