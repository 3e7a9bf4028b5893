using System.Runtime.InteropServices;
using System.Security.Cryptography;
using Microsoft.Win32.SafeHandles;

namespace LazyStore.Nix.Interop;

/// <summary>
/// OpenSSL 3's libcrypto (Debian libssl3, always present because .NET itself loads it), limited to
/// what ed25519 signing and verification need. Names are OpenSSL's C names.
/// </summary>
internal static partial class LibCrypto
{
    private const string Library = "libcrypto.so.3";

    /// <summary><c>EVP_PKEY_ED25519</c> = <c>NID_ED25519</c> in OpenSSL's <c>obj_mac.h</c>.</summary>
    internal const int EVP_PKEY_ED25519 = 1087;

    [LibraryImport(Library)]
    internal static partial EvpPKeyHandle EVP_PKEY_new_raw_public_key(int type, IntPtr engine, ReadOnlySpan<byte> key, nuint keyLength);

    [LibraryImport(Library)]
    internal static partial EvpPKeyHandle EVP_PKEY_new_raw_private_key(int type, IntPtr engine, ReadOnlySpan<byte> key, nuint keyLength);

    [LibraryImport(Library)]
    internal static partial int EVP_PKEY_get_raw_public_key(EvpPKeyHandle key, Span<byte> publicKey, ref nuint length);

    [LibraryImport(Library)]
    internal static partial void EVP_PKEY_free(IntPtr key);

    [LibraryImport(Library)]
    internal static partial EvpMdContextHandle EVP_MD_CTX_new();

    [LibraryImport(Library)]
    internal static partial void EVP_MD_CTX_free(IntPtr context);

    [LibraryImport(Library)]
    internal static partial int EVP_DigestSignInit(EvpMdContextHandle context, IntPtr keyContext, IntPtr digest, IntPtr engine, EvpPKeyHandle key);

    [LibraryImport(Library)]
    internal static partial int EVP_DigestSign(EvpMdContextHandle context, Span<byte> signature, ref nuint signatureLength, ReadOnlySpan<byte> data, nuint dataLength);

    [LibraryImport(Library)]
    internal static partial int EVP_DigestVerifyInit(EvpMdContextHandle context, IntPtr keyContext, IntPtr digest, IntPtr engine, EvpPKeyHandle key);

    [LibraryImport(Library)]
    internal static partial int EVP_DigestVerify(EvpMdContextHandle context, ReadOnlySpan<byte> signature, nuint signatureLength, ReadOnlySpan<byte> data, nuint dataLength);

    [LibraryImport(Library)]
    internal static partial nuint ERR_get_error();

    [LibraryImport(Library)]
    internal static unsafe partial void ERR_error_string_n(nuint error, byte* buffer, nuint length);

    [LibraryImport(Library)]
    internal static partial void ERR_clear_error();

    /// <summary>
    /// The one place OpenSSL failures become exceptions: takes the first queued error (the root cause),
    /// clears the thread's queue so it cannot leak into a later call, and names the failed operation.
    /// </summary>
    internal static CryptographicException CreateError(string operation)
    {
        var code = ERR_get_error();
        var detail = code == 0 ? "no error queued" : ErrorString(code);
        ERR_clear_error();
        return new CryptographicException($"OpenSSL {operation} failed: {detail}");
    }

    internal static void ThrowIfFailed(int result, string operation)
    {
        if (result != 1)
            throw CreateError(operation);
    }

    internal static T ThrowIfInvalid<T>(T handle, string operation) where T : SafeHandle
    {
        if (handle.IsInvalid)
        {
            handle.Dispose();
            throw CreateError(operation);
        }
        return handle;
    }

    private static unsafe string ErrorString(nuint code)
    {
        // OpenSSL documents 256 bytes as enough for any error string.
        var buffer = stackalloc byte[256];
        ERR_error_string_n(code, buffer, 256);
        return Marshal.PtrToStringUTF8((IntPtr)buffer) ?? $"error 0x{code:x}";
    }
}

/// <summary>Owns an OpenSSL <c>EVP_PKEY*</c>.</summary>
internal sealed class EvpPKeyHandle : SafeHandleZeroOrMinusOneIsInvalid
{
    public EvpPKeyHandle()
        : base(ownsHandle: true)
    {
    }

    protected override bool ReleaseHandle()
    {
        LibCrypto.EVP_PKEY_free(handle);
        return true;
    }
}

/// <summary>Owns an OpenSSL <c>EVP_MD_CTX*</c>.</summary>
internal sealed class EvpMdContextHandle : SafeHandleZeroOrMinusOneIsInvalid
{
    public EvpMdContextHandle()
        : base(ownsHandle: true)
    {
    }

    protected override bool ReleaseHandle()
    {
        LibCrypto.EVP_MD_CTX_free(handle);
        return true;
    }
}

/// <summary>
/// Pure ed25519 (RFC 8032, no pre-hash: the digest argument is NULL) over libcrypto, with keys in
/// raw form: the 32-byte seed libsodium calls the first half of its secret key, and the 32-byte public key.
/// </summary>
internal static class Ed25519
{
    public const int SeedLength = 32;
    public const int PublicKeyLength = 32;
    public const int SignatureLength = 64;

    public static byte[] DerivePublicKey(ReadOnlySpan<byte> seed)
    {
        using var key = PrivateKey(seed);
        var publicKey = new byte[PublicKeyLength];
        nuint length = PublicKeyLength;
        LibCrypto.ThrowIfFailed(LibCrypto.EVP_PKEY_get_raw_public_key(key, publicKey, ref length), "EVP_PKEY_get_raw_public_key");
        if (length != PublicKeyLength)
            throw new CryptographicException($"OpenSSL returned a {length}-byte ed25519 public key");
        return publicKey;
    }

    public static byte[] Sign(ReadOnlySpan<byte> seed, ReadOnlySpan<byte> data)
    {
        using var key = PrivateKey(seed);
        using var context = LibCrypto.ThrowIfInvalid(LibCrypto.EVP_MD_CTX_new(), "EVP_MD_CTX_new");
        LibCrypto.ThrowIfFailed(LibCrypto.EVP_DigestSignInit(context, IntPtr.Zero, IntPtr.Zero, IntPtr.Zero, key), "EVP_DigestSignInit");
        var signature = new byte[SignatureLength];
        nuint length = SignatureLength;
        LibCrypto.ThrowIfFailed(LibCrypto.EVP_DigestSign(context, signature, ref length, data, (nuint)data.Length), "EVP_DigestSign");
        if (length != SignatureLength)
            throw new CryptographicException($"OpenSSL returned a {length}-byte ed25519 signature");
        return signature;
    }

    public static bool Verify(ReadOnlySpan<byte> publicKey, ReadOnlySpan<byte> data, ReadOnlySpan<byte> signature)
    {
        if (publicKey.Length != PublicKeyLength)
            throw new ArgumentException($"an ed25519 public key is {PublicKeyLength} bytes", nameof(publicKey));
        if (signature.Length != SignatureLength)
            return false;
        using var key = LibCrypto.ThrowIfInvalid(
            LibCrypto.EVP_PKEY_new_raw_public_key(LibCrypto.EVP_PKEY_ED25519, IntPtr.Zero, publicKey, (nuint)publicKey.Length),
            "EVP_PKEY_new_raw_public_key");
        using var context = LibCrypto.ThrowIfInvalid(LibCrypto.EVP_MD_CTX_new(), "EVP_MD_CTX_new");
        LibCrypto.ThrowIfFailed(LibCrypto.EVP_DigestVerifyInit(context, IntPtr.Zero, IntPtr.Zero, IntPtr.Zero, key), "EVP_DigestVerifyInit");
        var result = LibCrypto.EVP_DigestVerify(context, signature, (nuint)signature.Length, data, (nuint)data.Length);
        switch (result)
        {
            case 1:
                return true;
            case 0:
                // A mismatch is an answer, not a failure; drop what OpenSSL queued for it.
                LibCrypto.ERR_clear_error();
                return false;
            default:
                throw LibCrypto.CreateError("EVP_DigestVerify");
        }
    }

    private static EvpPKeyHandle PrivateKey(ReadOnlySpan<byte> seed)
    {
        if (seed.Length != SeedLength)
            throw new ArgumentException($"an ed25519 seed is {SeedLength} bytes", nameof(seed));
        return LibCrypto.ThrowIfInvalid(
            LibCrypto.EVP_PKEY_new_raw_private_key(LibCrypto.EVP_PKEY_ED25519, IntPtr.Zero, seed, (nuint)seed.Length),
            "EVP_PKEY_new_raw_private_key");
    }
}
