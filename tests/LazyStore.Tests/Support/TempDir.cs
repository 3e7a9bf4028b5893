namespace LazyStore.Tests.Support;

/// <summary>A temporary directory removed on dispose (read-only trees included, as Nix leaves them).</summary>
public sealed class TempDir : IDisposable
{
    public TempDir(string? prefix = null)
    {
        Path = Directory.CreateTempSubdirectory(prefix ?? "lazystore-test-").FullName;
    }

    public string Path { get; }

    public string Sub(string relative) => System.IO.Path.Combine(Path, relative);

    public void Dispose()
    {
        try
        {
            MakeWritable(Path);
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
            // A busy mount or a racing process must not fail the test that already finished.
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    private static void MakeWritable(string dir)
    {
        foreach (var d in Directory.EnumerateDirectories(dir, "*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0 }).Prepend(dir))
        {
            var info = new DirectoryInfo(d);
            if (info.LinkTarget is null)
                File.SetUnixFileMode(d, File.GetUnixFileMode(d) | UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
    }
}
