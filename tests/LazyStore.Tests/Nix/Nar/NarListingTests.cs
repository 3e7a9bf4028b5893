using System.Text;
using LazyStore.Nix.Nar;

namespace LazyStore.Tests.Nix.Nar;

public class NarListingTests
{
    [Fact]
    public void Parses_a_listing_as_nix_writes_it()
    {
        var json = """{"version":1,"root":{"type":"directory","entries":{"a":{"type":"regular","size":3,"executable":true,"narOffset":264},"link":{"type":"symlink","target":"a"},"sub":{"type":"directory","entries":{}}}}}""";
        var root = Assert.IsType<NarListingDirectory>(NarListing.ParseListingFile(Encoding.UTF8.GetBytes(json)));
        var a = Assert.IsType<NarListingRegular>(root.Entries["a"]);
        Assert.Equal(3, a.Size);
        Assert.True(a.IsExecutable);
        Assert.Equal(264, a.NarOffset);
        Assert.Equal("a", Assert.IsType<NarListingSymlink>(root.Entries["link"]).Target);
        Assert.Equal(json, NarListing.ToListingFile(root));
    }

    [Fact]
    public void Listings_without_nar_offsets_parse_and_write_without_them()
    {
        var json = """{"version":1,"root":{"type":"directory","entries":{"a":{"type":"regular","size":3}}}}""";
        var root = NarListing.ParseListingFile(Encoding.UTF8.GetBytes(json));
        Assert.Null(((NarListingRegular)((NarListingDirectory)root).Entries["a"]).NarOffset);
        Assert.Equal(json, NarListing.ToListingFile(root, includeOffsets: false));
    }

    [Theory]
    [InlineData("not json")]
    [InlineData("[]")]
    [InlineData("""{"root":{"type":"regular","size":1}}""")]
    [InlineData("""{"version":2,"root":{"type":"regular","size":1}}""")]
    [InlineData("""{"version":1}""")]
    [InlineData("""{"version":1,"root":{"type":"fifo"}}""")]
    [InlineData("""{"version":1,"root":{"type":"regular"}}""")]
    [InlineData("""{"version":1,"root":{"type":"regular","size":-1}}""")]
    [InlineData("""{"version":1,"root":{"type":"regular","size":"3"}}""")]
    [InlineData("""{"version":1,"root":{"type":"regular","size":1,"executable":"yes"}}""")]
    [InlineData("""{"version":1,"root":{"type":"regular","size":1,"narOffset":-5}}""")]
    [InlineData("""{"version":1,"root":{"type":"symlink"}}""")]
    [InlineData("""{"version":1,"root":{"type":"symlink","target":""}}""")]
    [InlineData("""{"version":1,"root":{"type":"directory"}}""")]
    [InlineData("""{"version":1,"root":{"type":"directory","entries":{"..":{"type":"regular","size":1}}}}""")]
    [InlineData("""{"version":1,"root":{"type":"directory","entries":{"a/b":{"type":"regular","size":1}}}}""")]
    [InlineData("""{"version":1,"root":{"type":"directory","entries":{"":{"type":"regular","size":1}}}}""")]
    [InlineData("""{"version":1,"root":{"type":"directory","entries":{"a":{"type":"regular","size":1},"a":{"type":"regular","size":2}}}}""")]
    [InlineData("""{"version":1,"root":{"type":"directory","entries":{"a":{"type":"regular","size":1},"b":{"type":"regular","size":1},"a":{"type":"regular","size":2}}}}""")]
    [InlineData("""{"version":1,"root":{"type":"regular","size":1}} {}""")]
    [InlineData("""{"version":1,"root":{"type":"directory","entries":[]}}""")]
    [InlineData("""{"version":1,"root":{"type":"regular","size":1,"narOffset":"8"}}""")]
    public void Malformed_listings_are_rejected_with_a_listing_error(string json)
    {
        var e = Assert.Throws<NarListingFormatException>(() => NarListing.ParseListingFile(Encoding.UTF8.GetBytes(json)));
        Assert.StartsWith("listing", e.Message);
    }

    [Fact]
    public void Entries_come_out_in_nar_order_whatever_the_order_of_the_json()
    {
        // Members in any order ("entries" before "type"), directory entries unsorted, one of them escaped.
        var json = """{"root":{"entries":{"b":{"size":2,"type":"regular"},"é":{"type":"symlink","target":"b"},"Z":{"entries":{"y":{"type":"regular","size":1,"executable":true},"x":{"type":"directory","entries":{}}},"type":"directory"},"a":{"type":"regular","size":1,"entries":{"ignored":{"type":"regular","size":9}}}},"type":"directory"},"version":1}""";

        var entries = NarListing.ParseListingEntries(Encoding.UTF8.GetBytes(json));

        Assert.Equal(
            [
                new NarListingEntry(-1, "", NarEntryType.Directory, 0, false, null, null),
                new NarListingEntry(0, "Z", NarEntryType.Directory, 0, false, null, null),
                new NarListingEntry(1, "x", NarEntryType.Directory, 0, false, null, null),
                new NarListingEntry(1, "y", NarEntryType.Regular, 1, true, null, null),
                new NarListingEntry(0, "a", NarEntryType.Regular, 1, false, null, null),
                new NarListingEntry(0, "b", NarEntryType.Regular, 2, false, null, null),
                new NarListingEntry(0, "é", NarEntryType.Symlink, 0, false, null, "b"),
            ],
            entries);
        Assert.Equal("""{"version":1,"root":{"type":"directory","entries":{"Z":{"type":"directory","entries":{"x":{"type":"directory","entries":{}},"y":{"type":"regular","size":1,"executable":true}}},"a":{"type":"regular","size":1},"b":{"type":"regular","size":2},"é":{"type":"symlink","target":"b"}}}}""",
            NarListing.ToListingFile(NarListing.ParseListingFile(Encoding.UTF8.GetBytes(json))));
    }

    [Fact]
    public void A_listing_with_more_entries_than_allowed_is_rejected_and_one_at_the_bound_is_read()
    {
        var json = Encoding.UTF8.GetBytes("""{"version":1,"root":{"type":"directory","entries":{"a":{"type":"regular","size":1},"b":{"type":"directory","entries":{"c":{"type":"symlink","target":"a"}}}}}}""");

        var e = Assert.Throws<NarListingFormatException>(() => NarListing.ParseListingEntries(json, maxEntries: 3));

        Assert.Equal("listing has more than 3 entries, the most accepted", e.Message);
        Assert.Equal(4, NarListing.ParseListingEntries(json, maxEntries: 4).Count);
    }

    [Fact]
    public void Json_escapes_like_nix()
    {
        var root = new NarListingDirectory();
        root.Entries["a\"b\\c\nd\te\u0001é"] = new NarListingSymlink("x");
        Assert.Equal("{\"type\":\"directory\",\"entries\":{\"a\\\"b\\\\c\\nd\\te\\u0001é\":{\"type\":\"symlink\",\"target\":\"x\"}}}", NarListing.ToJson(root));
    }

    [Fact]
    public void Find_resolves_paths_like_nix()
    {
        var json = """{"version":1,"root":{"type":"directory","entries":{"d":{"type":"directory","entries":{"f":{"type":"regular","size":1}}}}}}""";
        var root = NarListing.ParseListingFile(Encoding.UTF8.GetBytes(json));
        Assert.Same(root, NarListing.Find(root, "/"));
        Assert.Same(root, NarListing.Find(root, ""));
        Assert.IsType<NarListingRegular>(NarListing.Find(root, "/d//./f/"));
        Assert.Null(NarListing.Find(root, "/d/g"));
        Assert.Null(NarListing.Find(root, "/d/f/x"));
        Assert.Throws<ArgumentException>(() => NarListing.Find(root, "d/f"));
        Assert.Throws<ArgumentException>(() => NarListing.Find(root, "/d/../d"));
    }
}
