using System.Text;

namespace LazyStore.Cli;

/// <summary>
/// The standard streams a command works with. Binary data (NARs, file contents) goes to
/// <see cref="Stdout"/> unchanged; <see cref="Out"/> is a UTF-8 text view of the same stream.
/// </summary>
public sealed class CliConsole
{
    public CliConsole(Stream stdin, Stream stdout, TextWriter stderr, bool isTerminal = false)
    {
        IsTerminal = isTerminal;
        Stdin = stdin;
        Stdout = stdout;
        Error = stderr;
        Out = new StreamWriter(stdout, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false), bufferSize: 64 * 1024, leaveOpen: true)
        {
            NewLine = "\n",
        };
    }

    public Stream Stdin { get; }

    public Stream Stdout { get; }

    public TextWriter Out { get; }

    public TextWriter Error { get; }

    /// <summary>Whether stderr is a terminal, so progress can be drawn in place.</summary>
    public bool IsTerminal { get; }
}
