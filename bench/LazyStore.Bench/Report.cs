using System.Text;

namespace LazyStore.Bench;

internal static class Report
{
    public static string Markdown(BenchData data, BenchOptions options, IReadOnlyList<ScenarioResult> results)
    {
        var sb = new StringBuilder();
        sb.AppendLine($"Corpus: {data.Description}. Median of {options.Rounds} interleaved rounds; {Environment.ProcessorCount} cores.");
        sb.AppendLine();
        sb.AppendLine("| scenario | what | LazyStore | baseline | ratio | target | met |");
        sb.AppendLine("| --- | --- | --- | --- | --- | --- | --- |");
        foreach (var r in results)
        {
            string[] cells = r.SkipReason is { } skipped
                ? [r.Name, r.What, "skipped: " + skipped, "—", "—", r.Target, "skipped"]
                : [r.Name, r.What, r.Shown, r.BaselineShown, r.RatioShown, r.Target, r.MeetsTarget ? "yes" : "no"];
            // A pipeline such as `curl | xz -dc` would otherwise split the table's cells.
            sb.AppendLine("| " + string.Join(" | ", cells.Select(c => c.Replace("|", "\\|", StringComparison.Ordinal))) + " |");
        }
        return sb.ToString();
    }
}
