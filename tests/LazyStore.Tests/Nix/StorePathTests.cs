using LazyStore.Nix;
using LazyStore.Tests.Support;

namespace LazyStore.Tests.Nix;

public sealed class StorePathTests
{
    private const string Hash = "60cnzhgz0hrwydbqzccqfqfrnalxgs0f";

    [Fact]
    public void Parses_a_full_path()
    {
        var path = StoreDirectory.Default.ParsePath($"/nix/store/{Hash}-hello-2.12.1");
        Assert.Equal(Hash, path.HashPart);
        Assert.Equal("hello-2.12.1", path.Name);
        Assert.Equal($"{Hash}-hello-2.12.1", path.BaseName);
        Assert.Equal($"{Hash}-hello-2.12.1", path.ToString());
        Assert.Equal($"/nix/store/{Hash}-hello-2.12.1", path.ToFullPath());
        Assert.Equal(path, StorePath.FromBaseName($"{Hash}-hello-2.12.1"));
    }

    [Fact]
    public void Digest_and_parts_round_trip()
    {
        var path = StorePath.FromBaseName($"{Hash}-src");
        Assert.Equal(20, path.Digest.Length);
        Assert.Equal(path, StorePath.FromParts(path.Digest, "src"));
    }

    [Fact]
    public void Uses_a_configured_store_directory()
    {
        var dir = new StoreDirectory("/tmp/store");
        var path = dir.ParsePath($"/tmp/store/{Hash}-x");
        Assert.Equal($"/tmp/store/{Hash}-x", path.ToFullPath(dir));
        Assert.Equal($"/tmp/store/{Hash}-x", dir.Print(path));
        Assert.True(dir.TryParsePath($"/tmp/store/{Hash}-x", out var again));
        Assert.Equal(path, again);
        Assert.False(dir.TryParsePath($"/nix/store/{Hash}-x", out _));
    }

    [Theory]
    [InlineData("a")]
    [InlineData("A-Za-z0-9+-._?=")]
    [InlineData(".dotfile")] // Nix 2.8 accepts a leading period (builtins.toFile ".foo" works there)
    [InlineData(".")]
    [InlineData("..")]
    public void Accepts_names_Nix_2_8_accepts(string name)
    {
        Assert.True(StorePath.IsValidName(name));
        Assert.Equal(name, StorePath.FromBaseName($"{Hash}-{name}").Name);
    }

    [Fact]
    public void Accepts_a_name_of_exactly_211_characters()
    {
        var name = new string('a', 211);
        Assert.Equal(name, StorePath.FromBaseName($"{Hash}-{name}").Name);
    }

    [Theory]
    [InlineData("60cnzhgz0hrwydbqzccqfqfrnalxgs0f", StorePathRule.TooShort)]
    [InlineData("60cnzhgz", StorePathRule.TooShort)]
    [InlineData("", StorePathRule.TooShort)]
    [InlineData("60cnzhgz0hrwydbqzccqfqfrnalxgs0e-x", StorePathRule.InvalidHashCharacter)]
    [InlineData("60CNZHGZ0HRWYDBQZCCQFQFRNALXGS0F-x", StorePathRule.InvalidHashCharacter)]
    [InlineData("60cnzhgz0hrwydbqzccqfqfrnalxgs0f_x", StorePathRule.MissingDash)]
    [InlineData("60cnzhgz0hrwydbqzccqfqfrnalxgs0f-", StorePathRule.EmptyName)]
    [InlineData("60cnzhgz0hrwydbqzccqfqfrnalxgs0f-a b", StorePathRule.InvalidNameCharacter)]
    [InlineData("60cnzhgz0hrwydbqzccqfqfrnalxgs0f-a/b", StorePathRule.InvalidNameCharacter)]
    [InlineData("60cnzhgz0hrwydbqzccqfqfrnalxgs0f-a@b", StorePathRule.InvalidNameCharacter)]
    [InlineData("60cnzhgz0hrwydbqzccqfqfrnalxgs0f-café", StorePathRule.InvalidNameCharacter)]
    public void Rejects_malformed_base_names(string baseName, StorePathRule rule)
    {
        var e = Assert.Throws<StorePathFormatException>(() => StorePath.FromBaseName(baseName));
        Assert.Equal(rule, e.Rule);
        Assert.Equal(baseName, e.Path);
        Assert.Contains($"'{baseName}'", e.Message);
        Assert.False(StorePath.TryFromBaseName(baseName, out _));
    }

    [Fact]
    public void Rejects_a_name_longer_than_211_characters()
    {
        var e = Assert.Throws<StorePathFormatException>(() => StorePath.FromBaseName($"{Hash}-{new string('a', 212)}"));
        Assert.Equal(StorePathRule.NameTooLong, e.Rule);
        Assert.Throws<StorePathFormatException>(() => StorePath.ValidateName(new string('a', 212)));
    }

    [Fact]
    public void ValidateName_reports_the_rule()
    {
        Assert.Equal(StorePathRule.EmptyName, Assert.Throws<StorePathFormatException>(() => StorePath.ValidateName("")).Rule);
        Assert.Equal(StorePathRule.InvalidNameCharacter, Assert.Throws<StorePathFormatException>(() => StorePath.ValidateName("x!")).Rule);
    }

    [Theory]
    [InlineData("/nix/store")]
    [InlineData("/nix/store/")]
    [InlineData("/nix/storex/60cnzhgz0hrwydbqzccqfqfrnalxgs0f-x")]
    [InlineData("/nix/60cnzhgz0hrwydbqzccqfqfrnalxgs0f-x")]
    [InlineData("/nix/store/60cnzhgz0hrwydbqzccqfqfrnalxgs0f-x/bin")]
    [InlineData("/nix/store/60cnzhgz0hrwydbqzccqfqfrnalxgs0f-x/")]
    [InlineData("nix/store/60cnzhgz0hrwydbqzccqfqfrnalxgs0f-x")]
    [InlineData("60cnzhgz0hrwydbqzccqfqfrnalxgs0f-x")]
    public void Rejects_paths_not_directly_in_the_store_directory(string fullPath)
    {
        var e = Assert.Throws<StorePathFormatException>(() => StoreDirectory.Default.ParsePath(fullPath));
        Assert.Equal(StorePathRule.NotInStoreDirectory, e.Rule);
        Assert.Contains(fullPath, e.Message);
        Assert.False(StoreDirectory.Default.TryParsePath(fullPath, out _));
    }

    [Fact]
    public void A_full_path_error_names_the_full_path()
    {
        var e = Assert.Throws<StorePathFormatException>(() => StoreDirectory.Default.ParsePath("/nix/store/60cnzhgz0hrwydbqzccqfqfrnalxgs0f-a b"));
        Assert.Equal(StorePathRule.InvalidNameCharacter, e.Rule);
        Assert.Equal("/nix/store/60cnzhgz0hrwydbqzccqfqfrnalxgs0f-a b", e.Path);
    }

    [Theory]
    [InlineData("")]
    [InlineData("/")]
    [InlineData("nix/store")]
    [InlineData("/nix/store/")]
    [InlineData("/nix//store")]
    [InlineData("/nix/./store")]
    [InlineData("/nix/../store")]
    public void Rejects_non_canonical_store_directories(string dir)
    {
        var e = Assert.Throws<StorePathFormatException>(() => new StoreDirectory(dir));
        Assert.Equal(StorePathRule.InvalidStoreDirectory, e.Rule);
        Assert.StartsWith("store directory", e.Message);
    }

    [Fact]
    public void Equality_and_order_are_by_base_name()
    {
        var a = StorePath.FromBaseName("00000000000000000000000000000000-z");
        var b = StorePath.FromBaseName("10000000000000000000000000000000-a");
        var a2 = StoreDirectory.Default.ParsePath("/nix/store/00000000000000000000000000000000-z");
        Assert.Equal(a, a2);
        Assert.True(a == a2);
        Assert.Equal(a.GetHashCode(), a2.GetHashCode());
        Assert.True(a < b);
        Assert.True(b >= a);
        Assert.Equal([a, b], new[] { b, a }.Order().ToArray());
        Assert.NotEqual(a, b);
    }

    [RealNixFact]
    public void Agrees_with_real_Nix_on_names()
    {
        using var dir = new TempDir();
        var root = dir.Sub("root");
        foreach (var name in new[] { ".", "..", ".hidden", "a?b=c+d_e", new string('n', 211) })
        {
            var result = RealNix.Run("nix", "eval", "--store", root, "--raw", "--expr", $"builtins.toFile \"{name}\" \"x\"").EnsureSuccess($"builtins.toFile \"{name}\"");
            var path = StoreDirectory.Default.ParsePath(result.StdoutText.Trim());
            Assert.Equal(name, path.Name);
        }
        foreach (var name in new[] { new string('n', 212), "a b", "a@b" })
        {
            var result = RealNix.Run("nix", "eval", "--store", root, "--raw", "--expr", $"builtins.toFile \"{name}\" \"x\"");
            Assert.NotEqual(0, result.ExitCode);
            Assert.False(StorePath.IsValidName(name));
        }
    }
}
