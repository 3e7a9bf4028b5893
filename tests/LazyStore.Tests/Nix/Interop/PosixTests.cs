using System.Globalization;
using System.Text;
using LazyStore.Nix.Interop;
using LazyStore.Tests.Support;

namespace LazyStore.Tests.Nix.Interop;

/// <summary>The *at calls the overlay's pass-through uses, checked against what coreutils' stat(1) reports.</summary>
public sealed class PosixTests : IDisposable
{
    private readonly TempDir _dir = new("lazystore-posix-");

    private string StatTool(string format, string path) =>
        ExternalTool.Run("stat", ["-c", format, path]).EnsureSuccess("stat").StdoutText.Trim();

    [Fact]
    public void Stat_through_a_directory_descriptor_matches_stat_1()
    {
        var file = _dir.Sub("f");
        File.WriteAllBytes(file, FixtureTrees.RealBytes(12345));
        File.SetUnixFileMode(file, UnixFileMode.UserRead | UnixFileMode.UserExecute | UnixFileMode.OtherRead);
        using var dir = Posix.OpenAt(Posix.AtFdCwd, _dir.Path, Posix.OPath | Posix.ODirectory);
        var stat = Posix.StatAt(dir.Fd, "f");
        Assert.Equal(PosixFileType.Regular, stat.Type);
        Assert.Equal(12345, stat.Size);
        Assert.Equal(StatTool("%i", file), stat.Inode.ToString(CultureInfo.InvariantCulture));
        Assert.Equal(StatTool("%f", file), stat.Mode.ToString("x", CultureInfo.InvariantCulture));
        Assert.Equal(StatTool("%h %u %g %b %o", file), string.Create(CultureInfo.InvariantCulture, $"{stat.LinkCount} {stat.Uid} {stat.Gid} {stat.Blocks} {stat.BlockSize}"));
        Assert.Equal(StatTool("%Y %d", file), string.Create(CultureInfo.InvariantCulture, $"{stat.Modification.Seconds} {stat.Device}"));
        // AT_EMPTY_PATH: the descriptor's own status.
        Assert.Equal(PosixFileType.Directory, Posix.StatAt(dir.Fd, "").Type);
    }

    [Fact]
    public void Directory_operations_relative_to_a_descriptor_land_in_the_directory()
    {
        using var dir = Posix.OpenAt(Posix.AtFdCwd, _dir.Path, Posix.OPath | Posix.ODirectory);
        Posix.MakeDirectoryAt(dir.Fd, "d", Convert.ToUInt32("750", 8));
        Assert.Equal("750", StatTool("%a", _dir.Sub("d")));
        Posix.SymlinkAt("d/target\u00e9", dir.Fd, "link");
        Assert.Equal(Encoding.UTF8.GetBytes("d/target\u00e9"), Posix.ReadLinkAt(dir.Fd, "link"));
        Assert.Equal(PosixFileType.Symlink, Posix.StatAt(dir.Fd, "link").Type);

        File.WriteAllText(_dir.Sub("a"), "a");
        Posix.LinkAt(dir.Fd, "a", dir.Fd, "d/hard", 0);
        Assert.Equal(2u, Posix.StatAt(dir.Fd, "a").LinkCount);
        Posix.RenameAt(dir.Fd, "a", dir.Fd, "b", 0);
        Assert.False(File.Exists(_dir.Sub("a")));
        Assert.Equal("a", File.ReadAllText(_dir.Sub("b")));
        File.WriteAllText(_dir.Sub("c"), "c");
        var noReplace = Assert.Throws<PosixException>(() => Posix.RenameAt(dir.Fd, "b", dir.Fd, "c", flags: 1));
        Assert.Equal(17, noReplace.Errno); // EEXIST under RENAME_NOREPLACE

        if (Environment.UserName == "root")
        {
            Posix.ChownAt(dir.Fd, "b", 1, 2, 0);
            Assert.Equal("1 2", StatTool("%u %g", _dir.Sub("b")));
        }
        Posix.ChmodAt(dir.Fd, "b", Convert.ToUInt32("604", 8));
        Assert.Equal("604", StatTool("%a", _dir.Sub("b")));
        Posix.SetTimesAt(dir.Fd, "b", new PosixTime(0, (uint)Posix.UtimeOmit), new PosixTime(1, 0), 0);
        Assert.Equal("1", StatTool("%Y", _dir.Sub("b")));
        Posix.Truncate(_dir.Sub("b"), 0);
        Assert.Equal(0, Posix.StatAt(dir.Fd, "b").Size);

        Posix.UnlinkAt(dir.Fd, "d/hard", directory: false);
        var missing = Assert.Throws<PosixException>(() => Posix.UnlinkAt(dir.Fd, "missing", directory: false));
        Assert.Equal(2, missing.Errno); // ENOENT
        Assert.Contains("unlink 'missing'", missing.Message);
        Posix.UnlinkAt(dir.Fd, "d", directory: true);
        Assert.False(Directory.Exists(_dir.Sub("d")));
    }

    [Fact]
    public void Reading_a_directory_in_pieces_resumes_at_each_cookie_and_sees_every_entry_once()
    {
        var names = Enumerable.Range(0, 300).Select(i => $"entry-{i:D3}-\u00e9").ToList();
        foreach (var name in names)
            File.WriteAllText(_dir.Sub(name), name);
        Directory.CreateDirectory(_dir.Sub("sub"));
        using var dir = Posix.OpenAt(Posix.AtFdCwd, _dir.Path, Posix.OPath | Posix.ODirectory);
        var seen = new List<PosixDirectoryEntry>();
        long cookie = 0;
        while (true)
        {
            var piece = Posix.ReadDirectory(dir.Fd, ".", cookie, maxEntries: 37);
            if (piece.Count == 0)
                break;
            seen.AddRange(piece);
            cookie = piece[^1].Cookie;
        }
        Assert.Equal(new[] { ".", "..", "sub" }.Concat(names).Order(StringComparer.Ordinal), seen.Select(e => e.Name).Order(StringComparer.Ordinal));
        Assert.Equal(PosixFileType.Directory, seen.Single(e => e.Name == "sub").Type);
        var first = seen.Single(e => e.Name == names[0]);
        Assert.Equal(PosixFileType.Regular, first.Type);
        Assert.Equal(Posix.StatAt(dir.Fd, names[0]).Inode, first.Inode);
    }

    [Fact]
    public void File_system_statistics_and_extended_attributes()
    {
        using var dir = Posix.OpenAt(Posix.AtFdCwd, _dir.Path, Posix.OPath | Posix.ODirectory);
        using var readable = Posix.OpenAt(dir.Fd, ".", Posix.ORead | Posix.ODirectory);
        var fs = Posix.StatFileSystem(readable.Fd);
        Assert.True(fs.Blocks > 0 && fs.BlocksFree <= fs.Blocks && fs.NameMax >= 255);

        var file = _dir.Sub("x");
        File.WriteAllText(file, "x");
        try
        {
            Posix.SetExtendedAttribute(file, "user.lazystore", "value"u8, 0);
        }
        catch (PosixException e) when (e.Errno == 95)
        {
            return; // EOPNOTSUPP: this file system keeps no user xattrs.
        }
        Assert.Equal(5, Posix.GetExtendedAttribute(file, "user.lazystore", []));
        var value = new byte[5];
        Posix.GetExtendedAttribute(file, "user.lazystore", value);
        Assert.Equal("value"u8.ToArray(), value);
        var names = new byte[Posix.ListExtendedAttributes(file, [])];
        Posix.ListExtendedAttributes(file, names);
        Assert.Contains("user.lazystore", Encoding.UTF8.GetString(names).Split('\0'));
        Posix.RemoveExtendedAttribute(file, "user.lazystore");
        Assert.Equal(61, Assert.Throws<PosixException>(() => Posix.GetExtendedAttribute(file, "user.lazystore", [])).Errno); // ENODATA
    }

    [Fact]
    public void Device_numbers_use_glibcs_makedev_encoding()
    {
        // /dev/null is character device 1:3.
        Assert.Equal(Posix.MakeDevice(1, 3), Posix.StatAt(Posix.AtFdCwd, "/dev/null").RDevice);
        Assert.Equal(0x103UL, Posix.MakeDevice(1, 3));
    }

    public void Dispose() => _dir.Dispose();
}
