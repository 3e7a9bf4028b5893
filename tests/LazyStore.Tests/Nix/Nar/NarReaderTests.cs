using System.Text;
using LazyStore.Nix.Nar;
using LazyStore.Tests.Support;

namespace LazyStore.Tests.Nix.Nar;

public class NarReaderTests
{
    private static List<NarEntry> ReadAll(byte[] nar, bool seekable = true)
    {
        using var reader = new NarReader(seekable ? new MemoryStream(nar) : new NonSeekableStream(nar));
        var entries = new List<NarEntry>();
        while (reader.GetNextEntry() is { } e)
            entries.Add(e);
        return entries;
    }

    private static NarFormatException Fails(byte[] nar, int maxDepth = NarGrammar.DefaultMaxDepth, bool seekable = true)
    {
        using var reader = new NarReader(seekable ? new MemoryStream(nar) : new NonSeekableStream(nar), maxDepth: maxDepth);
        var error = Assert.Throws<NarFormatException>(() =>
        {
            while (reader.GetNextEntry() is { } e)
            {
                if (e.Type == NarEntryType.Regular)
                {
                    using var payload = e.OpenPayload();
                    payload.CopyTo(Stream.Null);
                }
            }
        });
        // The first error poisons the reader.
        Assert.Throws<InvalidOperationException>(() => reader.GetNextEntry());
        return error;
    }

    [Fact]
    public void Reads_a_directory_tree_with_paths_types_sizes_and_offsets()
    {
        var nar = RawNar.WithMagic().Tokens("(", "type", "directory")
            .EntryStart("bin").Tokens("(", "type", "directory")
                .EntryStart("hello").Regular("#!/bin/sh\n", executable: true).Str(")")
            .Str(")").Str(")")
            .EntryStart("link").Tokens("(", "type", "symlink", "target", "bin/hello", ")").Str(")")
            .EntryStart("readme").Regular("hi").Str(")")
            .Str(")").ToArray();

        var entries = ReadAll(nar);

        Assert.Equal(["", "bin", "bin/hello", "link", "readme"], entries.Select(e => e.Path));
        Assert.Equal([NarEntryType.Directory, NarEntryType.Directory, NarEntryType.Regular, NarEntryType.Symlink, NarEntryType.Regular], entries.Select(e => e.Type));
        Assert.Equal([0, 1, 2, 1, 1], entries.Select(e => e.Depth));
        Assert.True(entries[2].IsExecutable);
        Assert.False(entries[4].IsExecutable);
        Assert.Equal(10, entries[2].Size);
        Assert.Equal("bin/hello", entries[3].LinkTarget);
        Assert.Equal("hello", entries[2].Name);
        Assert.Equal("#!/bin/sh\n", Encoding.UTF8.GetString(nar, (int)entries[2].PayloadOffset, 10));
        Assert.Equal("hi", Encoding.UTF8.GetString(nar, (int)entries[4].PayloadOffset, 2));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Payload_is_a_bounded_stream_and_unread_payloads_are_skipped(bool seekable)
    {
        var big = new string('x', 200_000);
        var nar = RawNar.WithMagic().Tokens("(", "type", "directory")
            .EntryStart("a").Regular(big).Str(")")
            .EntryStart("b").Regular("second").Str(")")
            .Str(")").ToArray();
        using var reader = new NarReader(seekable ? new MemoryStream(nar) : new NonSeekableStream(nar));
        reader.GetNextEntry();
        var a = reader.GetNextEntry()!;
        using (var payload = a.OpenPayload())
        {
            var first = new byte[10];
            Assert.Equal(10, payload.Read(first));
        }
        var b = reader.GetNextEntry()!;
        Assert.Equal("b", b.Path);
        using var second = b.OpenPayload();
        using var copy = new MemoryStream();
        second.CopyTo(copy);
        Assert.Equal("second", Encoding.UTF8.GetString(copy.ToArray()));
        Assert.Equal(0, second.Read(new byte[4]));
        Assert.Null(reader.GetNextEntry());
        Assert.Throws<InvalidOperationException>(() => a.OpenPayload());
    }

    [Fact]
    public void Payload_read_one_byte_at_a_time_is_exact()
    {
        var contents = string.Concat(Enumerable.Range(0, 5000).Select(i => (char)('a' + i % 26)));
        var nar = RawNar.WithMagic().Regular(contents).ToArray();
        using var reader = new NarReader(new NonSeekableStream(nar, maxChunk: 3));
        var entry = reader.GetNextEntry()!;
        using var payload = entry.OpenPayload();
        var sb = new StringBuilder();
        var one = new byte[1];
        while (payload.Read(one) == 1)
            sb.Append((char)one[0]);
        Assert.Equal(contents, sb.ToString());
        Assert.Null(reader.GetNextEntry());
    }

    [Fact]
    public void A_single_file_or_symlink_can_be_the_root()
    {
        var file = ReadAll(RawNar.WithMagic().Regular("x", executable: true).ToArray());
        Assert.Single(file);
        Assert.Equal("", file[0].Path);
        Assert.True(file[0].IsExecutable);
        var link = ReadAll(RawNar.WithMagic().Tokens("(", "type", "symlink", "target", "/etc/passwd", ")").ToArray());
        Assert.Equal("/etc/passwd", link[0].LinkTarget);
    }

    [Fact]
    public void Wrong_magic_fails_at_offset_zero()
    {
        var e = Fails(new RawNar().Str("nix-archive-2").Tokens("(", "type", "regular", "contents").Str("").Str(")").ToArray());
        Assert.Equal(0, e.Offset);
        Assert.Contains("nix-archive-1", e.Expected);
    }

    [Fact]
    public void Empty_input_fails_at_offset_zero()
    {
        var e = Fails([]);
        Assert.Equal(0, e.Offset);
        Assert.Equal("the end of the stream", e.Found);
    }

    [Fact]
    public void Non_zero_padding_fails_at_the_padding_byte()
    {
        var nar = new RawNar().Str(Encoding.UTF8.GetBytes("nix-archive-1"), padByte: 1).Regular("").ToArray();
        var e = Fails(nar);
        Assert.Equal(8 + 13, e.Offset);
        Assert.Equal("zero padding", e.Expected);
    }

    [Fact]
    public void Non_zero_padding_after_file_contents_fails()
    {
        var prefix = RawNar.WithMagic().Tokens("(", "type", "regular", "contents");
        long payloadAt = prefix.Length + 8;
        var nar = prefix.U64(3).Raw((byte)'a', (byte)'b', (byte)'c', 0, 0, 7, 0, 0).Str(")").ToArray();
        var e = Fails(nar);
        Assert.Equal(payloadAt + 5, e.Offset);
    }

    [Fact]
    public void An_oversized_length_prefix_where_a_keyword_belongs_fails_without_allocating()
    {
        var prefix = RawNar.WithMagic();
        long at = prefix.Length;
        var e = Fails(prefix.U64(1UL << 40).ToArray());
        Assert.Equal(at, e.Offset);
        Assert.Contains("1099511627776 bytes", e.Found);
    }

    [Fact]
    public void Unknown_node_type_fails_at_the_type()
    {
        var prefix = RawNar.WithMagic().Tokens("(", "type");
        long at = prefix.Length;
        var e = Fails(prefix.Tokens("fifo", ")").ToArray());
        Assert.Equal(at, e.Offset);
        Assert.Equal("'fifo'", e.Found);
    }

    [Fact]
    public void Unknown_token_in_a_directory_fails()
    {
        var prefix = RawNar.WithMagic().Tokens("(", "type", "directory");
        long at = prefix.Length;
        var e = Fails(prefix.Tokens("entries").ToArray());
        Assert.Equal(at, e.Offset);
        Assert.Equal("'entry' or ')'", e.Expected);
    }

    [Fact]
    public void Executable_marker_must_be_followed_by_the_empty_string()
    {
        var prefix = RawNar.WithMagic().Tokens("(", "type", "regular", "executable");
        long at = prefix.Length;
        var e = Fails(prefix.Tokens("x", "contents").Str("").Str(")").ToArray());
        Assert.Equal(at, e.Offset);
    }

    [Fact]
    public void Regular_file_without_contents_keyword_fails()
    {
        var prefix = RawNar.WithMagic().Tokens("(", "type", "regular");
        long at = prefix.Length;
        var e = Fails(prefix.Tokens("target", "x", ")").ToArray());
        Assert.Equal(at, e.Offset);
        Assert.Equal("'executable' or 'contents'", e.Expected);
    }

    [Fact]
    public void File_length_beyond_two_to_the_63_fails()
    {
        var prefix = RawNar.WithMagic().Tokens("(", "type", "regular", "contents");
        long at = prefix.Length;
        var e = Fails(prefix.U64(ulong.MaxValue).ToArray());
        Assert.Equal(at, e.Offset);
    }

    public static TheoryData<byte[], string> BadNames => new()
    {
        { [], "non-empty" },
        { "a/b"u8.ToArray(), "'/'" },
        { "a\0b"u8.ToArray(), "NUL" },
        { "."u8.ToArray(), "'.'" },
        { ".."u8.ToArray(), "'..'" },
        { Enumerable.Repeat((byte)'n', 256).ToArray(), "at most 255" },
    };

    [Theory]
    [MemberData(nameof(BadNames))]
    public void Invalid_entry_names_fail_at_the_name(byte[] name, string rule)
    {
        var prefix = RawNar.WithMagic().Tokens("(", "type", "directory", "entry", "(", "name");
        long at = prefix.Length;
        var e = Fails(prefix.Str(name).Str("node").Regular("x").Str(")").Str(")").ToArray());
        Assert.Equal(at, e.Offset);
        Assert.Contains(rule, e.Message);
    }

    [Fact]
    public void A_name_of_255_bytes_is_accepted()
    {
        var name = new string('n', 255);
        var entries = ReadAll(RawNar.WithMagic().Tokens("(", "type", "directory").EntryStart(name).Regular("x").Str(")").Str(")").ToArray());
        Assert.Equal(name, entries[1].Path);
    }

    [Theory]
    [InlineData("b", "a")]
    [InlineData("a", "a")]
    [InlineData("a", "A")]
    public void Entries_must_strictly_ascend(string first, string second)
    {
        var prefix = RawNar.WithMagic().Tokens("(", "type", "directory").EntryStart(first).Regular("1").Str(")").Tokens("entry", "(", "name");
        long at = prefix.Length;
        var e = Fails(prefix.Str(second).Str("node").Regular("2").Str(")").Str(")").ToArray());
        Assert.Equal(at, e.Offset);
        Assert.Contains("sorting after", e.Expected);
    }

    [Fact]
    public void Entry_order_compares_bytes_not_utf16()
    {
        // U+FF21 (EF BC A1) sorts before U+1F600 (F0 9F 98 80) as bytes, though not as UTF-16 code units.
        var entries = ReadAll(RawNar.WithMagic().Tokens("(", "type", "directory")
            .EntryStart("\uFF21").Regular("1").Str(")")
            .EntryStart("\U0001F600").Regular("2").Str(")")
            .Str(")").ToArray());
        Assert.Equal(3, entries.Count);
    }

    [Fact]
    public void Nesting_deeper_than_the_bound_fails()
    {
        var b = RawNar.WithMagic().Tokens("(", "type", "directory");
        for (int i = 0; i < 3; i++)
            b.EntryStart("d").Tokens("(", "type", "directory");
        long at = b.Length;
        b.EntryStart("d").Regular("x").Str(")");
        for (int i = 0; i < 3; i++)
            b.Str(")").Str(")");
        b.Str(")");
        var e = Fails(b.ToArray(), maxDepth: 3);
        Assert.Equal(at, e.Offset);
        Assert.Contains("at most 3 deep", e.Expected);
        Assert.Equal(5, ReadAll(b.ToArray()).Count);
    }

    [Fact]
    public void Trailing_bytes_after_the_root_fail()
    {
        var nar = RawNar.WithMagic().Regular("x");
        long at = nar.Length;
        var e = Fails(nar.Raw(0).ToArray());
        Assert.Equal(at, e.Offset);
        Assert.Equal("trailing bytes", e.Found);
    }

    [Fact]
    public void Symlink_target_must_be_non_empty_and_free_of_nul()
    {
        var prefix = RawNar.WithMagic().Tokens("(", "type", "symlink", "target");
        long at = prefix.Length;
        Assert.Equal(at, Fails(RawNar.WithMagic().Tokens("(", "type", "symlink", "target", "", ")").ToArray()).Offset);
        Assert.Equal(at, Fails(RawNar.WithMagic().Tokens("(", "type", "symlink", "target", "a\0b", ")").ToArray()).Offset);
    }

    [Fact]
    public void Directory_entry_must_close_with_a_parenthesis()
    {
        var prefix = RawNar.WithMagic().Tokens("(", "type", "directory").EntryStart("a").Regular("x");
        long at = prefix.Length;
        var e = Fails(prefix.Tokens("entry").ToArray());
        Assert.Equal(at, e.Offset);
        Assert.Equal("')' closing the directory entry", e.Expected);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Every_strict_prefix_of_a_valid_nar_fails_with_the_typed_error(bool seekable)
    {
        var nar = RawNar.WithMagic().Tokens("(", "type", "directory")
            .EntryStart("a").Regular("hello world", executable: true).Str(")")
            .EntryStart("l").Tokens("(", "type", "symlink", "target", "a", ")").Str(")")
            .Str(")").ToArray();
        Assert.Equal(3, ReadAll(nar, seekable).Count);
        for (int length = 0; length < nar.Length; length++)
        {
            var e = Fails(nar[..length], seekable: seekable);
            // Truncation is reported at the start of the token that could not be read whole.
            Assert.InRange(e.Offset, Math.Max(0, length - 7 - 8), length);
            Assert.Equal("the end of the stream", e.Found);
        }
    }

    [Fact]
    public void Error_message_names_offset_and_rule()
    {
        var e = Fails(RawNar.WithMagic().Tokens("(", "type", "bogus").ToArray());
        Assert.Equal("invalid NAR at byte 56: expected 'regular', 'symlink' or 'directory', found 'bogus'", e.Message);
    }

    [Fact]
    public void A_failure_in_the_underlying_stream_poisons_the_reader()
    {
        var nar = RawNar.WithMagic().Regular(new string('x', 100_000)).ToArray();
        using var reader = new NarReader(new FailingStream(nar, failAfter: 50_000));
        var entry = reader.GetNextEntry()!;
        Assert.Throws<IOException>(() => entry.OpenPayload().CopyTo(Stream.Null));
        Assert.Throws<InvalidOperationException>(() => reader.GetNextEntry());
    }
}
