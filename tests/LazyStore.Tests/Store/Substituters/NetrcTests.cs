using LazyStore.Store.Substituters;
using LazyStore.Tests.Support;

namespace LazyStore.Tests.Store.Substituters;

public sealed class NetrcTests
{
    [Fact]
    public void A_machine_entry_gives_its_login_to_its_host_only()
    {
        var netrc = Netrc.Parse("machine cache.example.org login alice password s3cret\n", "test");
        var credentials = netrc.Find("cache.example.org");
        Assert.NotNull(credentials);
        Assert.Equal(("alice", "s3cret"), (credentials.Login, credentials.Password));
        Assert.Null(netrc.Find("other.example.org"));
        Assert.Null(netrc.Find("example.org"));
    }

    [Fact]
    public void Tokens_may_be_separated_by_any_white_space_and_hosts_match_without_case()
    {
        var netrc = Netrc.Parse("machine\tCache.Example.org\r\n\n   login\talice\n\tpassword   s3cret\r\nmachine b login bob password pw", "test");
        Assert.Equal("s3cret", netrc.Find("cache.example.org")?.Password);
        Assert.Equal("bob", netrc.Find("B")?.Login);
    }

    [Fact]
    public void The_default_entry_applies_only_where_no_machine_matches()
    {
        var netrc = Netrc.Parse("default login anyone password d\nmachine a login alice password a\n", "test");
        Assert.Equal("alice", netrc.Find("a")?.Login);
        Assert.Equal("anyone", netrc.Find("b")?.Login);
    }

    [Fact]
    public void The_first_matching_machine_wins()
    {
        var netrc = Netrc.Parse("machine a login first password 1\nmachine a login second password 2\n", "test");
        Assert.Equal("first", netrc.Find("a")?.Login);
    }

    [Fact]
    public void A_machine_without_login_or_password_sends_nothing_and_hides_the_default()
    {
        var netrc = Netrc.Parse("machine a\nmachine b login bob\ndefault login anyone password d\n", "test");
        Assert.Null(netrc.Find("a"));
        Assert.Equal(("bob", ""), (netrc.Find("b")?.Login, netrc.Find("b")?.Password));
    }

    [Fact]
    public void Quoted_tokens_hold_spaces_and_escapes()
    {
        var netrc = Netrc.Parse("machine a login \"al ice\" password \"p\\\"w\\\\x\\ty\"\n", "test");
        var credentials = netrc.Find("a");
        Assert.Equal("al ice", credentials?.Login);
        Assert.Equal("p\"w\\x\ty", credentials?.Password);
    }

    [Fact]
    public void Macros_and_comment_lines_are_skipped()
    {
        var netrc = Netrc.Parse("""
            # machine commented login no password no
            macdef init
            machine inside login macro password macro
            cd /pub

            machine a login alice password a#notacomment
            account ignored
            """, "test");
        Assert.Null(netrc.Find("commented"));
        Assert.Null(netrc.Find("inside"));
        Assert.Equal("a#notacomment", netrc.Find("a")?.Password);
    }

    [Fact]
    public void Keywords_are_read_without_case()
    {
        var netrc = Netrc.Parse("MACHINE a LOGIN alice Password a", "test");
        Assert.Equal("alice", netrc.Find("a")?.Login);
    }

    [Theory]
    [InlineData("machine a login", 1, "'login' needs a value")]
    [InlineData("machine", 1, "'machine' needs a value")]
    [InlineData("login alice", 1, "outside a machine")]
    [InlineData("machine a\nlogin alice\nport 21\n", 3, "unexpected token")]
    [InlineData("machine a login \"alice\npassword b", 1, "unterminated")]
    [InlineData("default login a password b\ndefault login c password d", 2, "second 'default'")]
    public void Malformed_files_are_errors_naming_the_file_and_line(string text, int line, string reason)
    {
        var e = Assert.Throws<NetrcException>(() => Netrc.Parse(text, "/etc/nix/netrc"));
        Assert.Equal("/etc/nix/netrc", e.File);
        Assert.Equal(line, e.Line);
        Assert.Contains("/etc/nix/netrc", e.Message, StringComparison.Ordinal);
        Assert.Contains(reason, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Errors_do_not_quote_tokens_that_may_be_passwords()
    {
        var e = Assert.Throws<NetrcException>(() => Netrc.Parse("machine a login alice password my secret", "test"));
        Assert.DoesNotContain("secret", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Credentials_do_not_show_the_password()
    {
        var credentials = Netrc.Parse("machine a login alice password s3cret", "test").Find("a");
        Assert.DoesNotContain("s3cret", credentials?.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void A_missing_file_or_none_means_no_logins()
    {
        using var dir = new TempDir();
        Assert.Null(Netrc.Load(dir.Sub("netrc")).Find("a"));
        Assert.Null(Netrc.Load(dir.Sub("no/such/dir/netrc")).Find("a"));
        Assert.Null(Netrc.Load(null).Find("a"));
    }

    [Fact]
    public void Load_reads_the_file()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.Sub("netrc"), "machine a login alice password a\n");
        Assert.Equal("alice", Netrc.Load(dir.Sub("netrc")).Find("a")?.Login);
    }

    [Fact]
    public void An_unreadable_file_is_an_error_naming_it()
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir.Sub("netrc"));
        var e = Assert.Throws<NetrcException>(() => Netrc.Load(dir.Sub("netrc")));
        Assert.Equal(dir.Sub("netrc"), e.File);
        Assert.Contains(dir.Sub("netrc"), e.Message, StringComparison.Ordinal);
    }
}
