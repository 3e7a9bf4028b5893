using LazyStore.Nix.Nar;
using LazyStore.Tests.Support;

namespace LazyStore.Tests.Nix.Nar;

public class NarRestorerTests
{
    [Fact]
    public void Restores_files_modes_symlinks_and_empty_directories()
    {
        var nar = RawNar.WithMagic().Tokens("(", "type", "directory")
            .EntryStart("bin").Regular("#!/bin/sh\necho hi\n", executable: true).Str(")")
            .EntryStart("empty").Tokens("(", "type", "directory", ")").Str(")")
            .EntryStart("link").Tokens("(", "type", "symlink", "target", "bin", ")").Str(")")
            .EntryStart("text").Regular("").Str(")")
            .Str(")").ToArray();
        using var dir = new TempDir();
        var target = dir.Sub("out");
        NarRestorer.Restore(new MemoryStream(nar), target);

        Assert.True((File.GetUnixFileMode(Path.Combine(target, "bin")) & UnixFileMode.UserExecute) != 0);
        Assert.True((File.GetUnixFileMode(Path.Combine(target, "text")) & UnixFileMode.UserExecute) == 0);
        Assert.Equal("bin", new FileInfo(Path.Combine(target, "link")).LinkTarget);
        Assert.Empty(Directory.GetFileSystemEntries(Path.Combine(target, "empty")));
        Assert.Equal(0, new FileInfo(Path.Combine(target, "text")).Length);
    }

    [Fact]
    public void Refuses_an_existing_target()
    {
        using var dir = new TempDir();
        var e = Assert.Throws<IOException>(() => NarRestorer.Restore(new MemoryStream(RawNar.WithMagic().Regular("x").ToArray()), dir.Path));
        Assert.Contains("already exists", e.Message);
    }

    [Fact]
    public void Refuses_to_write_through_a_dangling_symlink_at_the_target()
    {
        using var dir = new TempDir();
        var outside = dir.Sub("outside");
        File.CreateSymbolicLink(dir.Sub("out"), outside);
        Assert.Throws<IOException>(() => NarRestorer.Restore(new MemoryStream(RawNar.WithMagic().Regular("x").ToArray()), dir.Sub("out")));
        Assert.False(File.Exists(outside));
    }

    [Theory]
    [InlineData("..")]
    [InlineData("../escape")]
    [InlineData("/etc")]
    public void A_nar_that_names_a_path_outside_the_target_writes_nothing_outside(string name)
    {
        var nar = RawNar.WithMagic().Tokens("(", "type", "directory")
            .EntryStart(name).Regular("pwned").Str(")")
            .Str(")").ToArray();
        using var dir = new TempDir();
        var before = Directory.GetFileSystemEntries(dir.Path);
        Assert.Throws<NarFormatException>(() => NarRestorer.Restore(new MemoryStream(nar), dir.Sub("out")));
        Assert.Equal(before.Append(dir.Sub("out")).Order(), Directory.GetFileSystemEntries(dir.Path).Order());
        Assert.Empty(Directory.GetFileSystemEntries(dir.Sub("out")));
    }
}
