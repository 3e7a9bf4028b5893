using System.Security.Cryptography;
using LazyStore.Nix.Nar;
using LazyStore.Tests.Support;
using Xunit.Abstractions;

namespace LazyStore.Tests.Nix.Nar;

/// <summary>Byte-for-byte agreement with the real Nix (Debian nix-bin) on dump, ls, cat and restore.</summary>
public class RealNixNarTests(ITestOutputHelper output)
{
    private static string Sha256(string file)
    {
        using var f = File.OpenRead(file);
        return Convert.ToHexString(SHA256.HashData(f));
    }

    /// <summary>Dumps with both tools, then compares the NARs and the JSON listings of Nix's NAR.</summary>
    private void CrossCheck(string tree, TempDir work)
    {
        var nixNar = work.Sub("nix.nar");
        var ourNar = work.Sub("ours.nar");
        File.Delete(nixNar);
        File.Delete(ourNar);
        RealNix.Dump(tree, nixNar);
        using (var f = File.Create(ourNar))
            NarWriter.Dump(tree, f);
        Assert.True(new FileInfo(nixNar).Length > 0);
        Assert.Equal(new FileInfo(nixNar).Length, new FileInfo(ourNar).Length);
        Assert.True(Sha256(nixNar) == Sha256(ourNar), $"lazystore nar dump differs from nix-store --dump for {tree}");

        var nixJson = RealNix.Run("nix", "nar", "ls", "--json", "-R", nixNar, "/").EnsureSuccess("nix nar ls").StdoutText.TrimEnd('\n');
        var ours = CliRunner.Run("nar", "ls", "--json", "-R", nixNar, "/");
        Assert.True(ours.ExitCode == 0, ours.Stderr);
        Assert.Equal(nixJson, ours.StdoutText.TrimEnd('\n'));

        var nixLong = RealNix.Run("nix", "nar", "ls", "-lR", nixNar, "/").EnsureSuccess("nix nar ls -lR").StdoutText;
        Assert.Equal(nixLong, CliRunner.Run("nar", "ls", "-lR", nixNar, "/").StdoutText);
        output.WriteLine($"{tree}: {new FileInfo(nixNar).Length} bytes, identical");
    }

    [RealNixFact]
    public void Dump_and_ls_match_nix_on_a_tree_of_edge_cases()
    {
        using var work = new TempDir();
        FixtureTrees.WriteEdgeCases(work.Sub("tree"));
        CrossCheck(work.Sub("tree"), work);
    }

    [RealNixFact]
    public void Dump_and_ls_match_nix_on_single_files_and_symlinks()
    {
        using var work = new TempDir();
        FixtureTrees.WriteEdgeCases(work.Sub("tree"));
        CrossCheck(work.Sub("tree/tool.sh"), work);
        CrossCheck(work.Sub("tree/rel-link"), work);
        CrossCheck(work.Sub("tree/empty"), work);
    }

    [RealNixFact]
    public void Dump_matches_nix_on_a_file_over_100_megabytes()
    {
        using var work = new TempDir();
        FixtureTrees.WriteLargeFile(work.Sub("tree"), 101L * 1024 * 1024);
        CrossCheck(work.Sub("tree"), work);
    }

    [RealNixFact]
    public void Dump_and_ls_match_nix_on_real_trees_chosen_at_run_time()
    {
        int seed = Environment.TickCount;
        var trees = FixtureTrees.PickRealTrees(seed, 4);
        output.WriteLine($"seed {seed}: {string.Join(", ", trees)}");
        Assert.NotEmpty(trees);
        using var work = new TempDir();
        foreach (var tree in trees)
            CrossCheck(tree, work);
    }

    [RealNixFact]
    public void Cat_matches_nix_nar_cat()
    {
        using var work = new TempDir();
        FixtureTrees.WriteEdgeCases(work.Sub("tree"));
        var nar = work.Sub("t.nar");
        RealNix.Dump(work.Sub("tree"), nar);
        foreach (var path in new[] { "/plain.txt", "/sizes/f300001", "/names/日本語", "/empty" })
        {
            var nix = RealNix.Run("nix", "nar", "cat", nar, path).EnsureSuccess("nix nar cat");
            var ours = CliRunner.Run("nar", "cat", nar, path);
            Assert.Equal(0, ours.ExitCode);
            Assert.Equal(nix.Stdout, ours.Stdout);
        }
        Assert.NotEqual(0, RealNix.Run("nix", "nar", "cat", nar, "/names").ExitCode);
        Assert.NotEqual(0, CliRunner.Run("nar", "cat", nar, "/names").ExitCode);
    }

    [RealNixFact]
    public void Restore_of_a_nix_nar_dumps_back_identically_with_nix()
    {
        using var work = new TempDir();
        FixtureTrees.WriteEdgeCases(work.Sub("tree"));
        var nar = work.Sub("t.nar");
        RealNix.Dump(work.Sub("tree"), nar);
        using (var input = File.OpenRead(nar))
        {
            var restored = CliProcess.Run(["nar", "restore", work.Sub("restored")], stdin: input);
            Assert.True(restored.ExitCode == 0, restored.Stderr);
        }
        var again = work.Sub("again.nar");
        RealNix.Dump(work.Sub("restored"), again);
        Assert.Equal(Sha256(nar), Sha256(again));
    }

    [RealNixFact]
    public void The_lazystore_program_dumps_like_nix_store()
    {
        using var work = new TempDir();
        FixtureTrees.WriteEdgeCases(work.Sub("tree"));
        var ours = work.Sub("ours.nar");
        var nix = work.Sub("nix.nar");
        var run = CliProcess.Run(["nar", "dump", work.Sub("tree")], stdoutFile: ours);
        Assert.True(run.ExitCode == 0, run.Stderr);
        RealNix.Dump(work.Sub("tree"), nix);
        Assert.Equal(Sha256(nix), Sha256(ours));
    }
}
