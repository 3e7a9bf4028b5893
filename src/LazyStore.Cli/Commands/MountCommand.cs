using System.CommandLine;
using System.Globalization;
using System.Runtime.InteropServices;
using LazyStore.Fuse;
using LazyStore.Store.Mount;

namespace LazyStore.Cli.Commands;

/// <summary><c>lazystore mount</c>: the overlay, in the foreground until unmounted or interrupted.</summary>
internal static class MountCommand
{
    public static Command Create(CliConsole console)
    {
        var options = new StoreOptions();
        var mountPoint = new Argument<string>("MOUNTPOINT") { Description = "Where to mount; may be the store directory itself" };
        var lower = new Option<string?>("--lower")
        {
            Description = "The real store directory whose entries pass through (default: MOUNTPOINT itself, opened before mounting over it)",
        };
        var onDemand = new Option<bool>("--on-demand")
        {
            Description = "Also serve any HASH-NAME a trusted cache has, looked up when first named (default: only registered paths)",
        };
        var noOnDemand = new Option<bool>("--no-on-demand") { Description = "Serve registered paths only (the default)" };
        var allowOther = new Option<bool>("--allow-other") { Description = "Let other users in (the default as root)" };
        var noAllowOther = new Option<bool>("--no-allow-other") { Description = "Only the mounting user may enter" };
        var logLevel = new Option<MountLogLevel>("--log-level")
        {
            Description = "error: failures only; info: also each NAR fetched (default); debug: also each lazy open and root lookup",
            DefaultValueFactory = _ => MountLogLevel.Info,
        };
        var command = new Command("mount", "Mount a lazy store: lower entries pass through, registered store paths are fetched on first open")
        {
            mountPoint, lower, onDemand, noOnDemand, allowOther, noAllowOther, logLevel,
        };
        options.AddTo(command);
        command.SetAction(result =>
        {
            if (result.GetValue(onDemand) && result.GetValue(noOnDemand))
                throw new CliException("mount: --on-demand and --no-on-demand contradict each other");
            if (result.GetValue(allowOther) && result.GetValue(noAllowOther))
                throw new CliException("mount: --allow-other and --no-allow-other contradict each other");
            var target = result.GetValue(mountPoint)!;
            using var engine = options.OpenEngine(result);
            StoreMount mount;
            try
            {
                mount = StoreMount.Mount(engine, target, new StoreMountOptions
                {
                    LowerDirectory = result.GetValue(lower),
                    OnDemand = result.GetValue(onDemand),
                    AllowOther = result.GetValue(allowOther) || (Environment.IsPrivilegedProcess && !result.GetValue(noAllowOther)),
                    Log = console.Error,
                    Verbosity = result.GetValue(logLevel),
                });
            }
            catch (FuseMountException e)
            {
                throw new CliException("mount: " + e.Message, e);
            }
            using (mount)
            {
                // Unmounting from the signal handler makes the session end; Completion then lets the command return.
                using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, Stop);
                using var terminate = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Stop);
                var registered = engine.Catalog.ListRegisteredRoots().Count;
                console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"lazystore: mounted at {mount.MountPoint} (lower: {result.GetValue(lower) ?? mount.MountPoint}; {registered} registered paths; on-demand {(result.GetValue(onDemand) ? "on" : "off")}); Ctrl-C or umount to stop"));
                try
                {
                    mount.Completion.GetAwaiter().GetResult();
                }
                catch (FuseMountException e)
                {
                    throw new CliException("mount: " + e.Message, e);
                }
                var s = mount.Statistics;
                console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"lazystore: unmounted {mount.MountPoint}; {s.LazyOpens} lazy opens ({s.FailedOpens} failed), {s.NarsFetched} NAR downloads, {s.BytesDownloaded} bytes downloaded"));

                void Stop(PosixSignalContext context)
                {
                    context.Cancel = true;
                    mount.Unmount();
                }
            }
        });
        return command;
    }
}
