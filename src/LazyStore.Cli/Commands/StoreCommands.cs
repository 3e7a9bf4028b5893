using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using LazyStore.Nix;
using LazyStore.Nix.Nar;
using LazyStore.Store;
using LazyStore.Store.Catalog;
using LazyStore.Store.Substituters;

namespace LazyStore.Cli.Commands;

/// <summary><c>lazystore info / ls / cat / fetch / stats</c>: store paths from binary caches, through the engine.</summary>
internal static class StoreCommands
{
    public static IEnumerable<Command> Create(CliConsole console)
    {
        yield return Info(console);
        yield return List(console);
        yield return Cat(console);
        yield return Fetch(console);
        yield return Stats(console);
    }

    private static Command Info(CliConsole console)
    {
        var options = new StoreOptions();
        var path = new Argument<string>("STORE-PATH") { Description = "The store path (/nix/store/HASH-NAME or HASH-NAME)" };
        var command = new Command("info", "Show a store path's narinfo, the cache it comes from, and its local state") { path };
        options.AddTo(command);
        command.SetAction(result =>
        {
            var (engine, lazy, _) = OpenPath(options, result, result.GetValue(path)!);
            using var _ = engine;
            var output = console.Out;
            output.Write(lazy.Info.ToString());
            output.Write($"Cache: {lazy.CacheUrl}\n");
            output.Write($"Registered: {(lazy.Pending ? "pending (a register run has not heard back from Nix)" : lazy.Registered ? "yes" : "no")}\n");
            var nar = engine.Catalog.GetNar(lazy.Nar.NarHash) ?? lazy.Nar;
            output.Write($"State: {Describe(nar)}\n");
            foreach (var failure in engine.Catalog.GetFailures(nar.NarHash))
                output.Write($"FetchFailure: {DateTimeOffset.FromUnixTimeSeconds(failure.FailedAt):u} {failure.Reason}\n");
        });
        return command;
    }

    private static string Describe(NarRecord nar) => nar switch
    {
        { IsFetched: true } => string.Create(CultureInfo.InvariantCulture, $"fetched (verified NAR of {nar.BlobSize} bytes stored)"),
        { Tree: NarTree.Listing } => "listed (tree known from the cache's listing; NAR not fetched)",
        _ => "advertised (narinfo known; NAR not fetched)",
    };

    private static Command List(CliConsole console)
    {
        var options = new StoreOptions();
        var path = new Argument<string>("STORE-PATH[/SUB]") { Description = "A store path, optionally with a path inside it" };
        var listing = new ListingOptions();
        var command = new Command("ls", "List a store path from its listing or index; no NAR is downloaded when the cache has a listing") { path };
        listing.AddTo(command);
        options.AddTo(command);
        command.SetAction(result =>
        {
            var argument = result.GetValue(path)!;
            var (engine, lazy, inside) = OpenPath(options, result, argument);
            using var _ = engine;
            var (nar, whyUnlisted) = Wait(engine.ListAsync(lazy, CancellationToken.None));
            if (nar.Tree == NarTree.None)
            {
                console.Error.WriteLine($"ls: no listing used for {lazy.Path.ToFullPath(engine.StoreDirectory)} ({whyUnlisted}); fetching its NAR");
                nar = Wait(engine.EnsureFetchedAsync(lazy, CancellationToken.None));
            }
            var root = NarIndexEntry.ToListing(engine.Catalog.GetTree(nar.Id));
            var node = NarListing.Find(root, inside) ?? throw new CliException($"ls: '{argument}' does not exist");
            listing.Print(result, console.Out, node, inside);
        });
        return command;
    }

    private static Command Cat(CliConsole console)
    {
        var options = new StoreOptions();
        var path = new Argument<string>("STORE-PATH/FILE") { Description = "A regular file inside a store path" };
        var command = new Command("cat", "Print a file of a store path, fetching and verifying its NAR first if needed") { path };
        options.AddTo(command);
        command.SetAction(result =>
        {
            var argument = result.GetValue(path)!;
            var (engine, lazy, inside) = OpenPath(options, result, argument);
            using var _ = engine;
            var nar = Wait(engine.EnsureFetchedAsync(lazy, CancellationToken.None));
            var entry = engine.Resolve(nar, inside) ?? throw new CliException($"cat: '{argument}' does not exist");
            if (entry.Type != NarEntryType.Regular)
                throw new CliException($"cat: '{argument}' is a {entry.Type.ToString().ToLowerInvariant()}, not a regular file");
            using var blob = engine.OpenBlob(nar);
            var buffer = new byte[1 << 20];
            long offset = 0;
            int n;
            while ((n = blob.Read(entry, offset, buffer)) > 0)
            {
                console.Stdout.Write(buffer, 0, n);
                offset += n;
            }
        });
        return command;
    }

    private static Command Fetch(CliConsole console)
    {
        var options = new StoreOptions();
        var paths = new Argument<string[]>("STORE-PATH") { Description = "Store paths to fetch", Arity = ArgumentArity.OneOrMore };
        var closure = new Option<bool>("--closure") { Description = "Also fetch everything the paths refer to, transitively" };
        var jobs = RegisterCommand.JobsOption();
        var command = new Command("fetch", "Download, verify and index the NARs of store paths into the local cache") { paths, closure, jobs };
        options.AddTo(command);
        command.SetAction(result =>
        {
            using var engine = options.OpenEngine(result);
            var roots = result.GetValue(paths)!.Select(p => Parse(engine, p).Path).ToList();
            IReadOnlyList<StorePath> wanted = result.GetValue(closure)
                ? Wait(engine.Substituters.QueryClosureAsync(roots, RegisterCommand.Parallelism(result, jobs, engine), CancellationToken.None)).Select(p => p.Path).ToList()
                : roots;
            var progress = new FetchProgress(console, wanted.Count);
            var stopwatch = Stopwatch.StartNew();
            var failures = new List<string>();
            StateStorageException? storageFailure = null;
            using (var ticker = console.IsTerminal ? new Timer(_ => progress.Draw(engine.Nars.BytesDownloaded), null, 0, 200) : null)
            {
                var tasks = wanted.Select(async path =>
                {
                    try
                    {
                        var lazy = await engine.GetPathAsync(path, register: false, CancellationToken.None).ConfigureAwait(false);
                        await engine.EnsureFetchedAsync(lazy, CancellationToken.None).ConfigureAwait(false);
                        progress.Done(path.ToFullPath(engine.StoreDirectory), lazy.Info, engine.Nars.BytesDownloaded);
                    }
                    catch (IOException e)
                    {
                        lock (failures)
                        {
                            failures.Add(e.Message);
                            storageFailure ??= e as StateStorageException;
                        }
                        progress.Failed(engine.Nars.BytesDownloaded);
                    }
                }).ToArray();
                Task.WaitAll(tasks);
            }
            // The state directory failing (a full disk) is the cause for every path: one line says it.
            if (storageFailure is not null)
                throw storageFailure;
            progress.Finish(engine.Nars.BytesDownloaded, stopwatch.Elapsed);
            if (failures.Count > 0)
                throw new CliException(failures.Count == 1 ? failures[0] : $"{failures.Count} of {wanted.Count} paths failed: {string.Join("; ", failures)}");
        });
        return command;
    }

    private static Command Stats(CliConsole console)
    {
        var options = new StoreOptions();
        var command = new Command("stats", "Show what the local cache holds and what was downloaded");
        command.Options.Add(options.StateDir);
        command.SetAction(result =>
        {
            var state = StateDirectory.Open(options.StatePath(result));
            var s = new StoreCatalog(state).GetStatistics();
            var o = console.Out;
            o.Write(string.Create(CultureInfo.InvariantCulture, $"""
                state directory:            {state.Path}
                store paths known:          {s.KnownPaths} ({s.RegisteredPaths} registered)
                NARs listed (not fetched):  {s.ListedNars}
                NARs stored:                {s.StoredNars}
                bytes on disk:              {s.BytesOnDisk} ({Human(s.BytesOnDisk)})
                bytes downloaded:           {s.BytesDownloaded} ({Human(s.BytesDownloaded)})
                NarSize of stored NARs:     {s.FetchedNarSize} ({Human(s.FetchedNarSize)})
                NarSize advertised:         {s.AdvertisedNarSize} ({Human(s.AdvertisedNarSize)})
                fetched / advertised:       {(s.AdvertisedNarSize == 0 ? 0 : 100.0 * s.FetchedNarSize / s.AdvertisedNarSize):F1}%
                fetch failures recorded:    {s.FetchFailures}

                """));
        });
        return command;
    }

    internal static string Human(long bytes)
    {
        string[] units = ["B", "KiB", "MiB", "GiB", "TiB"];
        double value = bytes;
        var unit = 0;
        while (value >= 1024 && unit < units.Length - 1)
        {
            value /= 1024;
            unit++;
        }
        return string.Create(CultureInfo.InvariantCulture, $"{value:0.#} {units[unit]}");
    }

    /// <summary>Opens the engine and looks up the store path an argument names (tier 1); the caller disposes the engine.</summary>
    private static (LazyStoreEngine Engine, LazyPath Path, IReadOnlyList<string> Inside) OpenPath(StoreOptions options, ParseResult result, string argument)
    {
        var engine = options.OpenEngine(result);
        try
        {
            var (storePath, inside) = Parse(engine, argument);
            return (engine, Wait(engine.GetPathAsync(storePath, register: false, CancellationToken.None)), inside);
        }
        catch
        {
            engine.Dispose();
            throw;
        }
    }

    internal static (StorePath Path, IReadOnlyList<string> Inside) Parse(LazyStoreEngine engine, string argument)
    {
        try
        {
            return engine.ParsePathArgument(argument);
        }
        catch (Exception e) when (e is ArgumentException or StorePathFormatException)
        {
            throw new CliException(e.Message, e);
        }
    }

    private static T Wait<T>(Task<T> task)
    {
        try
        {
            return task.GetAwaiter().GetResult();
        }
        catch (PathNotSubstitutableException e)
        {
            throw new CliException(e.Message, e);
        }
    }

    /// <summary>A live line on a terminal (bytes, rate, paths done); plain lines otherwise.</summary>
    private sealed class FetchProgress(CliConsole console, int total)
    {
        private readonly Stopwatch _clock = Stopwatch.StartNew();
        private readonly Lock _lock = new();
        private int _done;
        private int _failed;

        public void Done(string path, NarInfo info, long downloaded)
        {
            lock (_lock)
            {
                _done++;
                if (console.IsTerminal)
                {
                    Draw(downloaded);
                    return;
                }
                console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"fetched {path} (NarSize {info.NarSize}, {_done}/{total})"));
            }
        }

        public void Failed(long downloaded)
        {
            lock (_lock)
            {
                _failed++;
                Draw(downloaded);
            }
        }

        public void Draw(long downloaded)
        {
            if (!console.IsTerminal)
                return;
            lock (_lock)
            {
                var rate = downloaded / Math.Max(_clock.Elapsed.TotalSeconds, 0.001);
                console.Error.Write(string.Create(CultureInfo.InvariantCulture,
                    $"\r\x1b[Kfetching: {_done}/{total} paths, {Human(downloaded)} downloaded, {Human((long)rate)}/s{(_failed > 0 ? $", {_failed} failed" : "")}"));
            }
        }

        public void Finish(long downloaded, TimeSpan elapsed)
        {
            lock (_lock)
            {
                if (console.IsTerminal)
                    console.Error.Write("\r\x1b[K");
                console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{_done} of {total} paths fetched, {Human(downloaded)} downloaded in {elapsed.TotalSeconds:F1} s"));
            }
        }
    }
}
