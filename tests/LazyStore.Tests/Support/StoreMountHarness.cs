using LazyStore.Fuse;
using LazyStore.Fuse.Interop;
using LazyStore.Nix;
using LazyStore.Nix.Signatures;
using LazyStore.Store;
using LazyStore.Store.Configuration;
using LazyStore.Store.Mount;
using LazyStore.Store.Serving;
using LazyStore.Store.Substituters;

namespace LazyStore.Tests.Support;

/// <summary>
/// One lazy store mount for one test: a binary cache served on loopback (its requests counted), a
/// fresh state directory with an engine over that cache, a lower directory, and a mount point.
/// Nothing is mounted until <see cref="Mount"/>; Dispose unmounts, lazily if the mount is busy.
/// </summary>
public sealed class StoreMountHarness : IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    private readonly TempDir _dir = new("lazystore-mount-");
    private readonly StringWriter _log = new();
    private readonly TextWriter _syncLog;
    private readonly LazyStoreOptions _engineOptions;

    /// <param name="cacheDir">The binary cache directory the loopback server serves.</param>
    /// <param name="trustedKeys">The keys whose signatures the engine accepts.</param>
    /// <param name="transport">Timeouts and retries of the engine's HTTP requests; fast ones by default.</param>
    /// <param name="moreCaches">Caches asked after the loopback server, in this order.</param>
    /// <param name="listings">The largest cache listing the engine accepts; the default bounds when null.</param>
    public StoreMountHarness(string cacheDir, IEnumerable<PublicKey> trustedKeys, TransportOptions? transport = null, IEnumerable<Uri>? moreCaches = null,
        ListingLimits? listings = null)
    {
        _syncLog = TextWriter.Synchronized(_log);
        Server = new BinaryCacheServer(cacheDir);
        Directory.CreateDirectory(LowerDirectory);
        Directory.CreateDirectory(MountPoint);
        _engineOptions = new LazyStoreOptions
        {
            StateDirectory = _dir.Sub("state"),
            Substituters = new SubstituterSettings
            {
                Substituters = [Server.BaseUri, .. moreCaches ?? []],
                TrustedPublicKeys = trustedKeys.ToList(),
                RequireSignatures = true,
            },
            Transport = transport ?? StoreHarness.FastTransport,
            Listings = listings ?? ListingLimits.Default,
        };
        Engine = LazyStoreEngine.Open(_engineOptions);
    }

    public BinaryCacheServer Server { get; }

    public LazyStoreEngine Engine { get; }

    public string StateDirectory => _engineOptions.StateDirectory;

    /// <summary>The directory whose entries pass through (unless a test mounts over the mount point itself).</summary>
    public string LowerDirectory => _dir.Sub("lower");

    public string MountPoint => _dir.Sub("mnt");

    /// <summary>A scratch directory of the test's own, on the same file system as the lower directory.</summary>
    public string Scratch(string name)
    {
        var path = _dir.Sub("scratch-" + name);
        Directory.CreateDirectory(path);
        return path;
    }

    public StoreMount? Store { get; private set; }

    /// <summary>What the mount logged so far.</summary>
    public string Log
    {
        get
        {
            lock (_syncLog)
                return _log.ToString();
        }
    }

    /// <summary>Mounts at <see cref="MountPoint"/> over <see cref="LowerDirectory"/> unless <paramref name="options"/> say otherwise.</summary>
    public StoreMount Mount(StoreMountOptions? options = null)
    {
        options ??= new StoreMountOptions { LowerDirectory = LowerDirectory };
        Store = StoreMount.Mount(Engine, MountPoint, options with { Log = _syncLog, Verbosity = MountLogLevel.Info });
        return Store;
    }

    /// <summary>Registers store paths in the catalog the mount serves, as <c>lazystore register</c> would.</summary>
    public async Task RegisterAsync(params NarInfo[] infos)
    {
        foreach (var info in infos)
            await Engine.GetPathAsync(info.StorePath, register: true, CancellationToken.None);
    }

    /// <summary>Another engine on the same state directory, as a second process would open it.</summary>
    public LazyStoreEngine OpenSecondEngine() => LazyStoreEngine.Open(_engineOptions);

    /// <summary>A path inside the mount: the store path's tree, or a file in it.</summary>
    public string In(NarInfo info, string relative = "") =>
        relative.Length == 0 ? Path.Combine(MountPoint, info.StorePath.BaseName) : Path.Combine(MountPoint, info.StorePath.BaseName, relative);

    /// <summary>How many times the server was asked for a NAR file of any path.</summary>
    public int NarRequests() => Server.CountRequests(p => p.StartsWith("nar/", StringComparison.Ordinal));

    /// <summary>How many times the server was asked for the NAR file of <paramref name="info"/>.</summary>
    public int NarRequests(NarInfo info) => Server.CountRequests(p => p == info.Url);

    public static bool IsMounted(string path) => MountTable.At(Libc.RealPath(path)) is not null;

    /// <summary>Every mount at or below <paramref name="path"/> according to /proc/self/mountinfo.</summary>
    public static IReadOnlyList<string> MountsUnder(string path)
    {
        var root = Libc.RealPath(path);
        return MountTable.Read().Select(m => m.MountPoint)
            .Where(m => m == root || m.StartsWith(root + "/", StringComparison.Ordinal)).ToList();
    }

    /// <summary>Unmounts and waits for the session to end.</summary>
    public async Task UnmountAsync()
    {
        if (Store is null)
            return;
        Store.Unmount();
        await Store.Completion.WaitAsync(Patience);
        Store.Dispose();
    }

    public void Dispose()
    {
        try
        {
            Store?.Dispose();
        }
        finally
        {
            if (Directory.Exists(MountPoint) && MountTable.At(Libc.RealPath(MountPoint)) is not null)
                Libc.umount2(Libc.RealPath(MountPoint), Libc.MntDetach);
            Engine.Dispose();
            Server.Dispose();
            _dir.Dispose();
        }
    }
}

/// <summary>A test that mounts FUSE and drives the real Nix: skipped outside CI when either is missing, never under CI=true.</summary>
public sealed class RealNixFuseFactAttribute : FactAttribute
{
    public RealNixFuseFactAttribute()
    {
        Skip = FuseAvailability.SkipReason
            ?? (!RealNix.IsAvailable && !TestEnvironment.InCi ? "nix-store not on PATH (install Debian's nix-bin; under CI=true this test never skips)" : null);
    }
}
