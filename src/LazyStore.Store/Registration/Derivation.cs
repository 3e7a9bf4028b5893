using System.Globalization;
using System.Text;
using LazyStore.Nix;

namespace LazyStore.Store.Registration;

/// <summary>
/// One output of a derivation. An input-addressed or fixed-output one has its path written in the
/// derivation; a floating content-addressed output (a hash algorithm, no hash) and a deferred one
/// (neither) get theirs only when built, and have a null <see cref="Path"/>.
/// </summary>
/// <param name="HashAlgorithm">As written: empty for input-addressed outputs, else the algorithm, prefixed <c>r:</c> for a NAR hash.</param>
/// <param name="Hash">The fixed output's expected hash; null for every other kind.</param>
public sealed record DerivationOutput(StorePath? Path, string HashAlgorithm, NixHash? Hash)
{
    public bool IsFixed => Hash is not null;
}

/// <summary>
/// A store derivation (<c>.drv</c>) as Nix writes it, in ATerm syntax:
/// <c>Derive([outputs],[inputDrvs],[inputSrcs],"system","builder",[args],[env])</c>.
/// </summary>
/// <remarks>
/// The grammar is Nix 2.8's <c>parseDerivation</c> (libstore/derivations.cc). Stricter than Nix, which
/// never writes such files: list elements must be separated by exactly one comma (Nix also takes
/// <c>["a""b"]</c>), a string escape other than <c>\" \\ \n \r \t</c> is an error (Nix takes <c>\q</c> as
/// <c>q</c>), names in outputs, inputDrvs, inputSrcs and env must not repeat (Nix writes them from sorted
/// maps), input derivations must be <c>.drv</c> paths, and nothing may follow the closing parenthesis.
/// </remarks>
public sealed class Derivation
{
    /// <summary>What ends a derivation's store path name (Nix's <c>drvExtension</c>).</summary>
    public const string Extension = ".drv";

    /// <summary>Output name → output, in the order written (Nix writes them sorted by name).</summary>
    public required IReadOnlyDictionary<string, DerivationOutput> Outputs { get; init; }

    /// <summary>Input derivation → the names of its outputs this derivation uses.</summary>
    public required IReadOnlyDictionary<StorePath, IReadOnlyList<string>> InputDrvs { get; init; }

    /// <summary>Store paths this derivation uses directly (sources, the builder).</summary>
    public required IReadOnlyList<StorePath> InputSrcs { get; init; }

    /// <summary>The system the builder runs on, e.g. <c>x86_64-linux</c>.</summary>
    public required string Platform { get; init; }

    public required string Builder { get; init; }

    public required IReadOnlyList<string> Args { get; init; }

    public required IReadOnlyDictionary<string, string> Env { get; init; }

    /// <summary>Whether <paramref name="path"/> names a store derivation (Nix's <c>StorePath::isDerivation</c>).</summary>
    public static bool IsDerivation(StorePath path) => path.Name.EndsWith(Extension, StringComparison.Ordinal);

    /// <summary>Parses a derivation's text; <paramref name="source"/> names it in errors.</summary>
    /// <exception cref="DerivationFormatException">The text is not a derivation; says where and what was expected.</exception>
    public static Derivation Parse(string text, StoreDirectory storeDirectory, string source)
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentNullException.ThrowIfNull(storeDirectory);
        return new Reader(text, storeDirectory, source).ReadDerivation();
    }

    /// <summary>
    /// The derivation's text as Nix 2.8's <c>Derivation::unparse</c> writes it, with outputs, input derivations,
    /// input sources and env in the order held (a parsed derivation keeps its file's order, so a file Nix
    /// wrote comes back byte for byte).
    /// </summary>
    public string Unparse(StoreDirectory storeDirectory)
    {
        ArgumentNullException.ThrowIfNull(storeDirectory);
        var text = new StringBuilder("Derive(");
        AppendList(text, Outputs, (t, o) =>
        {
            t.Append('(');
            AppendString(t, o.Key).Append(',');
            AppendString(t, o.Value.Path is { } path ? storeDirectory.Print(path) : "").Append(',');
            AppendString(t, o.Value.HashAlgorithm).Append(',');
            AppendString(t, o.Value.Hash?.ToBase16() ?? "").Append(')');
        });
        text.Append(',');
        AppendList(text, InputDrvs, (t, i) =>
        {
            t.Append('(');
            AppendString(t, storeDirectory.Print(i.Key)).Append(',');
            AppendList(t, i.Value, (names, name) => AppendString(names, name));
            t.Append(')');
        });
        text.Append(',');
        AppendList(text, InputSrcs, (t, path) => AppendString(t, storeDirectory.Print(path)));
        AppendString(text.Append(','), Platform);
        AppendString(text.Append(','), Builder);
        text.Append(',');
        AppendList(text, Args, (t, arg) => AppendString(t, arg));
        text.Append(',');
        AppendList(text, Env, (t, variable) =>
        {
            t.Append('(');
            AppendString(t, variable.Key).Append(',');
            AppendString(t, variable.Value).Append(')');
        });
        return text.Append(')').ToString();
    }

    private static void AppendList<T>(StringBuilder text, IEnumerable<T> items, Action<StringBuilder, T> append)
    {
        text.Append('[');
        var first = true;
        foreach (var item in items)
        {
            if (!first)
                text.Append(',');
            first = false;
            append(text, item);
        }
        text.Append(']');
    }

    // Nix 2.8 printString: the five escapes parseString reads back.
    private static StringBuilder AppendString(StringBuilder text, string value)
    {
        text.Append('"');
        foreach (var c in value)
        {
            _ = c switch
            {
                '"' => text.Append("\\\""),
                '\\' => text.Append("\\\\"),
                '\n' => text.Append("\\n"),
                '\r' => text.Append("\\r"),
                '\t' => text.Append("\\t"),
                _ => text.Append(c),
            };
        }
        return text.Append('"');
    }

    private sealed class Reader(string text, StoreDirectory storeDirectory, string source)
    {
        private int _position;
        private string? _field;

        public Derivation ReadDerivation()
        {
            Expect("Derive(");
            _field = "outputs";
            var outputs = new Dictionary<string, DerivationOutput>(StringComparer.Ordinal);
            ReadList(() =>
            {
                Expect("(");
                var at = _position;
                var name = ReadString();
                Expect(",");
                var output = ReadOutput();
                Expect(")");
                if (!outputs.TryAdd(name, output))
                    throw Error(MetadataErrorKind.DuplicateField, at, $"output '{name}' appears more than once");
            });
            Expect(",");
            _field = "inputDrvs";
            var inputDrvs = new Dictionary<StorePath, IReadOnlyList<string>>();
            ReadList(() =>
            {
                Expect("(");
                var at = _position;
                var path = ReadPath();
                if (!IsDerivation(path))
                    throw Error(MetadataErrorKind.InvalidValue, at, $"input derivation '{storeDirectory.Print(path)}' is not a {Extension} path");
                Expect(",");
                var names = ReadStrings();
                Expect(")");
                if (!inputDrvs.TryAdd(path, names))
                    throw Error(MetadataErrorKind.DuplicateField, at, $"input derivation '{storeDirectory.Print(path)}' appears more than once");
            });
            Expect(",");
            _field = "inputSrcs";
            var inputSrcs = new List<StorePath>();
            var sources = new HashSet<StorePath>();
            ReadList(() =>
            {
                var at = _position;
                var path = ReadPath();
                if (!sources.Add(path))
                    throw Error(MetadataErrorKind.DuplicateField, at, $"input source '{storeDirectory.Print(path)}' appears more than once");
                inputSrcs.Add(path);
            });
            Expect(",");
            _field = "system";
            var platform = ReadString();
            Expect(",");
            _field = "builder";
            var builder = ReadString();
            Expect(",");
            _field = "args";
            var args = ReadStrings();
            Expect(",");
            _field = "env";
            var env = new Dictionary<string, string>(StringComparer.Ordinal);
            ReadList(() =>
            {
                Expect("(");
                var at = _position;
                var name = ReadString();
                Expect(",");
                var value = ReadString();
                Expect(")");
                if (!env.TryAdd(name, value))
                    throw Error(MetadataErrorKind.DuplicateField, at, $"variable '{name}' appears more than once");
            });
            _field = null;
            Expect(")");
            if (_position != text.Length)
                throw Error(MetadataErrorKind.Syntax, _position, $"unexpected {Found(_position)} after the derivation's closing ')'");
            return new Derivation
            {
                Outputs = outputs,
                InputDrvs = inputDrvs,
                InputSrcs = inputSrcs,
                Platform = platform,
                Builder = builder,
                Args = args,
                Env = env,
            };
        }

        // Nix 2.8 parseDerivationOutput: (path, hashAlgo, hash) decide the kind of output.
        private DerivationOutput ReadOutput()
        {
            var pathAt = _position;
            var path = ReadString();
            Expect(",");
            var algorithmAt = _position;
            var algorithm = ReadString();
            Expect(",");
            var hashAt = _position;
            var hash = ReadString();
            if (algorithm.Length == 0)
            {
                if (hash.Length != 0)
                    throw Error(MetadataErrorKind.InvalidValue, hashAt, $"output has hash '{hash}' but no hash algorithm");
                return new DerivationOutput(path.Length == 0 ? null : ParsePath(path, pathAt), algorithm, null);
            }
            var name = algorithm.StartsWith("r:", StringComparison.Ordinal) ? algorithm[2..] : algorithm;
            if (!NixHash.TryParseAlgorithm(name, out var parsed))
                throw Error(MetadataErrorKind.InvalidValue, algorithmAt, $"unknown hash algorithm '{algorithm}'");
            if (hash.Length == 0)
            {
                return path.Length == 0
                    ? new DerivationOutput(null, algorithm, null)
                    : throw Error(MetadataErrorKind.InvalidValue, pathAt, $"floating content-addressed output (no hash) has a path '{path}'");
            }
            var storePath = path.Length == 0
                ? throw Error(MetadataErrorKind.InvalidValue, pathAt, "fixed output (with a hash) has no path")
                : ParsePath(path, pathAt);
            try
            {
                return new DerivationOutput(storePath, algorithm, NixHash.Parse(hash, parsed));
            }
            catch (NixHashFormatException e)
            {
                throw Error(MetadataErrorKind.InvalidValue, hashAt, e.Message, e);
            }
        }

        private StorePath ReadPath()
        {
            var at = _position;
            return ParsePath(ReadString(), at);
        }

        private StorePath ParsePath(string path, int at)
        {
            try
            {
                return storeDirectory.ParsePath(path);
            }
            catch (StorePathFormatException e)
            {
                throw Error(MetadataErrorKind.InvalidValue, at, e.Message, e);
            }
        }

        private List<string> ReadStrings()
        {
            var strings = new List<string>();
            ReadList(() => strings.Add(ReadString()));
            return strings;
        }

        /// <summary><c>[e,e,…]</c>: elements separated by single commas, possibly none.</summary>
        private void ReadList(Action readElement)
        {
            Expect("[");
            if (Peek() == ']')
            {
                _position++;
                return;
            }
            while (true)
            {
                readElement();
                switch (Peek())
                {
                    case ',':
                        _position++;
                        continue;
                    case ']':
                        _position++;
                        return;
                    default:
                        throw Error(MetadataErrorKind.Syntax, _position, $"expected ',' or ']', found {Found(_position)}");
                }
            }
        }

        // Nix 2.8 parseString; printString writes exactly these five escapes.
        private string ReadString()
        {
            Expect("\"");
            var start = _position;
            var value = new StringBuilder();
            while (true)
            {
                var run = text.AsSpan(_position).IndexOfAny('"', '\\');
                if (run < 0)
                    throw Error(MetadataErrorKind.Syntax, start - 1, "string is not terminated: the text ends inside it");
                value.Append(text.AsSpan(_position, run));
                _position += run;
                if (text[_position++] == '"')
                    return value.ToString();
                if (_position >= text.Length)
                    throw Error(MetadataErrorKind.Syntax, _position - 1, "string is not terminated: the text ends after a backslash");
                var escaped = text[_position];
                value.Append(escaped switch
                {
                    '"' => '"',
                    '\\' => '\\',
                    'n' => '\n',
                    'r' => '\r',
                    't' => '\t',
                    _ => throw Error(MetadataErrorKind.Syntax, _position - 1,
                        $"unknown escape '\\{Show(escaped.ToString())}' (a derivation's strings escape only \\\" \\\\ \\n \\r \\t)"),
                });
                _position++;
            }
        }

        private void Expect(string literal)
        {
            if (!text.AsSpan(_position).StartsWith(literal, StringComparison.Ordinal))
                throw Error(MetadataErrorKind.Syntax, _position, $"expected '{literal}', found {Found(_position)}");
            _position += literal.Length;
        }

        private int Peek() => _position < text.Length ? text[_position] : -1;

        private string Found(int at) => at >= text.Length ? "the end of the text" : $"'{Show(text.Substring(at, Math.Min(16, text.Length - at)))}'";

        // Keeps an error on one line whatever the offending text holds.
        private static string Show(string fragment)
        {
            var shown = new StringBuilder(fragment.Length);
            foreach (var c in fragment)
            {
                if (char.IsControl(c))
                    shown.Append(string.Create(CultureInfo.InvariantCulture, $"\\x{(int)c:x2}"));
                else
                    shown.Append(c);
            }
            return shown.ToString();
        }

        private DerivationFormatException Error(MetadataErrorKind kind, int at, string reason, Exception? inner = null) =>
            new(source, kind, _field, at, reason, inner);
    }
}
