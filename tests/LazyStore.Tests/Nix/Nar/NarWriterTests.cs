using System.Text;
using FsCheck;
using FsCheck.Fluent;
using LazyStore.Nix.Nar;
using LazyStore.Tests.Support;

namespace LazyStore.Tests.Nix.Nar;

public class NarWriterTests
{
    [Fact]
    public void Writes_the_same_bytes_as_a_hand_built_nar()
    {
        var expected = RawNar.WithMagic().Tokens("(", "type", "directory")
            .EntryStart("a").Regular("hello", executable: true).Str(")")
            .EntryStart("b").Tokens("(", "type", "symlink", "target", "a", ")").Str(")")
            .EntryStart("c").Tokens("(", "type", "directory", ")").Str(")")
            .Str(")").ToArray();
        var tree = new TreeDirectory(new(NarGrammar.NameComparer)
        {
            ["a"] = new TreeFile("hello"u8.ToArray(), true),
            ["b"] = new TreeLink("a"),
            ["c"] = new TreeDirectory(new(NarGrammar.NameComparer)),
        });
        Assert.Equal(expected, TreeModel.ToNar(tree));
    }

    [Theory]
    [InlineData("")]
    [InlineData("a/b")]
    [InlineData(".")]
    [InlineData("..")]
    [InlineData("a\0")]
    public void Refuses_invalid_names(string name)
    {
        using var writer = new NarWriter(new MemoryStream());
        writer.BeginDirectory();
        Assert.Throws<ArgumentException>(() => writer.BeginEntry(name));
    }

    [Fact]
    public void Refuses_names_out_of_order_and_duplicates()
    {
        using var writer = new NarWriter(new MemoryStream());
        writer.BeginDirectory();
        writer.BeginEntry("b");
        writer.WriteRegular([]);
        Assert.Throws<ArgumentException>(() => writer.BeginEntry("a"));
        Assert.Throws<ArgumentException>(() => writer.BeginEntry("b"));
    }

    [Fact]
    public void Refuses_nodes_out_of_place()
    {
        using var writer = new NarWriter(new MemoryStream());
        Assert.Throws<InvalidOperationException>(() => writer.BeginEntry("a"));
        Assert.Throws<InvalidOperationException>(() => writer.EndDirectory());
        writer.WriteRegular("x"u8);
        Assert.True(writer.IsComplete);
        Assert.Throws<InvalidOperationException>(() => writer.WriteRegular("y"u8));
    }

    [Fact]
    public void Refuses_an_empty_symlink_target()
    {
        using var writer = new NarWriter(new MemoryStream());
        Assert.Throws<ArgumentException>(() => writer.WriteSymlink(""));
    }

    [Fact]
    public void A_stream_shorter_than_announced_is_an_error()
    {
        using var writer = new NarWriter(new MemoryStream());
        var e = Assert.Throws<IOException>(() => writer.WriteRegular(new MemoryStream(new byte[10]), 20, sourceName: "f"));
        Assert.Contains("10 bytes short", e.Message);
    }

    [Fact]
    public void Dumping_a_fifo_is_refused_like_nix()
    {
        using var dir = new TempDir();
        var fifo = dir.Sub("pipe");
        ExternalTool.Run(ExternalTool.Find("mkfifo") ?? throw new InvalidOperationException("mkfifo missing"), [fifo]).EnsureSuccess("mkfifo");
        var e = Assert.Throws<IOException>(() => NarWriter.Dump(dir.Path, new MemoryStream()));
        Assert.Contains("unsupported type", e.Message);
    }

    [Fact]
    public void Dumps_names_in_byte_order_not_utf16_order()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.Sub("\U0001F600"), "2");
        File.WriteAllText(dir.Sub("\uFF21"), "1");
        using var ms = new MemoryStream();
        NarWriter.Dump(dir.Path, ms);
        var lines = TreeModel.DescribeNar(ms.ToArray());
        Assert.Equal(["directory ", "regular \uFF21 - 31", "regular \U0001F600 - 32"], lines);
    }

    [Fact]
    public void Property_the_name_comparer_orders_strings_as_their_utf8_bytes()
    {
        Prop.ForAll(TreeModel.Names.ToArbitrary(), TreeModel.Names.ToArbitrary(), (a, b) =>
            Math.Sign(NarGrammar.CompareNames(a, b)) == Math.Sign(NarGrammar.CompareNames(Encoding.UTF8.GetBytes(a), Encoding.UTF8.GetBytes(b))))
            .QuickCheckThrowOnFailure();
        Prop.ForAll<string>(a => Prop.ForAll<string>(b =>
            a is null || b is null
            || Math.Sign(NarGrammar.CompareNames(a, b)) == Math.Sign(NarGrammar.CompareNames(Encoding.UTF8.GetBytes(a), Encoding.UTF8.GetBytes(b)))))
            .QuickCheckThrowOnFailure();
    }

    [Fact]
    public void Property_written_trees_read_back_identically_with_exact_payload_offsets()
    {
        Prop.ForAll(TreeModel.Trees, tree =>
        {
            var nar = TreeModel.ToNar(tree);
            Assert.Equal(TreeModel.Describe(tree), TreeModel.DescribeNar(nar));
            using var reader = new NarReader(new MemoryStream(nar));
            var flat = TreeModel.Describe(tree).Where(l => l.StartsWith("regular", StringComparison.Ordinal)).ToList();
            int i = 0;
            while (reader.GetNextEntry() is { } e)
            {
                if (e.Type != NarEntryType.Regular)
                    continue;
                var hex = Convert.ToHexString(nar, (int)e.PayloadOffset, (int)e.Size);
                Assert.EndsWith(" " + hex, flat[i++]);
            }
        }).QuickCheckThrowOnFailure();
    }

    [Fact]
    public void Property_listing_round_trips_through_the_listing_file_format()
    {
        Prop.ForAll(TreeModel.Trees, tree =>
        {
            var nar = TreeModel.ToNar(tree);
            var listing = NarListing.FromNar(new MemoryStream(nar));
            var file = NarListing.ToListingFile(listing);
            var parsed = NarListing.ParseListingFile(Encoding.UTF8.GetBytes(file));
            Assert.Equal(NarListing.ToJson(listing), NarListing.ToJson(parsed));
            Assert.Equal(file, NarListing.ToListingFile(parsed));
        }).QuickCheckThrowOnFailure();
    }

    [Fact]
    public void Property_restore_then_dump_reproduces_the_nar()
    {
        Prop.ForAll(TreeModel.Trees, tree =>
        {
            var nar = TreeModel.ToNar(tree);
            using var dir = new TempDir();
            var target = dir.Sub("out");
            NarRestorer.Restore(new MemoryStream(nar), target);
            using var again = new MemoryStream();
            NarWriter.Dump(target, again);
            Assert.Equal(nar, again.ToArray());
        }).Check(Config.QuickThrowOnFailure.WithMaxTest(40));
    }
}
