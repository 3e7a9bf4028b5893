namespace LazyStore.Nix;

/// <summary>
/// Strict RFC 4648 base64 with padding, as Nix prints it. Nix's own decoder is looser (it skips
/// newlines and stops at the first '='); this one takes only canonical text, whitespace included
/// in what it rejects, so a key or signature has a single spelling.
/// </summary>
internal static class Base64
{
    public static int GetEncodedLength(int byteCount) => (byteCount + 2) / 3 * 4;

    /// <summary>True when <paramref name="text"/> is canonical base64 of exactly <c>destination.Length</c> bytes.</summary>
    public static bool TryDecodeExact(ReadOnlySpan<char> text, Span<byte> destination)
    {
        if (text.Length != GetEncodedLength(destination.Length))
            return false;
        if (!IsAlphabet(text))
            return false;
        if (!Convert.TryFromBase64Chars(text, destination, out var written) || written != destination.Length)
            return false;
        // Reject non-zero bits hidden in the last character before the padding.
        Span<char> again = stackalloc char[text.Length];
        return Convert.TryToBase64Chars(destination, again, out var charsWritten)
            && text.SequenceEqual(again[..charsWritten]);
    }

    /// <summary>True when every character is a base64 digit or padding.</summary>
    public static bool IsAlphabet(ReadOnlySpan<char> text)
    {
        foreach (var c in text)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c == '+' || c == '/' || c == '='))
                return false;
        }
        return true;
    }

    /// <summary>How many bytes <paramref name="text"/> decodes to, or null when it is not base64 at all.</summary>
    public static int? DecodedLength(ReadOnlySpan<char> text)
    {
        if (!IsAlphabet(text))
            return null;
        var buffer = new byte[text.Length];
        return Convert.TryFromBase64Chars(text, buffer, out var written) ? written : null;
    }
}
