using System.Text;

namespace LazyStore.Fuse;

/// <summary>One line of <c>/proc/self/mountinfo</c>.</summary>
public sealed record MountInfoEntry(string MountPoint, string FileSystemType, string Source);

/// <summary>The mounts this process sees, from <c>/proc/self/mountinfo</c> (proc(5)).</summary>
public static class MountTable
{
    internal const string Path = "/proc/self/mountinfo";

    internal static IReadOnlyList<MountInfoEntry> Read() => File.ReadLines(Path).Select(Parse).ToList();

    /// <summary>The mount at exactly <paramref name="mountPoint"/> (the topmost, if stacked), or null.</summary>
    public static MountInfoEntry? At(string mountPoint) => Read().LastOrDefault(m => m.MountPoint == mountPoint);

    /// <summary>
    /// Parses "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue":
    /// the fifth field is the mount point; after the optional fields, a lone "-" precedes type and source.
    /// </summary>
    internal static MountInfoEntry Parse(string line)
    {
        var fields = line.Split(' ');
        int separator = fields.Length > 6 ? Array.IndexOf(fields, "-", 6) : -1;
        if (separator < 0 || separator + 2 >= fields.Length)
            throw new InvalidDataException($"{Path}: malformed line '{line}'");
        return new MountInfoEntry(Unescape(fields[4]), Unescape(fields[separator + 1]), Unescape(fields[separator + 2]));
    }

    /// <summary>The kernel writes space, tab, newline and backslash as three-digit octal escapes (seq_file's mangle).</summary>
    internal static string Unescape(string field)
    {
        if (!field.Contains('\\'))
            return field;
        var bytes = new List<byte>(field.Length);
        var raw = Encoding.UTF8.GetBytes(field);
        for (int i = 0; i < raw.Length; i++)
        {
            if (raw[i] == '\\' && i + 3 < raw.Length && IsOctal(raw[i + 1]) && IsOctal(raw[i + 2]) && IsOctal(raw[i + 3]))
            {
                bytes.Add((byte)(((raw[i + 1] - '0') << 6) | ((raw[i + 2] - '0') << 3) | (raw[i + 3] - '0')));
                i += 3;
            }
            else
            {
                bytes.Add(raw[i]);
            }
        }
        return Encoding.UTF8.GetString(bytes.ToArray());
    }

    private static bool IsOctal(byte b) => b is >= (byte)'0' and <= (byte)'7';
}
