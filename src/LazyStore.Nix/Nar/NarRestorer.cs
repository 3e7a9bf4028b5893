namespace LazyStore.Nix.Nar;

/// <summary>
/// Unpacks a NAR into the file system as <c>nix-store --restore</c> does. Nothing is written outside the
/// target: entry names are validated by <see cref="NarReader"/> (no '/', '.', '..'), every object is
/// created new (an existing file, directory or symlink at any path is an error, never followed).
/// </summary>
public static class NarRestorer
{
    /// <summary>Restores the NAR in <paramref name="nar"/> to <paramref name="target"/>, which must not exist yet.</summary>
    public static void Restore(Stream nar, string target)
    {
        using var reader = new NarReader(nar, leaveOpen: true);
        Restore(reader, target);
    }

    public static void Restore(NarReader reader, string target)
    {
        ArgumentNullException.ThrowIfNull(reader);
        var root = Path.GetFullPath(target);
        while (reader.GetNextEntry() is { } entry)
        {
            var path = entry.Path.Length == 0 ? root : Path.Join(root, entry.Path);
            EnsureAbsent(path);
            switch (entry.Type)
            {
                case NarEntryType.Directory:
                    Directory.CreateDirectory(path);
                    break;
                case NarEntryType.Symlink:
                    File.CreateSymbolicLink(path, entry.LinkTarget!);
                    break;
                case NarEntryType.Regular:
                    WriteFile(path, entry);
                    break;
            }
        }
    }

    private static void WriteFile(string path, NarEntry entry)
    {
        using var file = new FileStream(path, new FileStreamOptions
        {
            Mode = FileMode.CreateNew,
            Access = FileAccess.Write,
            BufferSize = 0,
            PreallocationSize = entry.Size,
            UnixCreateMode = entry.IsExecutable
                ? UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
                  | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute
                : UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead,
        });
        using var payload = entry.OpenPayload();
        payload.CopyTo(file, 128 * 1024);
    }

    private static void EnsureAbsent(string path)
    {
        if (Path.Exists(path) || new FileInfo(path).LinkTarget is not null)
            throw new IOException($"cannot restore NAR: '{path}' already exists");
    }
}
