using System.Buffers.Binary;
using System.Text;

namespace LazyStore.Tests.Support;

/// <summary>
/// Builds NAR byte sequences token by token with no validation, so tests can craft malformed archives
/// and know the exact offset of the token that breaks a rule.
/// </summary>
public sealed class RawNar
{
    private readonly MemoryStream _bytes = new();

    public long Length => _bytes.Length;

    public static RawNar WithMagic() => new RawNar().Str("nix-archive-1");

    public RawNar Str(string s) => Str(Encoding.UTF8.GetBytes(s));

    public RawNar Str(byte[] s, byte padByte = 0)
    {
        U64((ulong)s.Length);
        _bytes.Write(s);
        for (int i = 0; i < (8 - s.Length % 8) % 8; i++)
            _bytes.WriteByte(padByte);
        return this;
    }

    public RawNar U64(ulong value)
    {
        Span<byte> b = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(b, value);
        _bytes.Write(b);
        return this;
    }

    public RawNar Raw(params byte[] bytes)
    {
        _bytes.Write(bytes);
        return this;
    }

    /// <summary>Appends several keyword strings.</summary>
    public RawNar Tokens(params string[] tokens)
    {
        foreach (var t in tokens)
            Str(t);
        return this;
    }

    /// <summary>A whole regular-file node.</summary>
    public RawNar Regular(string contents, bool executable = false)
    {
        Tokens("(", "type", "regular");
        if (executable)
            Tokens("executable", "");
        return Tokens("contents").Str(contents).Str(")");
    }

    public RawNar EntryStart(string name) => Tokens("entry", "(", "name").Str(name).Str("node");

    public RawNar EntryStart(byte[] name) => Tokens("entry", "(", "name").Str(name).Str("node");

    public byte[] ToArray() => _bytes.ToArray();
}
