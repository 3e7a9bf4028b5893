namespace LazyStore.Store.Substituters;

/// <summary>
/// Logins from a netrc file, in the format curl reads for Nix (curl <c>lib/netrc.c</c>):
/// <c>machine HOST login L password P</c> entries, one <c>default</c> entry for hosts no machine names,
/// <c>macdef</c> macros (skipped), tokens separated by any white space and optionally double-quoted.
/// </summary>
public sealed class Netrc
{
    private readonly IReadOnlyList<(string Host, NetrcCredentials? Credentials)> _machines;
    private readonly NetrcCredentials? _default;

    private Netrc(IReadOnlyList<(string Host, NetrcCredentials? Credentials)> machines, NetrcCredentials? fallback)
    {
        _machines = machines;
        _default = fallback;
    }

    /// <summary>No logins at all.</summary>
    public static Netrc Empty { get; } = new([], null);

    /// <summary>
    /// Reads the file at <paramref name="path"/>; a null path or a missing file means no logins
    /// (Nix's default <c>netrc-file</c> usually does not exist). Throws <see cref="NetrcException"/>
    /// naming the file when it cannot be read or is malformed.
    /// </summary>
    public static Netrc Load(string? path)
    {
        if (path is null)
            return Empty;
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return Empty;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new NetrcException(path, null, $"cannot be read: {e.Message}", e);
        }
        return Parse(text, path);
    }

    /// <summary>Parses netrc text; <paramref name="source"/> names it in errors.</summary>
    public static Netrc Parse(string text, string source)
    {
        var machines = new List<(string, NetrcCredentials?)>();
        NetrcCredentials? fallback = null;
        var lexer = new Lexer(text, source);
        Entry? entry = null;
        bool sawDefault = false;

        void Finish()
        {
            if (entry is null)
                return;
            var credentials = entry.Login is null && entry.Password is null ? null : new NetrcCredentials(entry.Login ?? "", entry.Password ?? "");
            if (entry.Host is { } host)
                machines.Add((host, credentials));
            else
                fallback = credentials;
            entry = null;
        }

        while (lexer.Next() is { } keyword)
        {
            switch (keyword.ToLowerInvariant())
            {
                case "machine":
                    Finish();
                    entry = new Entry(lexer.Value("machine"));
                    break;
                case "default":
                    Finish();
                    if (sawDefault)
                        throw lexer.Error("a second 'default' entry");
                    sawDefault = true;
                    entry = new Entry(null);
                    break;
                case "login":
                    RequireEntry(lexer, entry, "login").Login = lexer.Value("login");
                    break;
                case "password":
                    RequireEntry(lexer, entry, "password").Password = lexer.Value("password");
                    break;
                case "account":
                    RequireEntry(lexer, entry, "account");
                    lexer.Value("account");
                    break;
                case "macdef":
                    Finish();
                    lexer.Value("macdef");
                    lexer.SkipMacro();
                    break;
                default:
                    // The token itself is not quoted back: it may be part of a password.
                    throw lexer.Error("unexpected token (expected machine, default, login, password, account or macdef)");
            }
        }
        Finish();
        return new Netrc(machines, fallback);
    }

    /// <summary>
    /// The login for <paramref name="host"/>: the first <c>machine</c> entry naming it (case-insensitively),
    /// else the <c>default</c> entry, else null. Netrc entries carry no port or scheme.
    /// </summary>
    public NetrcCredentials? Find(string host)
    {
        foreach (var (name, credentials) in _machines)
        {
            if (string.Equals(name, host, StringComparison.OrdinalIgnoreCase))
                return credentials;
        }
        return _default;
    }

    private static Entry RequireEntry(Lexer lexer, Entry? entry, string keyword) =>
        entry ?? throw lexer.Error($"'{keyword}' outside a machine or default entry");

    private sealed class Entry(string? host)
    {
        public string? Host { get; } = host;

        public string? Login { get; set; }

        public string? Password { get; set; }
    }

    private sealed class Lexer(string text, string source)
    {
        private int _position;
        private int _line = 1;
        private bool _atLineStart = true;

        /// <summary>The next token, or null at the end of the text.</summary>
        public string? Next()
        {
            while (_position < text.Length)
            {
                char c = text[_position];
                if (c == '\n')
                {
                    _position++;
                    _line++;
                    _atLineStart = true;
                }
                else if (char.IsWhiteSpace(c))
                {
                    _position++;
                }
                else if (c == '#' && _atLineStart)
                {
                    // curl: a line whose first token starts with '#' is a comment.
                    SkipRestOfLine();
                }
                else
                {
                    _atLineStart = false;
                    return c == '"' ? Quoted() : Bare();
                }
            }
            return null;
        }

        /// <summary>The token that must follow <paramref name="keyword"/>.</summary>
        public string Value(string keyword) => Next() ?? throw Error($"'{keyword}' needs a value");

        /// <summary>
        /// Skips a macro body: curl and ftp(1) take it to run from the line after <c>macdef NAME</c>
        /// to the first empty line.
        /// </summary>
        public void SkipMacro()
        {
            SkipRestOfLine();
            if (_position < text.Length)
            {
                _position++;
                _line++;
            }
            while (_position < text.Length)
            {
                int end = text.IndexOf('\n', _position);
                var line = text.AsSpan(_position, (end < 0 ? text.Length : end) - _position);
                _position = end < 0 ? text.Length : end + 1;
                _line++;
                if (line.IsEmpty || line is "\r")
                    break;
            }
            _atLineStart = true;
        }

        public NetrcException Error(string reason) => new(source, _line, reason);

        private void SkipRestOfLine()
        {
            int end = text.IndexOf('\n', _position);
            _position = end < 0 ? text.Length : end;
        }

        private string Bare()
        {
            int start = _position;
            while (_position < text.Length && !char.IsWhiteSpace(text[_position]))
                _position++;
            return text[start.._position];
        }

        /// <summary>A double-quoted token on one line, with curl's escapes <c>\"</c>, <c>\\</c>, <c>\n</c>, <c>\r</c>, <c>\t</c>.</summary>
        private string Quoted()
        {
            var value = new System.Text.StringBuilder();
            _position++;
            while (_position < text.Length && text[_position] is not ('"' or '\n'))
            {
                char c = text[_position++];
                if (c == '\\' && _position < text.Length && text[_position] != '\n')
                {
                    c = text[_position++] switch
                    {
                        'n' => '\n',
                        'r' => '\r',
                        't' => '\t',
                        var other => other,
                    };
                }
                value.Append(c);
            }
            if (_position >= text.Length || text[_position] != '"')
                throw Error("unterminated quoted token");
            _position++;
            return value.ToString();
        }
    }
}

/// <summary>A login and password from a netrc entry; <see cref="ToString"/> leaves the password out.</summary>
public sealed class NetrcCredentials(string login, string password)
{
    public string Login { get; } = login;

    public string Password { get; } = password;

    public override string ToString() => $"{Login} (password hidden)";
}

/// <summary>A netrc file that cannot be read or is malformed: which file, which line (1-based), why.</summary>
public sealed class NetrcException(string file, int? line, string reason, Exception? inner = null)
    : Exception($"netrc file '{file}'{(line is { } l ? $" line {l}" : "")}: {reason}", inner)
{
    public string File { get; } = file;

    public int? Line { get; } = line;
}
