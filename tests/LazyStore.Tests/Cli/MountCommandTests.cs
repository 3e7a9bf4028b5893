using System.Diagnostics;
using LazyStore.Fuse;
using LazyStore.Nix;
using LazyStore.Nix.Compression;
using LazyStore.Nix.Signatures;
using LazyStore.Store;
using LazyStore.Store.Configuration;
using LazyStore.Store.Mount;
using LazyStore.Store.Substituters;
using LazyStore.Tests.Fuse;
using LazyStore.Tests.Support;

namespace LazyStore.Tests.Cli;

/// <summary><c>lazystore mount</c> as a program: it serves until signalled, then unmounts and reports; refusals are one clear line.</summary>
public sealed class MountCommandTests : IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);

    /// <summary>How long the process may take to exit after SIGTERM, where it used to wait for every other mount namespace to let go.</summary>
    private static readonly TimeSpan Exiting = TimeSpan.FromSeconds(15);

    private readonly TempDir _dir = new("lazystore-mountcmd-");
    private readonly SecretKey _key = SecretKey.Generate("mount-command-1");
    private readonly NarInfo _info;

    public MountCommandTests()
    {
        FixtureTrees.WriteEdgeCases(_dir.Sub("src"));
        _info = new BinaryCacheWriter(_dir.Sub("cache"), CompressionMethod.Xz, _key).AddTree(_dir.Sub("src"), "tree");
        Directory.CreateDirectory(_dir.Sub("lower"));
        Directory.CreateDirectory(_dir.Sub("mnt"));
    }

    private string[] Common() =>
        ["--substituter", "file://" + _dir.Sub("cache"), "--trusted-public-key", _key.PublicKey.ToString(), "--state-dir", _dir.Sub("state")];

    private void Register()
    {
        using var engine = LazyStoreEngine.Open(new LazyStoreOptions
        {
            StateDirectory = _dir.Sub("state"),
            Substituters = new SubstituterSettings { Substituters = [new Uri("file://" + _dir.Sub("cache"))], TrustedPublicKeys = [_key.PublicKey] },
        });
        engine.GetPathAsync(_info.StorePath, register: true, CancellationToken.None).GetAwaiter().GetResult();
    }

    [FuseFact]
    public void ServesRegisteredPathsUntilSigtermThenUnmountsAndReports()
    {
        Register();
        File.WriteAllText(_dir.Sub("lower/on-disk"), "lower\n");
        var mountPoint = _dir.Sub("mnt");
        using var process = CliProcess.Start(["mount", mountPoint, "--lower", _dir.Sub("lower"), .. Common()]);
        try
        {
            var stderr = new StderrLines(process);
            Assert.True(stderr.WaitFor("mounted at", Patience), "no 'mounted at' line: " + stderr.Text);
            Assert.True(TestMount.IsMounted(mountPoint));
            var names = Directory.GetFileSystemEntries(mountPoint).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToList();
            Assert.Equal(new[] { _info.StorePath.BaseName, "on-disk" }.Order(StringComparer.Ordinal), names);
            Assert.Equal(File.ReadAllBytes(_dir.Sub("src/sizes/f300001")), File.ReadAllBytes(Path.Combine(mountPoint, _info.StorePath.BaseName, "sizes", "f300001")));

            Assert.True(CliProcess.Terminate(process));
            Assert.True(process.WaitForExit(Patience), "lazystore mount did not exit after SIGTERM");
            Assert.Equal(0, process.ExitCode);
            Assert.True(stderr.WaitFor("unmounted", Patience), stderr.Text);
            Assert.Contains("1 lazy opens (0 failed), 1 NAR downloads", stderr.Text, StringComparison.Ordinal);
            Assert.False(TestMount.IsMounted(mountPoint));
            Assert.Equal("lower\n", File.ReadAllText(_dir.Sub("lower/on-disk")));
        }
        finally
        {
            Stop(process, mountPoint);
        }
    }

    [FuseFact]
    public void ExitsPromptlyAfterSigtermWhileAnotherMountNamespaceHoldsACopy()
    {
        Register();
        var mountPoint = _dir.Sub("mnt");
        using var process = CliProcess.Start(["mount", mountPoint, "--lower", _dir.Sub("lower"), .. Common()]);
        MountNamespaceHolder? holder = null;
        try
        {
            var stderr = new StderrLines(process);
            Assert.True(stderr.WaitFor("mounted at", Patience), "no 'mounted at' line: " + stderr.Text);
            var file = Path.Combine(mountPoint, _info.StorePath.BaseName, "sizes", "f300001");
            Assert.Equal(File.ReadAllBytes(_dir.Sub("src/sizes/f300001")), File.ReadAllBytes(file));
            holder = MountNamespaceHolder.Start(mountPoint, Patience);
            // Only a stat through the copy (lazy entries stay cached): a request the kernel sends later on
            // its own (the RELEASE after a close) would wake the loop by itself and hide a session that never ends.
            Assert.Equal(0, Syscalls.StatErrno(holder.Inside(file)));

            Assert.True(CliProcess.Terminate(process));

            // Before, the session kept serving the holder's copy and the process never exited.
            Assert.True(process.WaitForExit(Exiting), $"lazystore mount did not exit within {Exiting} after SIGTERM: " + stderr.Text);
            Assert.Equal(0, process.ExitCode);
            Assert.True(stderr.WaitFor("unmounted", Patience), stderr.Text);
            Assert.Contains("1 lazy opens (0 failed), 1 NAR downloads", stderr.Text, StringComparison.Ordinal);
            Assert.False(TestMount.IsMounted(mountPoint));
            Assert.True(holder.HasMountAt(mountPoint));
            Assert.Equal(Errno.ENOTCONN, Syscalls.StatErrno(holder.Inside(Path.Combine(mountPoint, "not-looked-up"))));
        }
        finally
        {
            holder?.Dispose();
            Stop(process, mountPoint);
        }
    }

    [FuseFact]
    public void RefusesAMountPointThatIsAlreadyMounted()
    {
        using var engine = LazyStoreEngine.Open(new LazyStoreOptions { StateDirectory = _dir.Sub("other-state"), Substituters = new SubstituterSettings { Substituters = [], TrustedPublicKeys = [] } });
        using var first = StoreMount.Mount(engine, _dir.Sub("mnt"), new StoreMountOptions { LowerDirectory = _dir.Sub("lower"), Log = TextWriter.Null });
        var result = CliProcess.Run(["mount", _dir.Sub("mnt"), "--lower", _dir.Sub("lower"), .. Common()]);
        Assert.Equal(1, result.ExitCode);
        Assert.Matches("^error: mount: cannot mount at .*mnt: it is already a mount point \\(fuse.lazystore", result.Stderr);
    }

    [FuseFact]
    public void RefusesALowerDirectoryThatDoesNotExist()
    {
        var result = CliProcess.Run(["mount", _dir.Sub("mnt"), "--lower", _dir.Sub("missing"), .. Common()]);
        Assert.Equal(1, result.ExitCode);
        Assert.Contains("cannot open the lower store directory", result.Stderr, StringComparison.Ordinal);
        Assert.Contains("No such file or directory", result.Stderr, StringComparison.Ordinal);
        Assert.False(TestMount.IsMounted(_dir.Sub("mnt")));
    }


    private static void Stop(Process process, string mountPoint)
    {
        if (!process.HasExited)
        {
            process.Kill();
            process.WaitForExit(Patience);
        }
        if (TestMount.IsMounted(mountPoint))
            TestMount.Tool("umount", "-l", mountPoint);
    }

    public void Dispose() => _dir.Dispose();

    /// <summary>Collects a process's standard error as it arrives, so a test can wait for a line.</summary>
    private sealed class StderrLines
    {
        private readonly object _lock = new();
        private readonly System.Text.StringBuilder _text = new();

        public StderrLines(Process process)
        {
            process.ErrorDataReceived += (_, e) =>
            {
                lock (_lock)
                {
                    if (e.Data is not null)
                        _text.AppendLine(e.Data);
                    Monitor.PulseAll(_lock);
                }
            };
            process.BeginErrorReadLine();
        }

        public string Text
        {
            get
            {
                lock (_lock)
                    return _text.ToString();
            }
        }

        public bool WaitFor(string fragment, TimeSpan timeout)
        {
            var deadline = Stopwatch.StartNew();
            lock (_lock)
            {
                while (!_text.ToString().Contains(fragment, StringComparison.Ordinal))
                {
                    var left = timeout - deadline.Elapsed;
                    if (left <= TimeSpan.Zero)
                        return false;
                    Monitor.Wait(_lock, left);
                }
                return true;
            }
        }
    }
}
