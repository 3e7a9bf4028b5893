using LazyStore.Nix.Nar;
using LazyStore.Tests.Support;

namespace LazyStore.Tests.Cli;

public class NarCommandTests
{
    [Fact]
    public void Dump_writes_the_nar_to_stdout()
    {
        using var dir = new TempDir();
        FixtureTrees.WriteEdgeCases(dir.Sub("tree"));
        using var expected = new MemoryStream();
        NarWriter.Dump(dir.Sub("tree"), expected);
        var result = CliRunner.Run("nar", "dump", dir.Sub("tree"));
        Assert.Equal(0, result.ExitCode);
        Assert.Equal(expected.ToArray(), result.Stdout);
    }

    [Fact]
    public void Restore_unpacks_stdin_and_ls_lists_it()
    {
        using var dir = new TempDir();
        FixtureTrees.WriteEdgeCases(dir.Sub("tree"));
        var nar = CliRunner.Run("nar", "dump", dir.Sub("tree")).Stdout;
        Assert.Equal(0, CliRunner.Run(nar, "nar", "restore", dir.Sub("copy")).ExitCode);
        Assert.Equal(nar, CliRunner.Run("nar", "dump", dir.Sub("copy")).Stdout);
        File.WriteAllBytes(dir.Sub("t.nar"), nar);
        var ls = CliRunner.Run("nar", "ls", dir.Sub("t.nar"), "/sizes");
        Assert.Equal(0, ls.ExitCode);
        Assert.StartsWith("./f1\n./f15\n", ls.StdoutText);
        Assert.Equal("f1\n", CliRunner.Run("nar", "ls", dir.Sub("t.nar"), "/sizes/f1").StdoutText);
        Assert.Equal("hello\n", CliRunner.Run("nar", "cat", dir.Sub("t.nar"), "/plain.txt").StdoutText);
    }

    [Fact]
    public void A_malformed_nar_gives_one_error_line_with_file_offset_and_rule()
    {
        using var dir = new TempDir();
        var prefix = RawNar.WithMagic().Tokens("(", "type", "directory").EntryStart("b").Regular("1").Str(")").Tokens("entry", "(", "name");
        long offset = prefix.Length;
        var nar = prefix.Str("a").Str("node").Regular("2").Str(")").Str(")").ToArray();
        File.WriteAllBytes(dir.Sub("bad.nar"), nar);
        foreach (var args in new[] { new[] { "nar", "ls", dir.Sub("bad.nar") }, ["nar", "cat", dir.Sub("bad.nar"), "/z"] })
        {
            var result = CliRunner.Run(args);
            Assert.Equal(1, result.ExitCode);
            var line = Assert.Single(result.Stderr.TrimEnd('\n').Split('\n'));
            Assert.Contains(dir.Sub("bad.nar"), line);
            Assert.Contains($"byte {offset}:", line);
            Assert.Contains("sorting after 'b'", line);
        }
        var restore = CliRunner.Run(nar, "nar", "restore", dir.Sub("out"));
        Assert.Equal(1, restore.ExitCode);
        Assert.Contains("<stdin>", restore.Stderr);
    }

    [Fact]
    public void Missing_files_and_paths_are_reported()
    {
        using var dir = new TempDir();
        var missing = CliRunner.Run("nar", "ls", dir.Sub("nope.nar"));
        Assert.Equal(1, missing.ExitCode);
        Assert.Contains("cannot open NAR", missing.Stderr);
        File.WriteAllBytes(dir.Sub("t.nar"), RawNar.WithMagic().Regular("x").ToArray());
        Assert.Contains("does not exist", CliRunner.Run("nar", "ls", dir.Sub("t.nar"), "/a").Stderr);
        Assert.Contains("not an absolute path", CliRunner.Run("nar", "ls", dir.Sub("t.nar"), "a").Stderr);
        Assert.Contains("does not exist", CliRunner.Run("nar", "dump", dir.Sub("nothing")).Stderr);
    }
}
