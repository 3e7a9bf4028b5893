using LazyStore.Nix.IO;
using System.Security.Cryptography;
using LazyStore.Nix.Compression;
using LazyStore.Nix.Nar;

namespace LazyStore.Bench;

/// <summary>
/// Parse and index a NAR held in memory: every entry's path, type, size and payload offset collected.
/// With <paramref name="streaming"/> the NAR comes through a non-seekable stream, so every payload byte
/// passes through the reader as in the fetch pipeline; otherwise payloads are skipped by seeking.
/// Target: at least 1 GB/s of NAR.
/// </summary>
internal sealed class NarParseScenario(bool streaming) : IScenario
{
    public string Name => streaming ? "nar-parse-stream" : "nar-parse-seek";

    public ScenarioResult Run(BenchData data, int rounds)
    {
        var nar = File.ReadAllBytes(data.NarPath);
        int entries = 0;
        var (ours, _) = Measure.Interleaved(rounds, () =>
        {
            var index = new List<(string Path, NarEntryType Type, long Size, long Offset)>();
            Stream source = new MemoryStream(nar, writable: false);
            if (streaming)
                source = new ForwardOnlyStream(source);
            using var reader = new NarReader(source);
            while (reader.GetNextEntry() is { } e)
                index.Add((e.Path, e.Type, e.Size, e.PayloadOffset));
            entries = index.Count;
        }, null);
        var rate = nar.Length / ours;
        var how = streaming ? "every byte read through a forward-only stream" : "payloads skipped by seeking";
        return new ScenarioResult(Name, $"NAR read + index from memory, {how} ({entries} entries)", nar.Length, ours, null, null, "≥ 1 GB/s", rate >= 1e9);
    }

    /// <summary>Hides CanSeek, as a decompressor or a socket would.</summary>
    private sealed class ForwardOnlyStream(Stream inner) : ReadOnlyStream
    {
        public override int Read(Span<byte> buffer) => inner.Read(buffer);
    }
}

/// <summary>Decompress the corpus with LazyStore's codec vs the standard tool (<c>xz -dc</c>, <c>zstd -dc</c>).</summary>
internal sealed class DecompressScenario(string codec) : IScenario
{
    public string Name => codec + "-decode";

    public ScenarioResult Run(BenchData data, int rounds)
    {
        var (method, compressed, tool) = codec switch
        {
            "xz" => (CompressionMethod.Xz, data.Compressed("xz", ".xz", "-6", "-T1"), "xz -dc"),
            "zstd" => (CompressionMethod.Zstd, data.Compressed("zstd", ".zst", "-19", "-T2", "-q"), "zstd -dc"),
            _ => throw new ArgumentException(codec),
        };
        var (ours, baseline) = Measure.Interleaved(rounds,
            () =>
            {
                using var input = new FileStream(compressed, FileMode.Open, FileAccess.Read, FileShare.Read, 0);
                using var output = NarCompression.Decompress(method, input);
                output.CopyTo(Stream.Null, 1 << 20);
            },
            () => Measure.Shell($"{tool} '{compressed}' > /dev/null"));
        var result = new ScenarioResult(Name, $"decompress {new FileInfo(compressed).Length / 1e6:F0} MB {codec} to {data.NarBytes / 1e6:F0} MB", data.NarBytes, ours, tool, baseline, "≥ 0.9×", false);
        return result with { MeetsTarget = result.Ratio >= 0.9 };
    }
}

/// <summary>SHA-256 of the NAR file by LazyStore (what NarHash verification uses) vs <c>sha256sum</c>.</summary>
internal sealed class Sha256Scenario : IScenario
{
    public string Name => "sha256";

    public ScenarioResult Run(BenchData data, int rounds)
    {
        var (ours, baseline) = Measure.Interleaved(rounds,
            () =>
            {
                using var input = new FileStream(data.NarPath, FileMode.Open, FileAccess.Read, FileShare.Read, 0);
                using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
                var buffer = new byte[1 << 20];
                int n;
                while ((n = input.Read(buffer)) > 0)
                    hash.AppendData(buffer, 0, n);
                hash.GetHashAndReset();
            },
            () => Measure.Shell($"sha256sum '{data.NarPath}' > /dev/null"));
        var result = new ScenarioResult(Name, $"SHA-256 of the {data.NarBytes / 1e6:F0} MB NAR", data.NarBytes, ours, "sha256sum", baseline, "≥ 0.9×", false);
        return result with { MeetsTarget = result.Ratio >= 0.9 };
    }
}
