namespace LazyStore.Store.Mount;

/// <summary>The mount's log: one line per event, each with a UTC time, filtered by <see cref="MountLogLevel"/>.</summary>
internal sealed class MountLog(TextWriter? writer, MountLogLevel verbosity)
{
    private readonly TextWriter _writer = TextWriter.Synchronized(writer ?? Console.Error);

    public bool IsEnabled(MountLogLevel level) => level <= verbosity;

    public void Error(string message) => Write(MountLogLevel.Error, message);

    public void Info(string message) => Write(MountLogLevel.Info, message);

    public void Debug(string message) => Write(MountLogLevel.Debug, message);

    private void Write(MountLogLevel level, string message)
    {
        if (!IsEnabled(level))
            return;
        _writer.WriteLine($"{DateTimeOffset.UtcNow:HH:mm:ss.fff} {level.ToString().ToLowerInvariant()}: {message}");
        _writer.Flush();
    }
}
