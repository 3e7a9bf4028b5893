using System.Diagnostics;
using System.Text.Json;
using LazyStore.Nix;
using LazyStore.Store.Registration;
using LazyStore.Tests.Support;

namespace LazyStore.Tests.Store;

public sealed class DerivationTests
{
    private const string Source = "/nix/store/test.drv";

    private static readonly string Out = "/nix/store/" + new string('1', 32) + "-x";
    private static readonly string Dev = "/nix/store/" + new string('2', 32) + "-x-dev";
    private static readonly string Fixed = "/nix/store/" + new string('3', 32) + "-src";
    private static readonly string Input = "/nix/store/" + new string('4', 32) + "-dep.drv";
    private static readonly string Busybox = "/nix/store/" + new string('5', 32) + "-busybox";
    private static readonly string Sha256 = new('a', 64);

    // Every kind of output, two input outputs, and strings holding each escape.
    private static readonly string Sample =
        $"Derive([(\"dev\",\"{Dev}\",\"\",\"\"),(\"fixed\",\"{Fixed}\",\"r:sha256\",\"{Sha256}\"),(\"floating\",\"\",\"sha256\",\"\"),(\"out\",\"{Out}\",\"\",\"\")],"
        + $"[(\"{Input}\",[\"dev\",\"out\"])],[\"{Busybox}\"],\"x86_64-linux\",\"{Busybox}/busybox\","
        + "[\"sh\",\"-c\",\"echo \\\"q\\\" \\\\ a\\nb\\rc\\td\"],"
        + $"[(\"empty\",\"\"),(\"name\",\"x\"),(\"out\",\"{Out}\"),(\"\\\"odd\\\\\",\"é\")])";

    [Fact]
    public void ParsesEveryPartAndWritesTheSameTextBack()
    {
        var derivation = Derivation.Parse(Sample, StoreDirectory.Default, Source);
        Assert.Equal(["dev", "fixed", "floating", "out"], derivation.Outputs.Keys);
        Assert.Equal(Dev, derivation.Outputs["dev"].Path!.ToFullPath());
        Assert.Equal(Out, derivation.Outputs["out"].Path!.ToFullPath());
        Assert.False(derivation.Outputs["out"].IsFixed);
        var fixedOutput = derivation.Outputs["fixed"];
        Assert.True(fixedOutput.IsFixed);
        Assert.Equal("r:sha256", fixedOutput.HashAlgorithm);
        Assert.Equal(Sha256, fixedOutput.Hash!.ToBase16());
        Assert.Null(derivation.Outputs["floating"].Path);
        Assert.Equal("sha256", derivation.Outputs["floating"].HashAlgorithm);
        Assert.Equal(Input, Assert.Single(derivation.InputDrvs).Key.ToFullPath());
        Assert.Equal(["dev", "out"], derivation.InputDrvs.Single().Value);
        Assert.Equal(Busybox, Assert.Single(derivation.InputSrcs).ToFullPath());
        Assert.Equal("x86_64-linux", derivation.Platform);
        Assert.Equal(Busybox + "/busybox", derivation.Builder);
        Assert.Equal(["sh", "-c", "echo \"q\" \\ a\nb\rc\td"], derivation.Args);
        Assert.Equal("é", derivation.Env["\"odd\\"]);
        Assert.Equal("", derivation.Env["empty"]);
        Assert.Equal(Sample, derivation.Unparse(StoreDirectory.Default));
    }

    [Fact]
    public void AnotherStoreDirectoryIsHonoured()
    {
        var text = Sample.Replace("/nix/store/", "/gnu/store/", StringComparison.Ordinal);
        var derivation = Derivation.Parse(text, new StoreDirectory("/gnu/store"), Source);
        Assert.Equal(Out.Replace("/nix/", "/gnu/", StringComparison.Ordinal), derivation.Outputs["out"].Path!.ToFullPath(new StoreDirectory("/gnu/store")));
        var error = Assert.Throws<DerivationFormatException>(() => Derivation.Parse(text, StoreDirectory.Default, Source));
        Assert.Equal(MetadataErrorKind.InvalidValue, error.Kind);
        Assert.Equal("outputs", error.Field);
    }

    [Fact]
    public void EveryTruncationIsAnErrorAtOrBeforeTheCut()
    {
        for (var length = 0; length < Sample.Length; length++)
        {
            var error = Assert.Throws<DerivationFormatException>(() => Derivation.Parse(Sample[..length], StoreDirectory.Default, Source));
            Assert.InRange(error.Offset, 0, length);
            Assert.StartsWith(Source, error.Message, StringComparison.Ordinal);
        }
    }

    [Theory]
    [InlineData("", MetadataErrorKind.Syntax, null, 0, "expected 'Derive(', found the end of the text")]
    [InlineData("Derive[", MetadataErrorKind.Syntax, null, 0, "expected 'Derive(', found 'Derive['")]
    [InlineData("Derive([(\"out\",\"\",\"\",\"\")],[],[],\"s\",\"b\",[\"a\\q\"],[])", MetadataErrorKind.Syntax, "args", 43, "unknown escape '\\q'")]
    [InlineData("Derive([(\"out\",\"\",\"\",\"\")],[],[],\"s\",\"b\",[\"a\\", MetadataErrorKind.Syntax, "args", 43, "the text ends after a backslash")]
    [InlineData("Derive([(\"out\",\"\",\"\",\"\")],[],[],\"s\",\"b\",[\"abc", MetadataErrorKind.Syntax, "args", 41, "the text ends inside it")]
    [InlineData("Derive([(\"out\",\"\",\"\",\"\")],[],[],\"s\",\"b\",[\"a\"\"b\"],[])", MetadataErrorKind.Syntax, "args", 44, "expected ',' or ']', found '\"b\"],[])'")]
    [InlineData("Derive([(\"out\",\"\",\"\",\"\")],[],[],\"s\",\"b\",[],[]))", MetadataErrorKind.Syntax, null, 46, "unexpected ')' after the derivation")]
    [InlineData("Derive([(\"out\",\"\",\"\",\"\")],[],[],\"s\",\"b\",[],[])\n", MetadataErrorKind.Syntax, null, 46, "unexpected '\\x0a'")]
    [InlineData("Derive([(\"out\",\"/tmp/x\",\"\",\"\")],[],[],\"s\",\"b\",[],[])", MetadataErrorKind.InvalidValue, "outputs", 15, "'/tmp/x' is not directly inside the store directory /nix/store")]
    [InlineData("Derive([(\"out\",\"/nix/store/abc-x\",\"\",\"\")],[],[],\"s\",\"b\",[],[])", MetadataErrorKind.InvalidValue, "outputs", 15, "shorter than")]
    [InlineData("Derive([(\"out\",\"\",\"\",\"\"),(\"out\",\"\",\"\",\"\")],[],[],\"s\",\"b\",[],[])", MetadataErrorKind.DuplicateField, "outputs", 26, "output 'out' appears more than once")]
    [InlineData("Derive([(\"out\",\"\",\"md6\",\"\")],[],[],\"s\",\"b\",[],[])", MetadataErrorKind.InvalidValue, "outputs", 18, "unknown hash algorithm 'md6'")]
    [InlineData("Derive([(\"out\",\"\",\"sha256\",\"00\")],[],[],\"s\",\"b\",[],[])", MetadataErrorKind.InvalidValue, "outputs", 15, "fixed output (with a hash) has no path")]
    [InlineData("Derive([(\"out\",\"\",\"\",\"00\")],[],[],\"s\",\"b\",[],[])", MetadataErrorKind.InvalidValue, "outputs", 21, "has hash '00' but no hash algorithm")]
    [InlineData("Derive([],[(\"/nix/store/44444444444444444444444444444444-dep\",[\"out\"])],[],\"s\",\"b\",[],[])", MetadataErrorKind.InvalidValue, "inputDrvs", 12, "is not a .drv path")]
    [InlineData("Derive([],[],[\"../../etc/passwd\"],\"s\",\"b\",[],[])", MetadataErrorKind.InvalidValue, "inputSrcs", 14, "'../../etc/passwd' is not directly inside")]
    [InlineData("Derive([],[],[\"/nix/store/55555555555555555555555555555555-a/b\"],\"s\",\"b\",[],[])", MetadataErrorKind.InvalidValue, "inputSrcs", 14, "is not directly inside")]
    [InlineData("Derive([],[],[],\"s\",\"b\",[],[(\"a\",\"1\"),(\"a\",\"2\")])", MetadataErrorKind.DuplicateField, "env", 39, "variable 'a' appears more than once")]
    [InlineData("Derive([],[],[],\"s\",\"b\",[],[(\"a\")])", MetadataErrorKind.Syntax, "env", 32, "expected ',', found ')])'")]
    public void MalformedInputSaysWhereAndWhat(string text, MetadataErrorKind kind, string? field, int offset, string reason)
    {
        var error = Assert.Throws<DerivationFormatException>(() => Derivation.Parse(text, StoreDirectory.Default, Source));
        Assert.Equal(kind, error.Kind);
        Assert.Equal(field, error.Field);
        Assert.Equal(offset, error.Offset);
        Assert.Contains(reason, error.Message, StringComparison.Ordinal);
        Assert.Contains($"at offset {offset}: ", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', error.Message);
    }

    [Fact]
    public void HugeNestingFailsAtTheFirstBracketTooMany()
    {
        // The grammar has a fixed depth; nothing recurses on the input's nesting.
        var text = "Derive(" + new string('[', 1_000_000) + new string(']', 1_000_000) + ")";
        var clock = Stopwatch.StartNew();
        var error = Assert.Throws<DerivationFormatException>(() => Derivation.Parse(text, StoreDirectory.Default, Source));
        Assert.Equal(8, error.Offset);
        Assert.Equal("outputs", error.Field);
        Assert.Contains("expected '(', found '[[[[", error.Message, StringComparison.Ordinal);
        var strings = "Derive([],[],[],\"s\",\"b\",[" + string.Join(',', Enumerable.Repeat("\"\"", 1_000_000)) + "],[])";
        Assert.Equal(1_000_000, Derivation.Parse(strings, StoreDirectory.Default, Source).Args.Count);
    }

    [Fact]
    public void IsDerivationLooksAtTheName()
    {
        Assert.True(Derivation.IsDerivation(StorePath.FromBaseName(new string('4', 32) + "-dep.drv")));
        Assert.False(Derivation.IsDerivation(StorePath.FromBaseName(new string('4', 32) + "-dep.drv-out")));
    }

    /// <summary>Derivations written by the real nix-instantiate, read back exactly, and compared with nix show-derivation.</summary>
    [RealNixFact]
    public void ReadsWhatNixWritesAsNixShowDerivationDoes()
    {
        using var dir = new TempDir("lazystore-drv-");
        var root = dir.Sub("root");
        File.WriteAllText(dir.Sub("builder.sh"), "echo hi > $out\n");
        File.WriteAllText(dir.Sub("drvs.nix"), """
            let
              builder = ./builder.sh;
              lib = derivation {
                name = "lib"; system = "x86_64-linux"; builder = "/bin/sh"; args = [ builder ];
                outputs = [ "out" "dev" "doc" ];
              };
            in {
              inherit lib;
              tool = derivation {
                name = "tool"; system = "x86_64-linux"; builder = "/bin/sh";
                args = [ "-c" "echo \"quoted\" \\back\\slash\n\ttab\r ${lib.dev} é $HOME" ];
                odd = "line one\nline two\ttabbed \"quoted\" \\ \r";
                libdoc = lib.doc;
                libout = lib;
                src = builder;
              };
              fetched = derivation {
                name = "fetched"; system = "x86_64-linux"; builder = "/bin/sh"; args = [ "-c" "exit 1" ];
                outputHashMode = "recursive"; outputHashAlgo = "sha256";
                outputHash = "0000000000000000000000000000000000000000000000000000000000000000";
              };
              flat = derivation {
                name = "flat"; system = "x86_64-linux"; builder = "/bin/sh"; args = [ "-c" "exit 1" ];
                outputHashAlgo = "sha1"; outputHash = "0000000000000000000000000000000000000000";
              };
            }
            """);
        var drvs = RealNix.Run("nix-instantiate", "--store", root, dir.Sub("drvs.nix")).EnsureSuccess("nix-instantiate")
            .StdoutText.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(4, drvs.Length);
        foreach (var drv in drvs)
        {
            var file = Path.Combine(root, "nix", "store", Path.GetFileName(drv));
            var text = File.ReadAllText(file);
            var derivation = Derivation.Parse(text, StoreDirectory.Default, file);
            Assert.Equal(text, derivation.Unparse(StoreDirectory.Default));

            var shown = RealNix.Run("nix", "show-derivation", "--store", root, drv).EnsureSuccess("nix show-derivation");
            var json = JsonDocument.Parse(shown.StdoutText).RootElement.GetProperty(drv);
            var outputs = json.GetProperty("outputs").EnumerateObject().ToList();
            Assert.Equal(outputs.Select(o => o.Name), derivation.Outputs.Keys);
            foreach (var output in outputs)
            {
                var parsed = derivation.Outputs[output.Name];
                Assert.Equal(output.Value.GetProperty("path").GetString(), parsed.Path!.ToFullPath());
                Assert.Equal(output.Value.TryGetProperty("hashAlgo", out var algorithm) ? algorithm.GetString() : "", parsed.HashAlgorithm);
                Assert.Equal(output.Value.TryGetProperty("hash", out var hash) ? hash.GetString() : null, parsed.Hash?.ToBase16());
            }
            Assert.Equal(json.GetProperty("inputSrcs").EnumerateArray().Select(s => s.GetString()), derivation.InputSrcs.Select(p => p.ToFullPath()));
            Assert.Equal(
                json.GetProperty("inputDrvs").EnumerateObject().Select(i => (i.Name, string.Join(",", i.Value.EnumerateArray().Select(o => o.GetString())))),
                derivation.InputDrvs.Select(i => (i.Key.ToFullPath(), string.Join(",", i.Value))));
            Assert.Equal(json.GetProperty("system").GetString(), derivation.Platform);
            Assert.Equal(json.GetProperty("builder").GetString(), derivation.Builder);
            Assert.Equal(json.GetProperty("args").EnumerateArray().Select(a => a.GetString()), derivation.Args);
            Assert.Equal(json.GetProperty("env").EnumerateObject().Select(e => (e.Name, e.Value.GetString())), derivation.Env.Select(e => (e.Key, (string?)e.Value)));
        }
        var tool = Derivation.Parse(File.ReadAllText(Path.Combine(root, "nix", "store", Path.GetFileName(drvs.Single(d => d.EndsWith("-tool.drv", StringComparison.Ordinal))))),
            StoreDirectory.Default, "tool.drv");
        Assert.Equal("line one\nline two\ttabbed \"quoted\" \\ \r", tool.Env["odd"]);
        Assert.Equal(["dev", "doc", "out"], tool.InputDrvs.Single().Value);
    }
}
