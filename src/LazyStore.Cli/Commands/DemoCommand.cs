using System.CommandLine;
using System.ComponentModel;
using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;
using LazyStore.Fuse;
using LazyStore.Nix;
using LazyStore.Nix.Interop;
using LazyStore.Nix.Signatures;
using LazyStore.Store;
using LazyStore.Store.Configuration;
using LazyStore.Store.Demo;
using LazyStore.Store.Mount;
using LazyStore.Store.Serving;

namespace LazyStore.Cli.Commands;

/// <summary>
/// <c>lazystore demo</c>: builds a small signed binary cache from this machine's files, serves it on
/// 127.0.0.1, mounts a lazy store over it, lists the store without downloading a NAR, runs a program
/// from a lazy path, and shows how little was fetched. Everything lives in one temporary directory
/// that is unmounted and removed at the end, on failure and on Ctrl-C alike.
/// </summary>
internal static class DemoCommand
{
    private static readonly TimeSpan ProgramTimeout = TimeSpan.FromMinutes(2);

    public static Command Create(CliConsole console) => Create(console, ProbeFuse);

    /// <param name="fuseProblem">Says why this machine cannot mount FUSE here, or null when it can.</param>
    internal static Command Create(CliConsole console, Func<string?> fuseProblem)
    {
        var keep = new Option<bool>("--keep")
        {
            Description = "Leave the lazy store mounted after the demo, to explore it, until Ctrl-C",
        };
        var command = new Command("demo",
            "Mount a lazy store over a signed binary cache built from local files, list it, run a program from it, and show what was fetched")
        {
            keep,
        };
        command.SetAction(result =>
        {
            if (fuseProblem() is { } problem)
                throw new CliException("demo: cannot mount a lazy store: " + problem);
            using var demo = new Demo(console, result.GetValue(keep));
            demo.Run();
        });
        return command;
    }

    /// <summary>What is missing for a FUSE mount on this machine, and how to get it; null when nothing is.</summary>
    internal static string? ProbeFuse()
    {
        bool privileged = Environment.IsPrivilegedProcess;
        return DescribeFuseProblem(File.Exists(DeviceFuse), FuseMount.UnavailableReason, privileged,
            privileged || CanOpenDeviceFuse(), FindFusermount());
    }

    internal static string? DescribeFuseProblem(bool deviceExists, string? unavailableReason, bool privileged, bool deviceAccessible, string? fusermount)
    {
        if (!deviceExists)
            return $"{DeviceFuse} is missing: load the fuse kernel module (modprobe fuse), or in a container pass the device in (--device {DeviceFuse} --cap-add SYS_ADMIN)";
        if (unavailableReason is not null)
            return unavailableReason;
        if (!privileged && !deviceAccessible)
            return $"this user cannot open {DeviceFuse} for reading and writing (it is normally mode 0666): run the demo as root, or chmod 0666 {DeviceFuse}";
        if (!privileged && fusermount is null)
            return "fusermount3 is missing, which mounting without root needs: apt-get install fuse3 (or run the demo as root)";
        return null;
    }

    private const string DeviceFuse = "/dev/fuse";

    /// <summary>libfuse opens /dev/fuse itself before any mount and only turns to fusermount3 when mount(2) is refused.</summary>
    private static bool CanOpenDeviceFuse()
    {
        try
        {
            using var device = new FileStream(DeviceFuse, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite, bufferSize: 0);
            return true;
        }
        catch (Exception e) when (e is UnauthorizedAccessException or IOException)
        {
            return false;
        }
    }

    /// <summary>Where libfuse would find fusermount3: its build-time directory, then PATH.</summary>
    private static string? FindFusermount()
    {
        var path = Environment.GetEnvironmentVariable("PATH") ?? "";
        return new[] { "/usr/bin", "/bin" }
            .Concat(path.Split(':', StringSplitOptions.RemoveEmptyEntries))
            .Select(dir => Path.Combine(dir, "fusermount3"))
            .FirstOrDefault(File.Exists);
    }

    /// <summary>One run of the demo and everything it owns, released in reverse order by <see cref="Dispose"/>.</summary>
    private sealed class Demo : IDisposable
    {
        private readonly CliConsole _console;
        private readonly bool _keep;
        private readonly Steps _steps;
        private readonly CancellationTokenSource _interrupted = new();
        private readonly Lock _lock = new();
        private readonly DirectoryInfo _work;
        private readonly List<PosixSignalRegistration> _signals = [];
        private SecretKey? _key;
        private BinaryCacheServer? _server;
        private LazyStoreEngine? _engine;
        private StoreMount? _mount;

        public Demo(CliConsole console, bool keep)
        {
            _console = console;
            _keep = keep;
            _steps = new Steps(console);
            _work = Directory.CreateTempSubdirectory("lazystore-demo-");
            // Ctrl-C and SIGTERM must not kill the process with the mount up: cancel, unmount, clean up.
            _signals.Add(PosixSignalRegistration.Create(PosixSignal.SIGINT, Interrupt));
            _signals.Add(PosixSignalRegistration.Create(PosixSignal.SIGTERM, Interrupt));
        }

        private string CacheDirectory => Path.Combine(_work.FullName, "cache");

        private string MountPoint => Path.Combine(_work.FullName, "store");

        public void Run()
        {
            var cancel = _interrupted.Token;
            try
            {
                RunSteps(cancel);
            }
            catch (Exception e) when (cancel.IsCancellationRequested && e is OperationCanceledException or IOException or CliException)
            {
                throw new CliException("demo: interrupted", e);
            }
        }

        private void RunSteps(CancellationToken cancel)
        {
            _console.Out.Write("LazyStore demo: a signed binary cache on 127.0.0.1, a lazy store mounted over it with FUSE, a program run from it\n\n");
            _console.Out.Flush();

            _key = SecretKey.Generate("lazystore-demo-1");
            var storeDirectory = new StoreDirectory(MountPoint);
            Directory.CreateDirectory(MountPoint);
            var clock = Stopwatch.StartNew();
            var contents = _steps.Run("building a signed binary cache from local files", () =>
                DemoCache.Build(CacheDirectory, Path.Combine(_work.FullName, "staging"), storeDirectory, _key));
            cancel.ThrowIfCancellationRequested();
            long advertisedNarSize = contents.All.Sum(i => (long)i.NarSize);
            long compressed = contents.All.Sum(i => (long)(i.FileSize ?? 0));
            _steps.Done(Invariant($"built a signed binary cache of {contents.All.Count} store paths in {clock.Elapsed.TotalSeconds:F1} s: NarSize {StoreCommands.Human(advertisedNarSize)}, {StoreCommands.Human(compressed)} as compressed NARs, with listings"));
            foreach (var info in contents.All)
                _steps.Detail(Invariant($"{info.StorePath.BaseName,-60} {StoreCommands.Human((long)info.NarSize),10}"));

            _server = new BinaryCacheServer(CacheDirectory);
            _steps.Done($"serving it at {_server.BaseUri} (signed by {_key.PublicKey})");

            _engine = LazyStoreEngine.Open(new LazyStoreOptions
            {
                StateDirectory = Path.Combine(_work.FullName, "state"),
                StoreDirectory = storeDirectory,
                Substituters = new SubstituterSettings
                {
                    Substituters = [_server.BaseUri],
                    TrustedPublicKeys = [_key.PublicKey],
                    RequireSignatures = true,
                },
            });
            _steps.Run("registering the store paths", () =>
            {
                foreach (var info in contents.All)
                    _engine.GetPathAsync(info.StorePath, register: true, cancel).GetAwaiter().GetResult();
                return 0;
            });
            _steps.Done($"registered the {contents.All.Count} paths in a fresh lazy store that trusts only {_key.PublicKey.Name}");

            var mount = _steps.Run("mounting the lazy store", () =>
            {
                var mounted = StoreMount.Mount(_engine, MountPoint, new StoreMountOptions
                {
                    // The mount point is an empty directory: the demo store has nothing on disk but what the mount shows.
                    LowerDirectory = MountPoint,
                    Log = TextWriter.Synchronized(_console.Error),
                });
                lock (_lock)
                    _mount = mounted;
                return mounted;
            });
            cancel.ThrowIfCancellationRequested();
            _steps.Done($"mounted the lazy store at {mount.MountPoint}");

            var store = MountPoint;
            var trees = _steps.Run("listing the store through the mount", () => contents.All.ToDictionary(
                info => info.StorePath,
                info => TreeCount.Walk(info.StorePath.ToFullPath(storeDirectory), cancel)));
            int narsWhileListing = _server.CountRequests(IsNar);
            _steps.Done("listed the store through the mount:");
            _steps.Detail($"$ ls {store}");
            foreach (var name in Directory.EnumerateFileSystemEntries(store).Select(Path.GetFileName).Order(StringComparer.Ordinal))
                _steps.Detail("  " + name);
            var doc = trees[contents.Documentation.StorePath];
            _steps.Detail($"$ find {contents.Documentation.StorePath.ToFullPath(storeDirectory)}");
            _steps.Detail("  " + doc.Describe());
            _steps.Detail(Invariant($"NAR downloads while listing: {narsWhileListing} (names, types, sizes and modes came from the cache's listings; a link's target waits for its verified NAR)"));

            var program = contents.Environment.StorePath.ToFullPath(storeDirectory) + "/" + contents.ProgramFile;
            var output = _steps.Run("running a program from a lazy store path", () => RunProgram(program, contents.ProgramArguments, cancel));
            int narsAfterRunning = _server.CountRequests(IsNar);
            _steps.Done("ran a program from a lazy store path (a NAR is fetched and verified when first needed: the link's on readlink, the program's on open):");
            _steps.Detail($"$ {program} {string.Join(' ', contents.ProgramArguments.Select(ShellWord))}");
            foreach (var line in output.TrimEnd('\n').Split('\n'))
                _steps.Detail("  " + line);

            var statistics = _engine.Catalog.GetStatistics();
            var mountStatistics = mount.Statistics;
            long files = trees.Values.Sum(t => t.Files);
            double share = advertisedNarSize == 0 ? 0 : 100.0 * statistics.FetchedNarSize / advertisedNarSize;
            _console.Out.Write("\n");
            _steps.Detail(Invariant($"advertised: {contents.All.Count} paths, {files} files, {StoreCommands.Human(advertisedNarSize)}"));
            _steps.Detail(Invariant($"fetched:    {statistics.StoredNars} {Plural(statistics.StoredNars, "NAR")}, {StoreCommands.Human(statistics.FetchedNarSize)} ({share:F1} % of advertised), {StoreCommands.Human(_engine.Nars.BytesDownloaded)} downloaded, for {mountStatistics.LazyOpens} {Plural(mountStatistics.LazyOpens, "file")} opened"));
            _steps.Detail(Invariant($"the cache server sent {StoreCommands.Human(_server.BodyBytesSent)} in {_server.Requests.Count} requests: {narsAfterRunning} for {Plural(narsAfterRunning, "a NAR", "NARs")}, the rest for nix-cache-info, narinfos and listings"));
            _console.Out.Flush();

            if (_keep)
            {
                _console.Out.Write($"\nthe lazy store stays mounted at {store}; explore it, then press Ctrl-C to unmount and clean up\n");
                _console.Out.Flush();
                WaitHandle.WaitAny([cancel.WaitHandle, ((IAsyncResult)mount.Completion).AsyncWaitHandle]);
            }
        }

        private static string ShellWord(string word) =>
            word.Length > 0 && word.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' or '/' or '=') ? word : "'" + word.Replace("'", "'\\''", StringComparison.Ordinal) + "'";

        private static bool IsNar(string path) => path.StartsWith("nar/", StringComparison.Ordinal);

        private static string Plural(long count, string noun, string? plural = null) => count == 1 ? noun : plural ?? noun + "s";

        private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);

        /// <summary>Runs <paramref name="program"/> and returns its standard output; a failure becomes one line with its stderr.</summary>
        private static string RunProgram(string program, IReadOnlyList<string> arguments, CancellationToken cancel)
        {
            var start = new ProcessStartInfo(program)
            {
                RedirectStandardInput = true,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            foreach (var argument in arguments)
                start.ArgumentList.Add(argument);
            Process process;
            try
            {
                process = Process.Start(start) ?? throw new CliException($"demo: could not start {program}");
            }
            catch (Win32Exception e)
            {
                throw new CliException($"demo: could not run {program} from the mount: {e.Message}", e);
            }
            using (process)
            {
                process.StandardInput.Close();
                var stdout = process.StandardOutput.ReadToEndAsync(cancel);
                var stderr = process.StandardError.ReadToEndAsync(cancel);
                using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancel);
                deadline.CancelAfter(ProgramTimeout);
                try
                {
                    process.WaitForExitAsync(deadline.Token).GetAwaiter().GetResult();
                }
                catch (OperationCanceledException)
                {
                    process.Kill(entireProcessTree: true);
                    if (cancel.IsCancellationRequested)
                        throw;
                    throw new CliException(Invariant($"demo: {program} did not finish within {ProgramTimeout.TotalSeconds} s"));
                }
                var output = stdout.GetAwaiter().GetResult();
                if (process.ExitCode != 0)
                    throw new CliException(Invariant($"demo: {program} exited with status {process.ExitCode}: {stderr.GetAwaiter().GetResult().Trim()}"));
                return output;
            }
        }

        /// <summary>Called on SIGINT/SIGTERM, on a thread-pool thread: stop the steps and release whatever blocks on the mount.</summary>
        private void Interrupt(PosixSignalContext context)
        {
            context.Cancel = true;
            StoreMount? mount;
            lock (_lock)
                mount = _mount;
            try
            {
                _interrupted.Cancel();
            }
            catch (ObjectDisposedException)
            {
                return;
            }
            mount?.Unmount();
        }

        public void Dispose()
        {
            foreach (var signal in _signals)
                signal.Dispose();
            var failures = new List<string>();
            StoreMount? mount;
            lock (_lock)
            {
                mount = _mount;
                _mount = null;
            }
            Release(failures, "unmount", () => mount?.Dispose());
            Release(failures, "stop the cache server", () => _server?.Dispose());
            Release(failures, "close the engine", () => _engine?.Dispose());
            _key?.Dispose();
            _interrupted.Dispose();

            // Never recurse into a mount that is somehow still there: that would delete through it.
            if (IsMounted(MountPoint) || (mount is not null && IsMounted(mount.MountPoint)))
                failures.Add($"{MountPoint} is still mounted, so {_work.FullName} was left in place (fusermount3 -u {MountPoint}, then remove it)");
            else
                Release(failures, "remove " + _work.FullName, () => _work.Delete(recursive: true));

            if (failures.Count > 0)
            {
                _console.Error.WriteLine("warning: demo cleanup: " + string.Join("; ", failures));
            }
            else
            {
                _console.Out.Write(mount is null
                    ? $"removed {_work.FullName}\n"
                    : $"unmounted {MountPoint} and removed {_work.FullName}\n");
                _console.Out.Flush();
            }
        }

        /// <summary>Whether /proc/self/mountinfo lists a mount at <paramref name="path"/>; never touches the mount itself, which may hang.</summary>
        private static bool IsMounted(string path) =>
            File.ReadLines("/proc/self/mountinfo").Any(line => line.Split(' ') is { Length: > 4 } fields && UnescapeMountField(fields[4]) == path);

        /// <summary>The kernel writes space, tab, newline and backslash in mountinfo as three-digit octal escapes.</summary>
        private static string UnescapeMountField(string field) =>
            Regex.Replace(field, @"\\([0-7]{3})", m => ((char)Convert.ToInt32(m.Groups[1].Value, 8)).ToString());

        private static void Release(List<string> failures, string what, Action release)
        {
            try
            {
                release();
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidOperationException or AggregateException)
            {
                failures.Add($"could not {what}: {e.Message}");
            }
        }
    }

    /// <summary>
    /// What a walk of a tree found, symbolic links not followed: readdir's types and lstat's sizes only (.NET's
    /// enumeration would stat a link's target, and a lazy link's target waits for its verified NAR).
    /// </summary>
    private readonly record struct TreeCount(long Files, long Directories, long Symlinks, long Bytes)
    {
        public static TreeCount Walk(string root, CancellationToken cancel)
        {
            long files = 0, directories = 1, symlinks = 0, bytes = 0;
            var pending = new Stack<string>([root]);
            while (pending.TryPop(out var directory))
            {
                cancel.ThrowIfCancellationRequested();
                foreach (var entry in Posix.ReadDirectory(Posix.AtFdCwd, directory, 0, int.MaxValue))
                {
                    if (entry.Name is "." or "..")
                        continue;
                    var path = Path.Combine(directory, entry.Name);
                    switch (entry.Type != 0 ? entry.Type : Posix.StatAt(Posix.AtFdCwd, path).Type)
                    {
                        case PosixFileType.Symlink:
                            symlinks++;
                            break;
                        case PosixFileType.Directory:
                            directories++;
                            pending.Push(path);
                            break;
                        default:
                            files++;
                            bytes += Posix.StatAt(Posix.AtFdCwd, path).Size;
                            break;
                    }
                }
            }
            return new TreeCount(files, directories, symlinks, bytes);
        }

        public string Describe() => string.Create(CultureInfo.InvariantCulture,
            $"{Files} files, {Directories} directories, {Symlinks} symlinks, {StoreCommands.Human(Bytes)}");
    }

    /// <summary>Numbered step lines on stdout; on a terminal, a spinner on stderr while a step runs.</summary>
    private sealed class Steps(CliConsole console)
    {
        private static readonly string[] Frames = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];
        private int _number;

        public T Run<T>(string doing, Func<T> work)
        {
            try
            {
                return console.IsTerminal ? WithSpinner(doing, work) : work();
            }
            catch (IOException e)
            {
                throw new CliException($"demo: {doing}: {e.Message}", e);
            }
        }

        private T WithSpinner<T>(string doing, Func<T> work)
        {
            var text = $"{_number + 1}. {doing}…";
            var gate = new Lock();
            var frame = 0;
            var stopped = false;
            using (var timer = new Timer(_ =>
            {
                lock (gate)
                {
                    if (!stopped)
                        console.Error.Write($"\r\x1b[K{Frames[frame++ % Frames.Length]} {text}");
                }
            }, null, TimeSpan.Zero, TimeSpan.FromMilliseconds(100)))
            {
                try
                {
                    return work();
                }
                finally
                {
                    lock (gate)
                    {
                        stopped = true;
                        console.Error.Write("\r\x1b[K");
                    }
                }
            }
        }

        public void Done(string text)
        {
            _number++;
            console.Out.Write($"{_number}. {text}\n");
            console.Out.Flush();
        }

        public void Detail(string text)
        {
            console.Out.Write($"   {text}\n");
            console.Out.Flush();
        }
    }
}
