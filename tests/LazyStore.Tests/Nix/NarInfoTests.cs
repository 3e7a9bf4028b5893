using FsCheck;
using FsCheck.Fluent;
using LazyStore.Nix;
using LazyStore.Nix.Signatures;
using LazyStore.Tests.Support;

namespace LazyStore.Tests.Nix;

public sealed class NarInfoTests
{
    private static readonly NixHash NarHash = NixHash.Compute(NixHashAlgorithm.Sha256, "nar"u8);
    private static readonly NixHash FileHash = NixHash.Compute(NixHashAlgorithm.Sha256, "file"u8);
    private const string Hello = "0i6ardx43rdg24ab1nc3mq7f5ykyiamb-hello-2.12.1";
    private const string Glibc = "yzjgl0h6a3qvgn6cyjvkg6x23mdkldac-glibc-2.35-224";
    private const string Drv = "5zyb7yrp4xwyqs4x5kgyy5b23b8ldk2l-hello-2.12.1.drv";
    private const string Sig = "cache.nixos.org-1:uwHKCwL9oSqZ8wGIAzybGYj8yvOxuh2pSmwFEN4QUO7hlKtuIiR/BMdr1R/P2KwZAQZXaNQ9OddHjBS05S8vAQ==";

    private static string Full => $"""
        StorePath: /nix/store/{Hello}
        URL: nar/{FileHash.ToNix32()}.nar.xz
        Compression: xz
        FileHash: {FileHash}
        FileSize: 50132
        NarHash: {NarHash}
        NarSize: 226560
        References: {Hello} {Glibc}
        Deriver: {Drv}
        System: x86_64-linux
        Sig: {Sig}
        CA: fixed:r:{NarHash}

        """.Replace("\r\n", "\n", StringComparison.Ordinal);

    private static string Minimal => $"StorePath: /nix/store/{Hello}\nURL: nar/x.nar\nNarHash: {NarHash}\nNarSize: 1\n";

    [Fact]
    public void Parses_every_field()
    {
        var info = NarInfo.Parse(Full);
        Assert.Equal(Hello, info.StorePath.BaseName);
        Assert.Equal($"nar/{FileHash.ToNix32()}.nar.xz", info.Url);
        Assert.Equal("xz", info.Compression);
        Assert.Equal(FileHash, info.FileHash);
        Assert.Equal(50132UL, info.FileSize);
        Assert.Equal(NarHash, info.NarHash);
        Assert.Equal(226560UL, info.NarSize);
        Assert.Equal([Hello, Glibc], info.References.Select(r => r.BaseName));
        Assert.Equal(Drv, info.Deriver?.BaseName);
        Assert.Equal("x86_64-linux", info.System);
        Assert.Equal([Sig], info.Signatures);
        Assert.Equal($"fixed:r:{NarHash}", info.ContentAddress);
    }

    [Fact]
    public void Writes_what_it_read_in_Nix_field_order()
    {
        Assert.Equal(Full, NarInfo.Parse(Full).ToString());
    }

    [Fact]
    public void Minimal_narinfo_gets_Nix_defaults()
    {
        var info = NarInfo.Parse(Minimal);
        Assert.Equal("bzip2", info.Compression);
        Assert.Null(info.FileHash);
        Assert.Null(info.FileSize);
        Assert.Empty(info.References);
        Assert.Null(info.Deriver);
        Assert.Null(info.System);
        Assert.Empty(info.Signatures);
        Assert.Null(info.ContentAddress);
        Assert.Equal(
            $"StorePath: /nix/store/{Hello}\nURL: nar/x.nar\nCompression: bzip2\nNarHash: {NarHash}\nNarSize: 1\nReferences: \n",
            info.ToString());
    }

    [Fact]
    public void Empty_compression_means_bzip2_as_in_Nix()
    {
        Assert.Equal("bzip2", NarInfo.Parse(Minimal + "Compression: \n").Compression);
        Assert.Equal("bzip2", NarInfo.Parse(Minimal + "Compression:\n").Compression);
    }

    [Fact]
    public void Unknown_deriver_means_none()
    {
        Assert.Null(NarInfo.Parse(Minimal + "Deriver: unknown-deriver\n").Deriver);
    }

    [Fact]
    public void Unknown_keys_are_ignored_and_not_written()
    {
        var info = NarInfo.Parse(Minimal + "Future: something\nX-Whatever: 1\n");
        Assert.DoesNotContain("Future", info.ToString());
    }

    [Fact]
    public void A_missing_final_newline_is_accepted()
    {
        Assert.Equal(1UL, NarInfo.Parse(Minimal.TrimEnd('\n')).NarSize);
    }

    [Fact]
    public void Hashes_in_any_Nix_encoding_are_read_and_written_as_nix32()
    {
        var info = NarInfo.Parse(Minimal.Replace(NarHash.ToString(), NarHash.ToSri(), StringComparison.Ordinal) + $"FileHash: sha256:{FileHash.ToBase16()}\n");
        Assert.Equal(NarHash, info.NarHash);
        Assert.Contains($"NarHash: {NarHash}\n", info.ToString());
        Assert.Contains($"FileHash: {FileHash}\n", info.ToString());
    }

    [Fact]
    public void References_and_signatures_are_sorted_sets()
    {
        var info = NarInfo.Parse(Minimal + $"References: {Glibc}  {Hello} {Glibc}\nSig: b:x\nSig: a:y\nSig: b:x\n");
        Assert.Equal([Hello, Glibc], info.References.Select(r => r.BaseName));
        Assert.Equal(["a:y", "b:x"], info.Signatures);
        Assert.Contains($"References: {Hello} {Glibc}\nSig: a:y\nSig: b:x\n", info.ToString());
    }

    [Fact]
    public void Reads_utf8_bytes_and_a_custom_store_directory()
    {
        var dir = new StoreDirectory("/tmp/store");
        var text = Minimal.Replace("/nix/store/", "/tmp/store/", StringComparison.Ordinal);
        var info = NarInfo.Parse(System.Text.Encoding.UTF8.GetBytes(text), dir);
        Assert.Equal(dir, info.StoreDirectory);
        Assert.StartsWith($"StorePath: /tmp/store/{Hello}\n", info.ToString());
        Assert.StartsWith($"1;/tmp/store/{Hello};", info.Fingerprint());
    }

    [Theory]
    [InlineData("StorePath")]
    [InlineData("URL")]
    [InlineData("NarHash")]
    [InlineData("NarSize")]
    public void A_missing_required_field_is_a_typed_error(string field)
    {
        var text = string.Concat(Minimal.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => !l.StartsWith(field + ":", StringComparison.Ordinal)).Select(l => l + "\n"));
        var e = Assert.Throws<NarInfoFormatException>(() => NarInfo.Parse(text, source: "x.narinfo"));
        Assert.Equal(MetadataErrorKind.MissingField, e.Kind);
        Assert.Equal(field, e.Field);
        Assert.Null(e.Line);
        Assert.Contains("x.narinfo", e.Message);
        Assert.Contains(field, e.Message);
    }

    [Theory]
    [InlineData("StorePath: /nix/store/" + Glibc, "StorePath")]
    [InlineData("URL: nar/y.nar", "URL")]
    [InlineData("Compression: xz\nCompression: xz", "Compression")]
    [InlineData("NarSize: 2", "NarSize")]
    [InlineData("References: \nReferences: ", "References")]
    [InlineData("Deriver: " + Drv + "\nDeriver: " + Drv, "Deriver")]
    [InlineData("System: a\nSystem: a", "System")]
    [InlineData("CA: text:sha256:1b8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5s\nCA: text:sha256:1b8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5s", "CA")]
    public void A_repeated_field_is_a_typed_error(string extra, string field)
    {
        var e = Assert.Throws<NarInfoFormatException>(() => NarInfo.Parse(Minimal + extra + "\n"));
        Assert.Equal(MetadataErrorKind.DuplicateField, e.Kind);
        Assert.Equal(field, e.Field);
        Assert.NotNull(e.Line);
    }

    [Theory]
    [InlineData("no colon here", 5)]
    [InlineData(": value", 5)]
    [InlineData("NarSize:1", 5)]
    [InlineData("", 5)]
    public void A_malformed_line_is_a_typed_error_with_its_number(string line, int number)
    {
        var e = Assert.Throws<NarInfoFormatException>(() => NarInfo.Parse(Minimal + line + "\nSystem: x\n"));
        Assert.Equal(MetadataErrorKind.MalformedLine, e.Kind);
        Assert.Equal(number, e.Line);
        Assert.Contains($"line {number}", e.Message);
    }

    [Fact]
    public void Invalid_utf8_is_a_typed_error()
    {
        var e = Assert.Throws<NarInfoFormatException>(() => NarInfo.Parse([0x53, 0xff, 0x0a]));
        Assert.Equal(MetadataErrorKind.MalformedLine, e.Kind);
    }

    public static TheoryData<string, string> InvalidValues => new()
    {
        { "StorePath", "/nix/store/short" },
        { "StorePath", "/usr/" + Hello },
        { "StorePath", Hello },
        { "URL", "" },
        { "FileHash", "sha256:nothex" },
        { "FileSize", "-1" },
        { "FileSize", "+1" },
        { "FileSize", "1 " },
        { "FileSize", "18446744073709551616" },
        { "NarHash", "md5:abc" },
        { "NarHash", NarHash.ToNix32() },
        { "NarSize", "0" },
        { "NarSize", "ten" },
        { "NarSize", "" },
        { "References", "not-a-store-path" },
        { "References", "/nix/store/" + Glibc },
        { "Deriver", "" },
        { "Deriver", "bad deriver" },
        { "Sig", "" },
        { "CA", "sha256:" + "1b8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5s" },
        { "CA", "text:sha1:kpcd173cq987hw957sx6m0868wv3x6d9" },
        { "CA", "fixed:r:sha256:tooshort" },
        { "CA", "fixed:" },
    };

    [Theory]
    [MemberData(nameof(InvalidValues))]
    public void An_invalid_value_is_a_typed_error_naming_field_and_line(string field, string value)
    {
        var lines = Minimal.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => !l.StartsWith(field + ":", StringComparison.Ordinal)).ToList();
        lines.Insert(1, $"{field}: {value}");
        var e = Assert.Throws<NarInfoFormatException>(() => NarInfo.Parse(string.Join('\n', lines) + "\n"));
        Assert.Equal(MetadataErrorKind.InvalidValue, e.Kind);
        Assert.Equal(field, e.Field);
        Assert.Equal(2, e.Line);
        Assert.Contains($"line 2 field {field}", e.Message);
    }

    [Fact]
    public void Fingerprint_follows_Nix()
    {
        var info = NarInfo.Parse(Full);
        Assert.Equal($"1;/nix/store/{Hello};{NarHash};226560;/nix/store/{Hello},/nix/store/{Glibc}", info.Fingerprint());
        Assert.Equal($"1;/nix/store/{Hello};{NarHash};1;", NarInfo.Parse(Minimal).Fingerprint());
    }

    [Theory]
    [InlineData(NixHashAlgorithm.Sha1)]
    [InlineData(NixHashAlgorithm.Sha512)]
    public void Fingerprint_needs_a_sha256_NarHash(NixHashAlgorithm algorithm)
    {
        var other = NixHash.Compute(algorithm, "nar"u8);
        var info = NarInfo.Parse(Minimal.Replace(NarHash.ToString(), other.ToString(), StringComparison.Ordinal));
        var e = Assert.Throws<NarInfoFormatException>(info.Fingerprint);
        Assert.Equal(MetadataErrorKind.InvalidValue, e.Kind);
        Assert.Equal("NarHash", e.Field);
        using var key = SecretKey.Generate("k");
        Assert.Throws<NarInfoFormatException>(() => info.Sign(key));
    }

    [Fact]
    public void Fingerprint_needs_a_known_NarSize()
    {
        var info = new NarInfo { StorePath = StorePath.FromBaseName(Hello), Url = "u", NarHash = NarHash, NarSize = 0 };
        Assert.Equal("NarSize", Assert.Throws<NarInfoFormatException>(info.Fingerprint).Field);
    }

    [Fact]
    public void Signing_adds_a_Sig_that_trusted_keys_verify()
    {
        using var key = SecretKey.Generate("cache-1");
        using var impostor = SecretKey.Generate("cache-1");
        var unsigned = NarInfo.Parse(Full);
        Assert.False(unsigned.HasValidSignature([key.PublicKey]));
        var signed = unsigned.Sign(key);
        Assert.Single(unsigned.Signatures);
        Assert.Equal(2, signed.Signatures.Count);
        Assert.True(signed.HasValidSignature([key.PublicKey]));
        Assert.False(signed.HasValidSignature([impostor.PublicKey]));
        Assert.False(signed.HasValidSignature([]));
        var reparsed = NarInfo.Parse(signed.ToString());
        Assert.True(reparsed.HasValidSignature([key.PublicKey]));
        var tampered = NarInfo.Parse(signed.ToString().Replace("NarSize: 226560", "NarSize: 226561", StringComparison.Ordinal));
        Assert.False(tampered.HasValidSignature([key.PublicKey]));
    }

    [Fact]
    public void The_first_trusted_key_of_a_name_wins_as_in_Nix()
    {
        using var key = SecretKey.Generate("cache-1");
        using var impostor = SecretKey.Generate("cache-1");
        var signed = NarInfo.Parse(Full).Sign(key);
        Assert.Equal(1, signed.CountValidSignatures([key.PublicKey, impostor.PublicKey]));
        Assert.Equal(0, signed.CountValidSignatures([impostor.PublicKey, key.PublicKey]));
    }

    [Fact]
    public void Malformed_signatures_do_not_count()
    {
        using var key = SecretKey.Generate("cache-1");
        var info = NarInfo.Parse(Minimal + "Sig: cache-1:notbase64\nSig: cache-1\n");
        Assert.Equal(0, info.CountValidSignatures([key.PublicKey]));
    }

    [Fact]
    public void Write_then_parse_round_trips()
    {
        Prop.ForAll(ArbMap.Default.ArbFor<int>(), seed =>
        {
            var info = RandomNarInfo(new Random(seed));
            var text = info.ToString();
            var again = NarInfo.Parse(text);
            return text == again.ToString()
                && info.StorePath == again.StorePath && info.NarHash == again.NarHash && info.NarSize == again.NarSize
                && info.References.SequenceEqual(again.References) && info.Signatures.SequenceEqual(again.Signatures)
                && info.FileHash == again.FileHash && info.FileSize == again.FileSize && info.Deriver == again.Deriver
                && info.Compression == again.Compression && info.System == again.System && info.ContentAddress == again.ContentAddress;
        }).QuickCheckThrowOnFailure();
    }

    private static NarInfo RandomNarInfo(Random random)
    {
        const string nameChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-._?=";
        StorePath Path()
        {
            var digest = new byte[20];
            random.NextBytes(digest);
            var name = new string(Enumerable.Range(0, random.Next(1, 40)).Select(_ => nameChars[random.Next(nameChars.Length)]).ToArray());
            return StorePath.FromParts(digest, name);
        }
        NixHash Hash()
        {
            var digest = new byte[32];
            random.NextBytes(digest);
            return new NixHash(NixHashAlgorithm.Sha256, digest);
        }
        var sig = new byte[64];
        random.NextBytes(sig);
        return new NarInfo
        {
            StorePath = Path(),
            Url = "nar/" + Hash().ToNix32() + ".nar",
            Compression = new[] { "none", "xz", "zstd", "bzip2" }[random.Next(4)],
            FileHash = random.Next(2) == 0 ? null : Hash(),
            FileSize = random.Next(2) == 0 ? null : (ulong)random.NextInt64(),
            NarHash = Hash(),
            NarSize = (ulong)random.NextInt64(1, long.MaxValue),
            References = Enumerable.Range(0, random.Next(5)).Select(_ => Path()).ToList(),
            Deriver = random.Next(2) == 0 ? null : Path(),
            System = random.Next(2) == 0 ? null : "x86_64-linux",
            Signatures = Enumerable.Range(0, random.Next(3)).Select(i => new Signature($"key-{i}", sig).ToString()).ToList(),
            ContentAddress = random.Next(2) == 0 ? null : "fixed:r:" + Hash(),
        };
    }
}

/// <summary>A binary cache written and signed by the real Nix (`nix copy --to file://…?secret-key=…`).</summary>
public sealed class RealSignedCache : IDisposable
{
    private readonly TempDir _dir = new("lazystore-narinfo-");

    public RealSignedCache()
    {
        RealNix.Require();
        Root = _dir.Sub("root");
        Cache = _dir.Sub("cache");
        SecretKeyFile = _dir.Sub("sk");
        RealNix.Run("nix-store", "--generate-binary-cache-key", "test1", SecretKeyFile, _dir.Sub("pk")).EnsureSuccess("nix-store --generate-binary-cache-key");
        RealNix.Run("nix-store", "--generate-binary-cache-key", "test1", _dir.Sub("sk2"), _dir.Sub("pk2")).EnsureSuccess("nix-store --generate-binary-cache-key");
        PublicKeyText = File.ReadAllText(_dir.Sub("pk")).Trim();
        ImpostorKeyText = File.ReadAllText(_dir.Sub("pk2")).Trim();
        ImpostorSecretKeyFile = _dir.Sub("sk2");

        var src = Directory.CreateDirectory(_dir.Sub("src")).FullName;
        File.WriteAllText(System.IO.Path.Combine(src, "a"), "hello\n");
        Directory.CreateDirectory(System.IO.Path.Combine(src, "sub"));
        File.CreateSymbolicLink(System.IO.Path.Combine(src, "sub", "l"), "../a");
        Source = RealNix.Run("nix-store", "--store", Root, "--add", src).EnsureSuccess("nix-store --add").StdoutText.Trim();
        // A text file naming the source path, so its narinfo has a reference.
        Referrer = RealNix.Run("nix", "eval", "--impure", "--store", Root, "--raw", "--expr",
            $"builtins.toFile \"referrer\" \"${{builtins.storePath {Source}}}\"").EnsureSuccess("builtins.toFile").StdoutText.Trim();
        RealNix.Run("nix", "copy", "--store", Root, "--to", $"file://{Cache}?compression=none&write-nar-listing=true&secret-key={SecretKeyFile}", Referrer)
            .EnsureSuccess("nix copy");
    }

    public string Root { get; }

    public string Cache { get; }

    public string SecretKeyFile { get; }

    public string ImpostorSecretKeyFile { get; }

    public string PublicKeyText { get; }

    public string ImpostorKeyText { get; }

    public string Source { get; }

    public string Referrer { get; }

    public string NarInfoPath(string fullStorePath) => System.IO.Path.Combine(Cache, StoreDirectory.Default.ParsePath(fullStorePath).HashPart + ".narinfo");

    public string Sub(string name) => _dir.Sub(name);

    public void Dispose() => _dir.Dispose();
}

public sealed class RealNixNarInfoTests
{
    private static readonly Lazy<RealSignedCache> SharedCache = new(() => new RealSignedCache());

    private static RealSignedCache Cache => SharedCache.Value;

    [RealNixFact]
    public void Parse_then_write_gives_Nix_bytes_back()
    {
        foreach (var path in new[] { Cache.Source, Cache.Referrer })
        {
            var bytes = File.ReadAllBytes(Cache.NarInfoPath(path));
            var info = NarInfo.Parse(bytes, source: path);
            Assert.Equal(path, info.StorePath.ToFullPath());
            Assert.Equal(System.Text.Encoding.UTF8.GetString(bytes), info.ToString());
        }
        var referrer = NarInfo.Parse(File.ReadAllText(Cache.NarInfoPath(Cache.Referrer)));
        Assert.Equal([StoreDirectory.Default.ParsePath(Cache.Source)], referrer.References);
        Assert.Equal("none", referrer.Compression);
        Assert.StartsWith("text:sha256:", referrer.ContentAddress);
    }

    [RealNixFact]
    public void Nix_signatures_verify_with_its_key_only()
    {
        var trusted = PublicKey.Parse(Cache.PublicKeyText);
        var impostor = PublicKey.Parse(Cache.ImpostorKeyText);
        Assert.Equal(trusted.Name, impostor.Name);
        foreach (var path in new[] { Cache.Source, Cache.Referrer })
        {
            var info = NarInfo.Parse(File.ReadAllText(Cache.NarInfoPath(path)));
            Assert.True(info.HasValidSignature([trusted]));
            Assert.False(info.HasValidSignature([impostor]));
        }
    }

    [RealNixFact]
    public void Tampering_breaks_Nix_signatures()
    {
        var trusted = PublicKey.Parse(Cache.PublicKeyText);
        var text = File.ReadAllText(Cache.NarInfoPath(Cache.Referrer));
        var info = NarInfo.Parse(text);
        Assert.False(NarInfo.Parse(text.Replace($"NarSize: {info.NarSize}", $"NarSize: {info.NarSize + 1}", StringComparison.Ordinal)).HasValidSignature([trusted]));
        var otherReference = StorePath.FromParts(new byte[20], "other");
        Assert.False(NarInfo.Parse(text.Replace($"References: {info.References[0]}", $"References: {otherReference}", StringComparison.Ordinal)).HasValidSignature([trusted]));
        Assert.False(NarInfo.Parse(text.Replace($"References: {info.References[0]}", "References: ", StringComparison.Ordinal)).HasValidSignature([trusted]));
        var otherHash = NixHash.Compute(NixHashAlgorithm.Sha256, "x"u8);
        Assert.False(NarInfo.Parse(text.Replace($"NarHash: {info.NarHash}", $"NarHash: {otherHash}", StringComparison.Ordinal)).HasValidSignature([trusted]));
    }

    [RealNixFact]
    public void Our_signature_equals_Nix_signature()
    {
        using var key = SecretKey.ReadFile(Cache.SecretKeyFile);
        Assert.Equal(Cache.PublicKeyText, key.PublicKey.ToString());
        foreach (var path in new[] { Cache.Source, Cache.Referrer })
        {
            var text = File.ReadAllText(Cache.NarInfoPath(path));
            var nixSig = text.Split('\n').Single(l => l.StartsWith("Sig: ", StringComparison.Ordinal))["Sig: ".Length..];
            var info = NarInfo.Parse(text);
            var unsigned = new NarInfo
            {
                StorePath = info.StorePath, Url = info.Url, Compression = info.Compression, FileHash = info.FileHash, FileSize = info.FileSize,
                NarHash = info.NarHash, NarSize = info.NarSize, References = info.References, Deriver = info.Deriver, System = info.System,
                ContentAddress = info.ContentAddress,
            };
            var signed = unsigned.Sign(key);
            Assert.Equal([nixSig], signed.Signatures);
            Assert.Equal(text, signed.ToString());
        }
    }

    [RealNixFact]
    public void Nix_accepts_our_signatures_and_rejects_a_wrong_key()
    {
        using var key = SecretKey.ReadFile(Cache.SecretKeyFile);
        using var impostor = SecretKey.ReadFile(Cache.ImpostorSecretKeyFile);
        // Without CA Nix cannot trust a path by its content address, so only the signature can make it trusted.
        var good = ResignedCopy("resigned-good", key);
        RealNix.Run("nix", "store", "verify", "--store", $"file://{good}", "--trusted-public-keys", Cache.PublicKeyText, "--all")
            .EnsureSuccess("nix store verify of a cache signed by LazyStore");
        var bad = ResignedCopy("resigned-bad", impostor);
        var rejected = RealNix.Run("nix", "store", "verify", "--store", $"file://{bad}", "--trusted-public-keys", Cache.PublicKeyText, "--all");
        Assert.NotEqual(0, rejected.ExitCode);
        Assert.Contains("untrusted", rejected.Stderr);
    }

    private string ResignedCopy(string name, SecretKey key)
    {
        var target = Cache.Sub(name);
        Directory.CreateDirectory(System.IO.Path.Combine(target, "nar"));
        foreach (var nar in Directory.GetFiles(System.IO.Path.Combine(Cache.Cache, "nar")))
            File.Copy(nar, System.IO.Path.Combine(target, "nar", System.IO.Path.GetFileName(nar)));
        File.Copy(System.IO.Path.Combine(Cache.Cache, NixCacheInfo.FileName), System.IO.Path.Combine(target, NixCacheInfo.FileName));
        foreach (var path in new[] { Cache.Source, Cache.Referrer })
        {
            var info = NarInfo.Parse(File.ReadAllText(Cache.NarInfoPath(path)));
            var stripped = new NarInfo
            {
                StorePath = info.StorePath, Url = info.Url, Compression = info.Compression, FileHash = info.FileHash, FileSize = info.FileSize,
                NarHash = info.NarHash, NarSize = info.NarSize, References = info.References,
            };
            File.WriteAllText(System.IO.Path.Combine(target, info.StorePath.HashPart + ".narinfo"), stripped.Sign(key).ToString());
        }
        return target;
    }
}
