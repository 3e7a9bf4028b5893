using LazyStore.Nix;
using LazyStore.Tests.Support;

namespace LazyStore.Tests.Nix;

public sealed class NixCacheInfoTests
{
    // What https://cache.nixos.org/nix-cache-info serves.
    private const string CacheNixosOrg = "StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 40\n";

    [Fact]
    public void Parses_and_writes_cache_nixos_org()
    {
        var info = NixCacheInfo.Parse(CacheNixosOrg);
        Assert.Equal(StoreDirectory.Default, info.StoreDirectory);
        Assert.True(info.WantMassQuery);
        Assert.Equal(40, info.Priority);
        Assert.Equal(CacheNixosOrg, info.ToString());
    }

    [Fact]
    public void Absent_fields_stay_absent()
    {
        var info = NixCacheInfo.Parse("");
        Assert.Null(info.StoreDirectory);
        Assert.Null(info.WantMassQuery);
        Assert.Null(info.Priority);
        Assert.Equal("", info.ToString());
    }

    [Fact]
    public void Values_are_trimmed_and_unknown_keys_and_blank_lines_ignored()
    {
        var info = NixCacheInfo.Parse("\nStoreDir:/gnu/store \r\nWantMassQuery:  0\nFuture: x\n\nPriority: -3");
        Assert.Equal(new StoreDirectory("/gnu/store"), info.StoreDirectory);
        Assert.False(info.WantMassQuery);
        Assert.Equal(-3, info.Priority);
        Assert.Equal("StoreDir: /gnu/store\nWantMassQuery: 0\nPriority: -3\n", info.ToString());
    }

    [Theory]
    [InlineData("<html>", MetadataErrorKind.MalformedLine, null)]
    [InlineData(": 1", MetadataErrorKind.MalformedLine, null)]
    [InlineData("Priority: 1\nPriority: 2", MetadataErrorKind.DuplicateField, "Priority")]
    [InlineData("StoreDir: /nix/store\nStoreDir: /nix/store", MetadataErrorKind.DuplicateField, "StoreDir")]
    [InlineData("WantMassQuery: 1\nWantMassQuery: 1", MetadataErrorKind.DuplicateField, "WantMassQuery")]
    [InlineData("WantMassQuery: yes", MetadataErrorKind.InvalidValue, "WantMassQuery")]
    [InlineData("WantMassQuery: ", MetadataErrorKind.InvalidValue, "WantMassQuery")]
    [InlineData("Priority: 40abc", MetadataErrorKind.InvalidValue, "Priority")]
    [InlineData("Priority: ", MetadataErrorKind.InvalidValue, "Priority")]
    [InlineData("Priority: 99999999999", MetadataErrorKind.InvalidValue, "Priority")]
    [InlineData("StoreDir: nix/store", MetadataErrorKind.InvalidValue, "StoreDir")]
    [InlineData("StoreDir: /nix/store/", MetadataErrorKind.InvalidValue, "StoreDir")]
    public void Malformed_input_is_a_typed_error(string text, MetadataErrorKind kind, string? field)
    {
        var e = Assert.Throws<NixCacheInfoFormatException>(() => NixCacheInfo.Parse("Unknown: tolerated\n" + text, "https://example/nix-cache-info"));
        Assert.Equal(kind, e.Kind);
        Assert.Equal(field, e.Field);
        Assert.True(e.Line >= 2);
        Assert.Contains("https://example/nix-cache-info", e.Message);
    }

    [RealNixFact]
    public void Parses_what_Nix_writes()
    {
        using var dir = new TempDir();
        var src = Directory.CreateDirectory(dir.Sub("src")).FullName;
        File.WriteAllText(Path.Combine(src, "f"), "x");
        var root = dir.Sub("root");
        var path = RealNix.Run("nix-store", "--store", root, "--add", src).EnsureSuccess("nix-store --add").StdoutText.Trim();
        RealNix.Run("nix", "copy", "--store", root, "--to", $"file://{dir.Sub("cache")}?compression=none", path).EnsureSuccess("nix copy");
        var text = File.ReadAllText(Path.Combine(dir.Sub("cache"), NixCacheInfo.FileName));
        var info = NixCacheInfo.Parse(text);
        Assert.Equal(StoreDirectory.Default, info.StoreDirectory);
        Assert.Equal(text, info.ToString());
    }
}
