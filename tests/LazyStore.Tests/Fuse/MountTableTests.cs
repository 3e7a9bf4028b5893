using LazyStore.Fuse;

namespace LazyStore.Tests.Fuse;

public sealed class MountTableTests
{
    [Fact]
    public void Parses_mount_point_type_and_source_past_optional_fields()
    {
        var entry = MountTable.Parse("36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 shared:7 - ext3 /dev/root rw,errors=continue");
        Assert.Equal(new MountInfoEntry("/mnt2", "ext3", "/dev/root"), entry);
    }

    [Fact]
    public void Unescapes_the_kernels_octal_escapes()
    {
        var entry = MountTable.Parse(@"50 27 0:45 / /tmp/with\040space\011tab\134back rw - fuse.memory my\040fs rw,user_id=0");
        Assert.Equal("/tmp/with space\ttab\\back", entry.MountPoint);
        Assert.Equal("my fs", entry.Source);
    }

    [Fact]
    public void Finds_the_root_mount_of_this_process()
    {
        Assert.NotNull(MountTable.At("/"));
    }

    [Fact]
    public void A_malformed_line_names_the_file()
    {
        var error = Assert.Throws<InvalidDataException>(() => MountTable.Parse("1 2 3"));
        Assert.Contains("/proc/self/mountinfo", error.Message);
    }
}
