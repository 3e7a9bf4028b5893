using System.Text.Json;
using LazyStore.Store.Configuration;
using LazyStore.Store.Substituters;
using LazyStore.Tests.Support;

namespace LazyStore.Tests.Store;

public class NixConfigurationTests
{
    private static Func<string, string?> Env(Dictionary<string, string> values) => name => values.GetValueOrDefault(name);

    [Fact]
    public void Later_settings_override_and_extra_appends_with_comments_stripped()
    {
        var c = new NixConfiguration();
        c.ApplyText("""
            substituters = http://a   # first
            substituters = http://b http://c
            extra-substituters = http://d
            # a whole-line comment
            require-sigs = false#tight comment
            """, "test", "/");
        Assert.Equal(["http://b", "http://c", "http://d"], c.GetList("substituters"));
        Assert.Equal("false", c.Get("require-sigs"));
        Assert.Null(c.Get("netrc-file"));
    }

    [Fact]
    public void Include_is_relative_and_required_while_bang_include_is_optional()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.Sub("extra.conf"), "extra-trusted-public-keys = k:AAAA\n");
        File.WriteAllText(dir.Sub("nix.conf"), "trusted-public-keys = a:BBBB\ninclude extra.conf\n!include missing.conf\n");
        var c = new NixConfiguration();
        c.ApplyFile(dir.Sub("nix.conf"), optional: false);
        Assert.Equal(["a:BBBB", "k:AAAA"], c.GetList("trusted-public-keys"));

        File.WriteAllText(dir.Sub("bad.conf"), "include missing.conf\n");
        var e = Assert.Throws<NixConfigurationException>(() => new NixConfiguration().ApplyFile(dir.Sub("bad.conf"), optional: false));
        Assert.Contains("missing.conf", e.Message);
    }

    [Theory]
    [InlineData("substituters")]
    [InlineData("substituters http://x")]
    [InlineData("= x")]
    public void Illegal_lines_are_errors_naming_the_file(string line)
    {
        var e = Assert.Throws<NixConfigurationException>(() => new NixConfiguration().ApplyText(line, "some.conf", "/"));
        Assert.Contains("some.conf", e.Message);
    }

    [Fact]
    public void Load_reads_system_then_user_files_then_NIX_CONFIG()
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir.Sub("etc"));
        File.WriteAllText(dir.Sub("etc/nix.conf"), "substituters = http://system\nrequire-sigs = true\nnarinfo-cache-negative-ttl = 10\n");
        File.WriteAllText(dir.Sub("user1.conf"), "extra-substituters = http://user1\n");
        File.WriteAllText(dir.Sub("user2.conf"), "substituters = http://user2\n");
        var c = NixConfiguration.Load(Env(new()
        {
            ["NIX_CONF_DIR"] = dir.Sub("etc"),
            // The first file is the most important one, so it is applied last.
            ["NIX_USER_CONF_FILES"] = dir.Sub("user1.conf") + ":" + dir.Sub("user2.conf"),
            ["NIX_CONFIG"] = "require-sigs = false",
        }));
        Assert.Equal(["http://user2", "http://user1"], c.GetList("substituters"));
        var settings = SubstituterSettings.From(c, dir.Sub("etc"));
        Assert.False(settings.RequireSignatures);
        Assert.Equal(TimeSpan.FromSeconds(10), settings.NegativeTtl);
        Assert.Equal(Path.Combine(dir.Sub("etc"), "netrc"), settings.NetrcFile);
    }

    [Fact]
    public void Defaults_are_nixes_and_the_command_line_wins()
    {
        var empty = new NixConfiguration();
        var defaults = SubstituterSettings.From(empty, "/etc/nix");
        Assert.Equal(new Uri(SubstituterSettings.DefaultSubstituter), Assert.Single(defaults.Substituters));
        Assert.Equal("cache.nixos.org-1", Assert.Single(defaults.TrustedPublicKeys).Name);
        Assert.True(defaults.RequireSignatures);
        Assert.Equal(TimeSpan.FromDays(30), defaults.PositiveTtl);

        var overridden = SubstituterSettings.From(empty, "/etc/nix", ["file:///tmp/cache"], ["mine-1:" + Convert.ToBase64String(new byte[32])], requireSignatures: false);
        Assert.Equal("file", Assert.Single(overridden.Substituters).Scheme);
        Assert.Equal("mine-1", Assert.Single(overridden.TrustedPublicKeys).Name);
        Assert.False(overridden.RequireSignatures);
    }

    [Fact]
    public void Download_deadlines_are_read_with_nixes_defaults_and_meanings()
    {
        var defaults = SubstituterSettings.From(new NixConfiguration(), "/etc/nix");
        // connect-timeout 0 is curl's default of 300 s.
        Assert.Equal(TimeSpan.FromSeconds(300), defaults.ConnectTimeout);
        Assert.Equal(TimeSpan.FromSeconds(300), defaults.StalledDownloadTimeout);
        Assert.Equal(5, defaults.DownloadAttempts);
        Assert.Equal(25, defaults.HttpConnections);

        var c = new NixConfiguration();
        c.ApplyText("connect-timeout = 7\nstalled-download-timeout = 11\ndownload-attempts = 3\nhttp-connections = 9\n", "t", "/");
        var set = SubstituterSettings.From(c, "/etc/nix");
        var transport = TransportOptions.From(set);
        Assert.Equal((TimeSpan.FromSeconds(7), TimeSpan.FromSeconds(11), 3, 9), (transport.ConnectTimeout, transport.StalledDownloadTimeout, transport.Attempts, transport.MaxConnections));

        // 0 turns the stall limit off; no attempt at all is still one; 0 connections is no limit.
        c.ApplyText("connect-timeout = 0\nstalled-download-timeout = 0\ndownload-attempts = 0\nhttp-connections = 0\n", "t", "/");
        var zero = SubstituterSettings.From(c, "/etc/nix");
        Assert.Equal((TimeSpan.FromSeconds(300), Timeout.InfiniteTimeSpan, 1, 0), (zero.ConnectTimeout, zero.StalledDownloadTimeout, zero.DownloadAttempts, zero.HttpConnections));
    }

    [Theory]
    [InlineData("substituters = ftp://x")]
    [InlineData("require-sigs = maybe")]
    [InlineData("narinfo-cache-negative-ttl = soon")]
    [InlineData("connect-timeout = -1")]
    [InlineData("stalled-download-timeout = 5s")]
    [InlineData("download-attempts = many")]
    public void Invalid_values_are_errors_naming_the_setting(string line)
    {
        var c = new NixConfiguration();
        c.ApplyText(line, "t", "/");
        Assert.Throws<NixConfigurationException>(() => SubstituterSettings.From(c, "/etc/nix"));
    }

    [RealNixFact]
    public void Agrees_with_nix_show_config()
    {
        RealNix.Require();
        using var dir = new TempDir();
        Directory.CreateDirectory(dir.Sub("etc"));
        File.WriteAllText(dir.Sub("etc/nix.conf"), "substituters = http://127.0.0.1:1/a # c\nextra-substituters = file:///x\ninclude more.conf\n!include none.conf\nrequire-sigs = false\n");
        File.WriteAllText(dir.Sub("etc/more.conf"), "trusted-public-keys = k1:" + Convert.ToBase64String(new byte[32]) + "\nnarinfo-cache-negative-ttl = 77\n");
        File.WriteAllText(dir.Sub("user.conf"), "extra-trusted-public-keys = k2:" + Convert.ToBase64String(new byte[32]) + "\n");
        var env = new Dictionary<string, string>
        {
            ["NIX_CONF_DIR"] = dir.Sub("etc"),
            ["NIX_USER_CONF_FILES"] = dir.Sub("user.conf"),
            ["NIX_CONFIG"] = "extra-substituters = http://127.0.0.1:1/b\nexperimental-features = nix-command",
        };
        var nix = ExternalTool.Run(ExternalTool.Find("nix")!, ["show-config", "--json"], env!).EnsureSuccess("nix show-config");
        using var json = JsonDocument.Parse(nix.Stdout);
        string[] Values(string name) => json.RootElement.GetProperty(name).GetProperty("value") switch
        {
            { ValueKind: JsonValueKind.Array } a => a.EnumerateArray().Select(v => v.ToString()).ToArray(),
            var v => [v.ToString()],
        };

        var ours = NixConfiguration.Load(Env(env));
        Assert.Equal(Values("substituters"), ours.GetList("substituters"));
        Assert.Equal(Values("trusted-public-keys"), ours.GetList("trusted-public-keys"));
        Assert.Equal(Values("require-sigs")[0].ToLowerInvariant(), ours.Get("require-sigs"));
        Assert.Equal(Values("narinfo-cache-negative-ttl")[0], ours.Get("narinfo-cache-negative-ttl"));
    }
}
