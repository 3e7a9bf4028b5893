using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using LazyStore.Cli;
using LazyStore.Cli.Commands;
using LazyStore.Fuse;
using LazyStore.Tests.Support;

namespace LazyStore.Tests.Cli;

/// <summary><c>lazystore demo</c> end to end: a real mount, a program run from it, and nothing left behind.</summary>
public sealed class DemoCommandTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromMinutes(3);

    /// <summary>How long the demo may take to exit after SIGTERM; the old code waited 30 s for a session another namespace kept alive.</summary>
    private static readonly TimeSpan Exiting = TimeSpan.FromSeconds(20);

    [FuseFact]
    public void Demo_lists_without_fetching_runs_the_program_from_the_mount_and_cleans_up()
    {
        var result = CliRunner.Run("demo");
        var output = result.StdoutText;
        Assert.True(result.ExitCode == 0, $"exit {result.ExitCode}: {result.Stderr}\n{output}");
        Assert.Equal("", result.Stderr);

        Assert.Contains("\n     " + ExpectedProgramOutput() + "\n", output);
        Assert.Matches(@"NAR downloads while listing: 0 ", output);
        var store = Match(output, @"mounted the lazy store at (\S+)\n");
        Assert.Equal(3, Regex.Matches(output, @"^     [0-9a-z]{32}-(busybox|ls|share-doc|demo-environment)$", RegexOptions.Multiline).Count);
        Assert.Matches(@"\$ find \S+-share-doc\n     [1-9][0-9]* files, ", output);

        long narsFetched = long.Parse(Match(output, @"fetched: +(\d+) NARs?, "), CultureInfo.InvariantCulture);
        double share = double.Parse(Match(output, @"\(([0-9.]+) % of advertised\)"), CultureInfo.InvariantCulture);
        Assert.InRange(narsFetched, 1, 2);
        Assert.InRange(share, 0.0001, 99.9999);
        Assert.Matches(@" requests: (1 for a NAR|[2-9][0-9]* for NARs), ", output);

        Assert.Contains($"unmounted {store} and removed {Path.GetDirectoryName(store)}\n", output);
        AssertGone(store);
    }

    [FuseFact]
    public async Task Demo_with_keep_stays_mounted_until_SIGTERM_then_unmounts_and_cleans_up()
    {
        using var process = CliProcess.Start(["demo", "--keep"]);
        using var deadline = new CancellationTokenSource(Patience);
        string? store = null;
        try
        {
            store = await WaitUntilKept(process, deadline.Token);

            Assert.Contains(Mounts(), m => m.MountPoint == store && m.FileSystemType == "fuse.lazystore");
            var entries = Directory.GetFileSystemEntries(store).Select(Path.GetFileName).ToList();
            Assert.Equal(3, entries.Count);
            var environment = Path.Combine(store, entries.Single(e => e!.EndsWith("-demo-environment", StringComparison.Ordinal))!);
            Assert.Contains(store, File.ReadAllText(Path.Combine(environment, "README")));

            // SIGTERM rather than SIGINT: a test run started in the background of a non-interactive shell
            // passes SIGINT on as ignored, and .NET then leaves it ignored. Both go through the same handler.
            Assert.True(CliProcess.Terminate(process));
            await process.WaitForExitAsync(deadline.Token);
            var rest = await process.StandardOutput.ReadToEndAsync(deadline.Token);
            var errors = await process.StandardError.ReadToEndAsync(deadline.Token);
            Assert.True(process.ExitCode == 0, $"exit {process.ExitCode}: {errors}");
            Assert.Contains($"unmounted {store} and removed {Path.GetDirectoryName(store)}\n", rest);
            AssertGone(store);
        }
        finally
        {
            if (!process.HasExited)
            {
                // The demo did not finish on its own: take it and its mount down so no test leaves one behind.
                process.Kill(entireProcessTree: true);
                await process.WaitForExitAsync(CancellationToken.None);
            }
            if (store is not null && Mounts().Any(m => m.MountPoint == store))
                ExternalTool.Run("fusermount3", ["-u", "-z", store]);
        }
    }

    [FuseFact]
    public async Task Demo_with_keep_exits_promptly_after_SIGTERM_while_another_mount_namespace_holds_a_copy()
    {
        using var process = CliProcess.Start(["demo", "--keep"]);
        using var deadline = new CancellationTokenSource(Patience);
        MountNamespaceHolder? holder = null;
        string? store = null;
        try
        {
            store = await WaitUntilKept(process, deadline.Token);
            holder = MountNamespaceHolder.Start(store, TimeSpan.FromSeconds(30));
            // A stat of the root, not a listing: a request the kernel sends later on its own (the
            // RELEASEDIR after a close) would wake the loop by itself and hide a session that never ends.
            Assert.Equal(0, Syscalls.StatErrno(holder.Inside(store)));

            Assert.True(CliProcess.Terminate(process));

            // Before, unmounting waited out the 30 s dispose timeout for a session the holder kept alive.
            Assert.True(process.WaitForExit(Exiting), $"demo --keep did not exit within {Exiting} after SIGTERM");
            var rest = await process.StandardOutput.ReadToEndAsync(deadline.Token);
            var errors = await process.StandardError.ReadToEndAsync(deadline.Token);
            Assert.True(process.ExitCode == 0, $"exit {process.ExitCode}: {errors}");
            Assert.Equal("", errors);
            Assert.Contains($"unmounted {store} and removed {Path.GetDirectoryName(store)}\n", rest);
            AssertGone(store);
        }
        finally
        {
            holder?.Dispose();
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
                await process.WaitForExitAsync(CancellationToken.None);
            }
            if (store is not null && Mounts().Any(m => m.MountPoint == store))
                ExternalTool.Run("fusermount3", ["-u", "-z", store]);
        }
    }

    [Fact]
    public void Without_FUSE_the_demo_fails_with_one_line_naming_the_cause_before_doing_anything()
    {
        const string problem = "/dev/fuse is missing: load the fuse kernel module";
        using var stdout = new MemoryStream();
        var console = new CliConsole(new MemoryStream(), stdout, new StringWriter());
        var root = new RootCommand { DemoCommand.Create(console, () => problem) };

        var failure = Assert.Throws<CliException>(() => root.Parse(["demo"]).Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false }));

        Assert.Equal("demo: cannot mount a lazy store: " + problem, failure.Message);
        // Not even the demo's first line: nothing was built, served or mounted.
        Assert.Equal(0, stdout.Length);
    }

    [Fact]
    public void The_FUSE_probe_names_what_is_missing_and_how_to_get_it()
    {
        const string fusermount = "/usr/bin/fusermount3";
        var noDevice = DemoCommand.DescribeFuseProblem(deviceExists: false, "/dev/fuse does not exist", privileged: true, deviceAccessible: false, fusermount);
        Assert.Contains("/dev/fuse is missing", noDevice);
        Assert.Contains("--device /dev/fuse", noDevice);

        const string noLibrary = "libfuse3.so.3 cannot be loaded (install Debian's libfuse3-3 and fuse3)";
        Assert.Equal(noLibrary, DemoCommand.DescribeFuseProblem(true, noLibrary, privileged: true, deviceAccessible: true, fusermount: null));

        var noAccess = DemoCommand.DescribeFuseProblem(true, null, privileged: false, deviceAccessible: false, fusermount);
        Assert.Contains("cannot open /dev/fuse", noAccess);
        Assert.Contains("chmod 0666 /dev/fuse", noAccess);

        var noFusermount = DemoCommand.DescribeFuseProblem(true, null, privileged: false, deviceAccessible: true, fusermount: null);
        Assert.Contains("fusermount3 is missing", noFusermount);
        Assert.Contains("apt-get install fuse3", noFusermount);

        Assert.Null(DemoCommand.DescribeFuseProblem(true, null, privileged: false, deviceAccessible: true, fusermount));
        Assert.Null(DemoCommand.DescribeFuseProblem(true, null, privileged: true, deviceAccessible: false, fusermount: null));
    }

    /// <summary>What the demo's program prints: DemoCache runs a static busybox when there is one, else ls.</summary>
    private static string ExpectedProgramOutput() =>
        File.Exists("/bin/busybox") || File.Exists("/usr/bin/busybox")
            ? "hello from a lazy store path"
            : ExternalTool.Run("/bin/ls", ["--version"]).StdoutText.Split('\n')[0];

    /// <summary>Reads the demo's output up to the line saying where the store stays mounted, and returns that path.</summary>
    private static async Task<string> WaitUntilKept(Process process, CancellationToken cancel)
    {
        var lines = new List<string>();
        while (true)
        {
            var line = await process.StandardOutput.ReadLineAsync(cancel)
                ?? throw new InvalidOperationException($"demo --keep ended before staying mounted: {string.Join('\n', lines)}\n{await process.StandardError.ReadToEndAsync(cancel)}");
            lines.Add(line);
            if (Regex.Match(line, @"^the lazy store stays mounted at (\S+);") is { Success: true } m)
                return m.Groups[1].Value;
        }
    }

    private static string Match(string output, string pattern)
    {
        var match = Regex.Match(output, pattern);
        Assert.True(match.Success, $"no match for {pattern} in:\n{output}");
        return match.Groups[1].Value;
    }

    private static void AssertGone(string store)
    {
        Assert.DoesNotContain(Mounts(), m => m.MountPoint == store || m.MountPoint.StartsWith(store + "/", StringComparison.Ordinal));
        Assert.False(Directory.Exists(Path.GetDirectoryName(store)), $"{Path.GetDirectoryName(store)} is still there");
    }

    private static IReadOnlyList<MountInfoEntry> Mounts() => MountTable.Read();
}
