namespace LazyStore.Nix;

/// <summary>
/// Nix's base-32 ("nix32"): the alphabet omits <c>e o t u</c>, and digits are taken from the end of
/// the byte string towards its start, the first character carrying the most significant bits
/// (Nix <c>src/libutil/hash.cc</c>, <c>printHash32</c> and the base-32 branch of <c>Hash::Hash</c>).
/// It is not RFC 4648 base32.
/// </summary>
public static class Nix32
{
    public const string Alphabet = "0123456789abcdfghijklmnpqrsvwxyz";

    private static readonly sbyte[] DigitOf = BuildDigitTable();

    /// <summary>Characters needed for <paramref name="byteCount"/> bytes: ceil(8n/5).</summary>
    public static int GetEncodedLength(int byteCount)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(byteCount);
        return byteCount == 0 ? 0 : checked((byteCount * 8 - 1) / 5 + 1);
    }

    /// <summary>
    /// The byte count a text of <paramref name="charCount"/> characters decodes to, or -1 when no byte
    /// count encodes to exactly that many characters.
    /// </summary>
    public static int GetDecodedLength(int charCount)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(charCount);
        var bytes = (int)((long)charCount * 5 / 8);
        return GetEncodedLength(bytes) == charCount ? bytes : -1;
    }

    public static bool IsDigit(char c) => c < 128 && DigitOf[c] >= 0;

    public static string Encode(ReadOnlySpan<byte> bytes)
    {
        var length = GetEncodedLength(bytes.Length);
        if (length == 0)
            return "";
        var text = length <= 256 ? stackalloc char[length] : new char[length];
        Encode(bytes, text);
        return new string(text);
    }

    /// <summary>Writes exactly <see cref="GetEncodedLength"/> characters to <paramref name="destination"/>.</summary>
    public static void Encode(ReadOnlySpan<byte> bytes, Span<char> destination)
    {
        var length = GetEncodedLength(bytes.Length);
        if (destination.Length < length)
            throw new ArgumentException($"destination holds {destination.Length} characters, {length} needed", nameof(destination));
        for (var n = length - 1; n >= 0; n--)
        {
            var bit = n * 5;
            var i = bit / 8;
            var j = bit % 8;
            var value = bytes[i] >> j;
            if (i + 1 < bytes.Length)
                value |= bytes[i + 1] << (8 - j);
            destination[length - 1 - n] = Alphabet[value & 0x1f];
        }
    }

    public static byte[] Decode(ReadOnlySpan<char> text)
    {
        var length = GetDecodedLength(text.Length);
        if (length < 0)
            throw new Nix32FormatException($"nix32 text of {text.Length} characters has no valid byte length");
        var bytes = new byte[length];
        Decode(text, bytes);
        return bytes;
    }

    /// <summary>Decodes into <paramref name="destination"/>, which must be exactly the decoded length.</summary>
    public static void Decode(ReadOnlySpan<char> text, Span<byte> destination)
    {
        if (!TryDecode(text, destination, out var error))
            throw new Nix32FormatException(error);
    }

    public static bool TryDecode(ReadOnlySpan<char> text, Span<byte> destination) => TryDecode(text, destination, out _);

    private static bool TryDecode(ReadOnlySpan<char> text, Span<byte> destination, out string error)
    {
        if (GetDecodedLength(text.Length) != destination.Length)
        {
            error = $"nix32 text of {text.Length} characters does not decode to {destination.Length} bytes";
            return false;
        }
        destination.Clear();
        for (var n = 0; n < text.Length; n++)
        {
            var c = text[text.Length - 1 - n];
            var digit = c < 128 ? DigitOf[c] : -1;
            if (digit < 0)
            {
                error = $"invalid nix32 character '{c}' at offset {text.Length - 1 - n}";
                return false;
            }
            var bit = n * 5;
            var i = bit / 8;
            var j = bit % 8;
            destination[i] |= (byte)(digit << j);
            var carry = digit >> (8 - j);
            if (i + 1 < destination.Length)
                destination[i + 1] |= (byte)carry;
            else if (carry != 0)
            {
                // Nix rejects a leading digit whose high bits fall beyond the last byte ("invalid base-32 hash").
                error = $"nix32 character '{c}' at offset {text.Length - 1 - n} sets bits beyond the last byte";
                return false;
            }
        }
        error = "";
        return true;
    }

    private static sbyte[] BuildDigitTable()
    {
        var table = new sbyte[128];
        Array.Fill(table, (sbyte)-1);
        for (var i = 0; i < Alphabet.Length; i++)
            table[Alphabet[i]] = (sbyte)i;
        return table;
    }
}

/// <summary>Text that is not valid nix32 for the requested length.</summary>
public sealed class Nix32FormatException(string message) : FormatException(message);
