using System.Globalization;
using LazyStore.Nix.Signatures;
using LazyStore.Store.Substituters;

namespace LazyStore.Store.Configuration;

/// <summary>
/// Which binary caches to ask and whom to trust, from Nix's configuration unless the command line
/// overrides it. Defaults are Nix 2.8's (libstore/globals.hh).
/// </summary>
public sealed record SubstituterSettings
{
    public const string DefaultSubstituter = "https://cache.nixos.org/";
    public const string DefaultTrustedKey = "cache.nixos.org-1:6NCHdD59X431o0gWypbMrAURkbJ16ZPMQFGspcDShjY=";

    public required IReadOnlyList<Uri> Substituters { get; init; }

    public required IReadOnlyList<PublicKey> TrustedPublicKeys { get; init; }

    public bool RequireSignatures { get; init; } = true;

    public string? NetrcFile { get; init; }

    /// <summary><c>narinfo-cache-negative-ttl</c>: how long "not in this cache" is remembered (Nix: 3600 s).</summary>
    public TimeSpan NegativeTtl { get; init; } = TimeSpan.FromSeconds(3600);

    /// <summary><c>narinfo-cache-positive-ttl</c>: how long a found narinfo is remembered (Nix: 30 days).</summary>
    public TimeSpan PositiveTtl { get; init; } = TimeSpan.FromSeconds(30 * 24 * 3600);

    /// <summary><c>connect-timeout</c>: time to connect to a cache (Nix: 0, which is curl's 300 s).</summary>
    public TimeSpan ConnectTimeout { get; init; } = TransportOptions.CurlDefaultConnectTimeout;

    /// <summary>
    /// <c>stalled-download-timeout</c>: a transfer that receives nothing for this long fails (Nix: 300 s;
    /// 0 there turns the limit off, <see cref="Timeout.InfiniteTimeSpan"/> here).
    /// </summary>
    public TimeSpan StalledDownloadTimeout { get; init; } = TimeSpan.FromSeconds(300);

    /// <summary><c>download-attempts</c>: tries per request for failures that may pass (Nix: 5; at least 1).</summary>
    public int DownloadAttempts { get; init; } = 5;

    /// <summary><c>http-connections</c>: connections to one cache, and NAR downloads, at once (Nix: 25; 0: no limit).</summary>
    public int HttpConnections { get; init; } = 25;

    /// <summary>How many lookups when <c>http-connections</c> is 0 (no limit in Nix).</summary>
    public const int UnlimitedLookupParallelism = 64;

    /// <summary>
    /// How many narinfo or listing requests a walk over many paths (a closure, the listings of registered paths)
    /// keeps in flight: <see cref="HttpConnections"/>, as Nix keeps that many transfers going, or
    /// <see cref="UnlimitedLookupParallelism"/> when it is 0.
    /// </summary>
    public int LookupParallelism => HttpConnections > 0 ? HttpConnections : UnlimitedLookupParallelism;

    /// <summary>Settings as Nix would use them, with command-line values taking precedence where given.</summary>
    public static SubstituterSettings From(NixConfiguration configuration, string confDir,
        IReadOnlyList<string>? substituters = null, IReadOnlyList<string>? trustedKeys = null, bool? requireSignatures = null)
    {
        var urls = substituters is { Count: > 0 } ? substituters : configuration.GetList("substituters") ?? [DefaultSubstituter];
        var keys = trustedKeys is { Count: > 0 } ? trustedKeys : configuration.GetList("trusted-public-keys") ?? [DefaultTrustedKey];
        return new SubstituterSettings
        {
            Substituters = urls.Select(ParseSubstituter).ToList(),
            TrustedPublicKeys = keys.Select(k => PublicKey.Parse(k)).ToList(),
            RequireSignatures = requireSignatures ?? ParseBool(configuration, "require-sigs", true),
            NetrcFile = configuration.Get("netrc-file") ?? Path.Combine(confDir, "netrc"),
            NegativeTtl = TimeSpan.FromSeconds(ParseSeconds(configuration, "narinfo-cache-negative-ttl", 3600)),
            PositiveTtl = TimeSpan.FromSeconds(ParseSeconds(configuration, "narinfo-cache-positive-ttl", 30 * 24 * 3600)),
            ConnectTimeout = ParseSeconds(configuration, "connect-timeout", 0) is var connect and > 0
                ? TimeSpan.FromSeconds(connect)
                : TransportOptions.CurlDefaultConnectTimeout,
            StalledDownloadTimeout = ParseSeconds(configuration, "stalled-download-timeout", 300) is var stalled and > 0
                ? TimeSpan.FromSeconds(stalled)
                : Timeout.InfiniteTimeSpan,
            DownloadAttempts = (int)Math.Clamp(ParseCount(configuration, "download-attempts", 5), 1, int.MaxValue),
            HttpConnections = (int)Math.Min(ParseCount(configuration, "http-connections", 25), int.MaxValue),
        };
    }

    private static Uri ParseSubstituter(string url)
    {
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https" or "file"))
            throw new NixConfigurationException($"substituter '{url}' is not an http://, https:// or file:// URL");
        return uri;
    }

    private static bool ParseBool(NixConfiguration configuration, string name, bool fallback) =>
        configuration.Get(name) switch
        {
            null => fallback,
            "true" => true,
            "false" => false,
            var other => throw new NixConfigurationException($"setting '{name}' has invalid value '{other}' (expected true or false)"),
        };

    private static long ParseSeconds(NixConfiguration configuration, string name, long fallback) =>
        ParseUnsigned(configuration, name, fallback, "a number of seconds");

    private static long ParseCount(NixConfiguration configuration, string name, long fallback) =>
        ParseUnsigned(configuration, name, fallback, "a whole number");

    private static long ParseUnsigned(NixConfiguration configuration, string name, long fallback, string expected)
    {
        var value = configuration.Get(name);
        if (value is null)
            return fallback;
        if (!long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var number))
            throw new NixConfigurationException($"setting '{name}' has invalid value '{value}' (expected {expected})");
        return number;
    }
}
