using System.CommandLine;
using System.Globalization;
using LazyStore.Nix;
using LazyStore.Store;
using LazyStore.Store.Catalog;
using LazyStore.Store.Configuration;

namespace LazyStore.Cli.Commands;

/// <summary>The options every command that reads binary caches shares, and the engine they configure.</summary>
internal sealed class StoreOptions
{
    public Option<string[]> Substituters { get; } = new("--substituter")
    {
        Description = "Binary cache URL (http://, https://, file://); repeatable; replaces nix.conf's substituters",
        AllowMultipleArgumentsPerToken = false,
    };

    public Option<string[]> TrustedKeys { get; } = new("--trusted-public-key")
    {
        Description = "NAME:BASE64 key whose signatures are trusted; repeatable; replaces nix.conf's trusted-public-keys",
    };

    public Option<bool> NoRequireSigs { get; } = new("--no-require-sigs")
    {
        Description = "Accept narinfos without a trusted signature (NarHash is still checked)",
    };

    public Option<string?> StateDir { get; } = new("--state-dir")
    {
        Description = "LazyStore's state directory (default: $LAZYSTORE_STATE_DIR, /var/lib/lazystore as root, else ~/.cache/lazystore)",
    };

    public Option<string> StoreDir { get; } = new("--store-dir")
    {
        Description = "The Nix store directory the caches must serve",
        DefaultValueFactory = _ => StoreDirectory.Default.Path,
    };

    public Option<uint?> ConnectTimeout { get; } = new("--connect-timeout")
    {
        Description = "Seconds to connect to a cache; 0: curl's 300 (replaces nix.conf's connect-timeout)",
    };

    public Option<uint?> StalledDownloadTimeout { get; } = new("--stalled-download-timeout")
    {
        Description = "Seconds without a byte from a cache before a request fails; 0: no limit (replaces nix.conf's stalled-download-timeout, default 300)",
    };

    public Option<uint?> DownloadAttempts { get; } = new("--download-attempts")
    {
        Description = "Tries per request for failures that may pass (replaces nix.conf's download-attempts, default 5)",
    };

    public void AddTo(Command command)
    {
        command.Options.Add(Substituters);
        command.Options.Add(TrustedKeys);
        command.Options.Add(NoRequireSigs);
        command.Options.Add(StateDir);
        command.Options.Add(StoreDir);
        command.Options.Add(ConnectTimeout);
        command.Options.Add(StalledDownloadTimeout);
        command.Options.Add(DownloadAttempts);
    }

    public string StatePath(ParseResult result) =>
        result.GetValue(StateDir) ?? StateDirectory.DefaultPath(Environment.GetEnvironmentVariable);

    /// <summary>Opens the engine with nix.conf's settings, overridden by the command line.</summary>
    public LazyStoreEngine OpenEngine(ParseResult result)
    {
        SubstituterSettings settings;
        try
        {
            var configuration = NixConfiguration.Load();
            // As Nix's own --NAME VALUE flags do: the setting is replaced before it is read.
            foreach (var (option, setting) in new[] { (ConnectTimeout, "connect-timeout"), (StalledDownloadTimeout, "stalled-download-timeout"), (DownloadAttempts, "download-attempts") })
            {
                if (result.GetValue(option) is { } value)
                    configuration.Set(setting, value.ToString(CultureInfo.InvariantCulture));
            }
            settings = SubstituterSettings.From(configuration, NixConfiguration.ConfigurationDirectory(),
                result.GetValue(Substituters), result.GetValue(TrustedKeys), result.GetValue(NoRequireSigs) ? false : null);
        }
        catch (Exception e) when (e is NixConfigurationException or FormatException)
        {
            throw new CliException("configuration: " + e.Message, e);
        }
        return LazyStoreEngine.Open(new LazyStoreOptions
        {
            StateDirectory = StatePath(result),
            Substituters = settings,
            StoreDirectory = new StoreDirectory(result.GetValue(StoreDir)!),
        });
    }
}
