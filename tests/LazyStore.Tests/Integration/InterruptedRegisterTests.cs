using System.Diagnostics;
using LazyStore.Nix;
using LazyStore.Nix.Compression;
using LazyStore.Nix.Signatures;
using LazyStore.Store;
using LazyStore.Store.Catalog;
using LazyStore.Store.Configuration;
using LazyStore.Store.Mount;
using LazyStore.Store.Substituters;
using LazyStore.Tests.Support;

namespace LazyStore.Tests.Integration;

/// <summary>
/// <c>lazystore register</c> interrupted after the catalog took the paths and before Nix did: a nix-store on
/// PATH announces <c>--load-db</c> on a FIFO and then never finishes (every other call is the real nix-store),
/// so the test stops the run exactly there, with SIGKILL or SIGTERM.
/// </summary>
public sealed class InterruptedRegisterTests : IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(120);

    private readonly TempDir _dir = new("lazystore-interrupted-register-");
    private readonly SecretKey _key = SecretKey.Generate("interrupted-register-1");
    private readonly NarInfo _leaf;
    private readonly NarInfo _top;

    public InterruptedRegisterTests()
    {
        var writer = new BinaryCacheWriter(_dir.Sub("cache"), CompressionMethod.Xz, _key);
        FixtureTrees.WriteEdgeCases(_dir.Sub("src/leaf"));
        _leaf = writer.AddTree(_dir.Sub("src/leaf"), "leaf");
        Directory.CreateDirectory(_dir.Sub("src/top"));
        File.WriteAllText(_dir.Sub("src/top/refs"), _leaf.StorePath.ToFullPath() + "\n");
        _top = writer.AddTree(_dir.Sub("src/top"), "top", [_leaf.StorePath]);
        Directory.CreateDirectory(Store);
        Directory.CreateDirectory(Temporary);
    }

    private string Root => _dir.Sub("root");

    private string Store => Path.Combine(Root, "nix", "store");

    private string State => _dir.Sub("state");

    /// <summary>The TMPDIR of every register run: a killed run's temporary narinfo cache stays there until the next run removes it.</summary>
    private string Temporary => _dir.Sub("tmp");

    private string[] Common =>
        ["--store-root", Root, "--substituter", "file://" + _dir.Sub("cache"), "--trusted-public-key", _key.PublicKey.ToString(), "--state-dir", State];

    private LazyStoreEngine Engine() => LazyStoreEngine.Open(new LazyStoreOptions
    {
        StateDirectory = State,
        Substituters = new SubstituterSettings { Substituters = [new Uri("file://" + _dir.Sub("cache"))], TrustedPublicKeys = [_key.PublicKey] },
    });

    [RealNixFuseFact]
    public async Task A_register_killed_before_Nix_answered_leaves_its_paths_pending_and_a_rerun_registers_them_with_Nix()
    {
        using var engine = Engine();
        using var mount = StoreMount.Mount(engine, Store, new StoreMountOptions { Log = TextWriter.Null });

        await RunUntilNixIsAskedAsync(process =>
        {
            // The mount serves the pending paths, so that nix-store --load-db finds them.
            Assert.True(Directory.Exists(Path.Combine(Store, _top.StorePath.BaseName)));
            process.Kill(entireProcessTree: true);
        }, "register", "--closure", _top.StorePath.ToFullPath());

        Assert.False(NixHolds(_top));
        Assert.False(NixHolds(_leaf));
        foreach (var info in new[] { _top, _leaf })
        {
            Assert.Equal(new PathState(Registered: true, Pending: true), StateOf(engine, info));
            Assert.Contains("Registered: pending", Info(info), StringComparison.Ordinal);
        }

        var rerun = CliProcess.Run(["register", "--closure", _top.StorePath.ToFullPath(), .. Common], new Dictionary<string, string?> { ["TMPDIR"] = Temporary });
        Assert.True(rerun.ExitCode == 0, rerun.Stderr);
        Assert.Contains("note: an interrupted register had left 2 paths pending; Nix had 0 of them (now registered), the other 2 were taken back", rerun.Stderr, StringComparison.Ordinal);
        Assert.Contains("registered 2 paths (2 new)", rerun.Stderr, StringComparison.Ordinal);
        Assert.True(NixHolds(_top));
        Assert.True(NixHolds(_leaf));
        Assert.Equal(new PathState(Registered: true, Pending: false), StateOf(engine, _top));
        Assert.Contains("Registered: yes", Info(_top), StringComparison.Ordinal);
        // The killed run's narinfo cache went with the rerun, which removed its own as well.
        Assert.Empty(Directory.EnumerateFileSystemEntries(Temporary, "lazystore-narinfos-*"));
    }

    [RealNixFuseFact]
    public async Task Paths_a_killed_register_left_pending_are_taken_back_by_the_next_run_when_Nix_never_heard_of_them()
    {
        using var engine = Engine();
        using var mount = StoreMount.Mount(engine, Store, new StoreMountOptions { Log = TextWriter.Null });
        await RunUntilNixIsAskedAsync(process => process.Kill(entireProcessTree: true), "register", "--closure", _top.StorePath.ToFullPath());

        var other = CliProcess.Run(["register", _leaf.StorePath.ToFullPath(), .. Common], new Dictionary<string, string?> { ["TMPDIR"] = Temporary });
        Assert.True(other.ExitCode == 0, other.Stderr);
        Assert.Contains("the other 2 were taken back", other.Stderr, StringComparison.Ordinal);
        Assert.Equal(new PathState(Registered: false, Pending: false), StateOf(engine, _top));
        Assert.Equal(new PathState(Registered: true, Pending: false), StateOf(engine, _leaf));
        Assert.Equal([_leaf.StorePath.BaseName], engine.Catalog.ListRegisteredRoots().Select(r => r.BaseName));
        Assert.False(NixHolds(_top));
        Assert.True(NixHolds(_leaf));
        Assert.Empty(Directory.EnumerateFileSystemEntries(Temporary, "lazystore-narinfos-*"));
    }

    [RealNixFuseFact]
    public async Task A_register_stopped_with_SIGTERM_while_nix_store_runs_takes_its_paths_back_and_says_so()
    {
        using var engine = Engine();
        using var mount = StoreMount.Mount(engine, Store, new StoreMountOptions { Log = TextWriter.Null });
        string stderr = "";
        await RunUntilNixIsAskedAsync(process =>
        {
            Assert.True(CliProcess.Terminate(process));
            // The old code ended at once with SIGTERM's status; now the run stops nix-store, asks Nix, and exits 1.
            Assert.True(process.WaitForExit(Patience), $"register still runs {Patience.TotalSeconds} s after SIGTERM");
            Assert.Equal(1, process.ExitCode);
            stderr = process.StandardError.ReadToEnd();
        }, "register", "--closure", _top.StorePath.ToFullPath());

        var line = Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries), l => l.StartsWith("error:", StringComparison.Ordinal));
        Assert.Equal("error: register: interrupted while nix-store registered the paths, before it took them: nothing registered, the catalog's pending rows were taken back", line);
        Assert.Equal(new PathState(Registered: false, Pending: false), StateOf(engine, _top));
        Assert.Equal(new PathState(Registered: false, Pending: false), StateOf(engine, _leaf));
        Assert.False(NixHolds(_top));
    }

    private readonly record struct PathState(bool Registered, bool Pending);

    private static PathState StateOf(LazyStoreEngine engine, NarInfo info) =>
        engine.Catalog.GetStorePath(info.StorePath.HashPart) is { } known ? new PathState(known.Registered, known.Pending) : default;

    private string Info(NarInfo info) =>
        CliProcess.Run(["info", info.StorePath.ToFullPath(), .. Common.Skip(2)]).EnsureSuccess("lazystore info").StdoutText;

    private bool NixHolds(NarInfo info) => RealNix.Run("nix-store", "--store", Root, "--check-validity", info.StorePath.ToFullPath()).ExitCode == 0;

    /// <summary>
    /// Runs lazystore with a nix-store on PATH that, asked to --load-db, writes to a FIFO and then blocks for good;
    /// once the FIFO says so, hands the process to <paramref name="interrupt"/>, which must end it. Every lazystore
    /// and stand-in process is killed when this returns.
    /// </summary>
    private async Task RunUntilNixIsAskedAsync(Action<Process> interrupt, params string[] args)
    {
        var bin = _dir.Sub("fake-bin");
        Directory.CreateDirectory(bin);
        var fifo = _dir.Sub("load-db.fifo");
        var hold = _dir.Sub("hold.fifo");
        ExternalTool.Run(RequiredTools.Require("mkfifo"), [fifo, hold]).EnsureSuccess("mkfifo");
        var nixStore = Path.Combine(bin, "nix-store");
        File.WriteAllText(nixStore, $$"""
            #!/bin/sh
            # nix-store that does not finish --load-db (it announces it on a FIFO, then waits for another that
            # only the test opens); anything else is the real one.
            for argument in "$@"; do
                if [ "$argument" = --load-db ]; then
                    echo load-db > '{{fifo}}'
                    exec cat '{{hold}}'
                fi
            done
            exec '{{RequiredTools.Require("nix-store")}}' "$@"
            """.Replace("\r", "", StringComparison.Ordinal));
        File.SetUnixFileMode(nixStore, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);

        var asked = Task.Run(() => File.ReadAllText(fifo));
        using var process = CliProcess.Start([.. args, .. Common],
            new Dictionary<string, string?> { ["PATH"] = bin + ":" + Environment.GetEnvironmentVariable("PATH"), ["TMPDIR"] = Temporary });
        try
        {
            var first = await Task.WhenAny(asked, process.WaitForExitAsync(), Task.Delay(Patience));
            Assert.True(first == asked, first == asked ? "" : process.HasExited
                ? $"lazystore exited ({process.ExitCode}) before asking nix-store --load-db: {process.StandardError.ReadToEnd()}"
                : $"lazystore did not ask nix-store --load-db within {Patience.TotalSeconds} s");
            Assert.Equal("load-db\n", await asked);
            interrupt(process);
            Assert.True(process.WaitForExit(Patience), $"lazystore still runs {Patience.TotalSeconds} s after the interruption");
        }
        finally
        {
            if (!process.HasExited)
                process.Kill(entireProcessTree: true);
            process.WaitForExit();
            // Whatever still waits in open(2) on a FIFO (a stand-in nix-store that outlived lazystore, this test's
            // reader) goes on once a writer opens it; O_RDWR never blocks on Linux, and closing it ends their reads.
            Release(hold);
            if (!asked.IsCompleted)
            {
                Release(fifo);
                await asked;
            }
        }
    }

    private static void Release(string fifo)
    {
        using (new FileStream(fifo, FileMode.Open, FileAccess.ReadWrite))
        {
        }
    }

    public void Dispose()
    {
        _key.Dispose();
        _dir.Dispose();
    }
}
