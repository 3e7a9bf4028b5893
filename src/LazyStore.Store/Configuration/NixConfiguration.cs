namespace LazyStore.Store.Configuration;

/// <summary>A nix.conf line or file Nix itself would refuse.</summary>
public sealed class NixConfigurationException(string message) : Exception(message);

/// <summary>
/// Nix's configuration as Nix 2.8 reads it (libstore/globals.cc <c>loadConfFile</c>, libutil/config.cc
/// <c>applyConfigFile</c>): the system file, then the user files, then <c>NIX_CONFIG</c>. Each line is
/// <c>name = value</c> with <c>#</c> starting a comment anywhere; <c>include PATH</c> (relative to the
/// including file; a missing file is an error) and <c>!include PATH</c> (missing is fine); a later
/// setting overrides an earlier one, and <c>extra-NAME</c> appends to NAME.
/// </summary>
public sealed class NixConfiguration
{
    private readonly Dictionary<string, string> _values = new(StringComparer.Ordinal);

    /// <summary>The raw value of a setting as Nix would hold it, or null when nothing set it.</summary>
    public string? Get(string name) => _values.GetValueOrDefault(name);

    /// <summary>A list setting split on whitespace; null when nothing set it.</summary>
    public IReadOnlyList<string>? GetList(string name) =>
        Get(name)?.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);

    /// <summary>Loads the files and variables Nix reads, looking the environment up through <paramref name="environment"/>.</summary>
    public static NixConfiguration Load(Func<string, string?>? environment = null)
    {
        environment ??= Environment.GetEnvironmentVariable;
        var configuration = new NixConfiguration();
        configuration.ApplyFile(Path.Combine(ConfigurationDirectory(environment), "nix.conf"), optional: true);
        foreach (var file in UserFiles(environment).Reverse())
            configuration.ApplyFile(file, optional: true);
        if (environment("NIX_CONFIG") is { Length: > 0 } text)
            configuration.ApplyText(text, "NIX_CONFIG", Directory.GetCurrentDirectory());
        return configuration;
    }

    /// <summary>The directory holding the system configuration (and, by default, the netrc file).</summary>
    public static string ConfigurationDirectory(Func<string, string?>? environment = null) =>
        (environment ?? Environment.GetEnvironmentVariable)("NIX_CONF_DIR") ?? "/etc/nix";

    /// <summary>
    /// <c>NIX_USER_CONF_FILES</c> when set, otherwise <c>nix/nix.conf</c> under <c>XDG_CONFIG_HOME</c>
    /// (default <c>~/.config</c>) and each of <c>XDG_CONFIG_DIRS</c> (default <c>/etc/xdg</c>); most
    /// important first.
    /// </summary>
    private static IEnumerable<string> UserFiles(Func<string, string?> environment)
    {
        if (environment("NIX_USER_CONF_FILES") is { } files)
            return files.Split(':', StringSplitOptions.RemoveEmptyEntries);
        var home = environment("HOME") ?? "/";
        var configHome = environment("XDG_CONFIG_HOME") ?? Path.Combine(home, ".config");
        var configDirs = (environment("XDG_CONFIG_DIRS") ?? "/etc/xdg").Split(':', StringSplitOptions.RemoveEmptyEntries);
        return new[] { configHome }.Concat(configDirs).Select(d => Path.Combine(d, "nix", "nix.conf"));
    }

    public void ApplyFile(string path, bool optional)
    {
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            if (optional)
                return;
            throw new NixConfigurationException($"configuration file '{path}' not found");
        }
        ApplyText(text, path, Path.GetDirectoryName(Path.GetFullPath(path))!);
    }

    public void ApplyText(string text, string source, string directory)
    {
        foreach (var rawLine in text.Split('\n'))
        {
            var hash = rawLine.IndexOf('#', StringComparison.Ordinal);
            var line = hash >= 0 ? rawLine[..hash] : rawLine;
            var tokens = line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            if (tokens.Length == 0)
                continue;
            if (tokens[0] is "include" or "!include")
            {
                if (tokens.Length != 2)
                    throw new NixConfigurationException($"syntax error in configuration line '{line.Trim()}' in '{source}'");
                var included = Path.Combine(directory, tokens[1]);
                if (tokens[0] == "include" && !File.Exists(included))
                    throw new NixConfigurationException($"file '{included}' included from '{source}' not found");
                ApplyFile(included, optional: true);
                continue;
            }
            if (tokens.Length < 2 || tokens[1] != "=")
                throw new NixConfigurationException($"illegal configuration line '{line.Trim()}' in '{source}'");
            Set(tokens[0], string.Join(' ', tokens.Skip(2)));
        }
    }

    public void Set(string name, string value)
    {
        if (name.StartsWith("extra-", StringComparison.Ordinal))
        {
            var baseName = name["extra-".Length..];
            _values[baseName] = _values.TryGetValue(baseName, out var previous) && previous.Length > 0
                ? previous + " " + value
                : value;
            return;
        }
        _values[name] = value;
    }
}
