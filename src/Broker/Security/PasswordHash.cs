using System.Security.Cryptography;

namespace Broker.Security;

/// <summary>The two hash formats of Mosquitto's password file, by the number between the first two '$'.</summary>
internal enum PasswordHashKind
{
    /// <summary><c>$6$salt$hash</c>: SHA-512 of password followed by salt (Mosquitto 1.x).</summary>
    Sha512 = 6,

    /// <summary><c>$7$iterations$salt$hash</c>: PBKDF2-HMAC-SHA512 (Mosquitto 2.x default).</summary>
    Sha512Pbkdf2 = 7,
}

/// <summary>
/// One password hash in Mosquitto's encoding (salt and hash in standard base64), verified and created with
/// the .NET cryptography library. Mosquitto hashes the password bytes exactly as the client sends them in
/// CONNECT, so does this class: no normalisation, no trimming.
/// </summary>
internal sealed class PasswordHash
{
    /// <summary>
    /// Iterations written by <c>passwd</c>. Mosquitto's own default is 101, which lets a stolen password file be
    /// guessed at millions of candidates per second per core. 100,000 makes every guess 1,000 times dearer while a
    /// first verification stays near 50 ms on one core (measured; docs/security.md): a broker restart with N
    /// distinct users costs about N x 50 ms of CPU once, then the verification cache answers. Mosquitto reads the
    /// count from the file, so it verifies these hashes too (tested against the real broker).
    /// </summary>
    public const int DefaultIterations = 100_000;

    /// <summary>Beyond this a single file line could cost seconds of CPU per CONNECT; such a file is refused.</summary>
    public const int MaxIterations = 10_000_000;

    /// <summary>Salt bytes written, as mosquitto_passwd does (16 base64 characters).</summary>
    public const int SaltLength = 12;

    /// <summary>SHA-512 output; both formats store exactly this many bytes.</summary>
    public const int HashLength = 64;

    private readonly byte[] _salt;
    private readonly byte[] _hash;

    private PasswordHash(PasswordHashKind kind, int iterations, byte[] salt, byte[] hash)
    {
        Kind = kind;
        Iterations = iterations;
        _salt = salt;
        _hash = hash;
    }

    public PasswordHashKind Kind { get; }

    /// <summary>PBKDF2 iterations; 1 for <see cref="PasswordHashKind.Sha512"/> (a single digest).</summary>
    public int Iterations { get; }

    /// <summary>Parses the part after "user:". The error names what is wrong, never the hash itself.</summary>
    public static bool TryParse(ReadOnlySpan<char> encoded, out PasswordHash? hash, out string? error)
    {
        hash = null;
        // "$7$101$salt$hash" splits into "", "7", "101", "salt", "hash"; "$6$salt$hash" into "", "6", "salt", "hash".
        Span<Range> parts = stackalloc Range[6];
        int count = encoded.Split(parts, '$');
        if (count < 4 || encoded[parts[0]].Length != 0)
        {
            error = "not a Mosquitto password hash ($7$iterations$salt$hash or $6$salt$hash); plain-text passwords are not accepted";
            return false;
        }

        var kind = encoded[parts[1]];
        int iterations;
        int saltIndex;
        PasswordHashKind parsedKind;
        if (kind is "7" && count == 5)
        {
            if (!int.TryParse(encoded[parts[2]], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out iterations)
                || iterations < 1 || iterations > MaxIterations)
            {
                error = $"the iteration count must be a number between 1 and {MaxIterations}";
                return false;
            }
            parsedKind = PasswordHashKind.Sha512Pbkdf2;
            saltIndex = 3;
        }
        else if (kind is "6" && count == 4)
        {
            iterations = 1;
            parsedKind = PasswordHashKind.Sha512;
            saltIndex = 2;
        }
        else
        {
            error = "unknown hash type (expected $7$iterations$salt$hash or $6$salt$hash)";
            return false;
        }

        if (!TryDecode(encoded[parts[saltIndex]], out byte[]? salt) || salt.Length == 0)
        {
            error = "the salt is not valid base64";
            return false;
        }
        if (!TryDecode(encoded[parts[saltIndex + 1]], out byte[]? digest) || digest.Length != HashLength)
        {
            error = $"the hash is not {HashLength} bytes of base64";
            return false;
        }

        hash = new PasswordHash(parsedKind, iterations, salt, digest);
        error = null;
        return true;
    }

    /// <summary>A new PBKDF2-SHA512 hash with a random salt, in the format Mosquitto 2 writes.</summary>
    public static PasswordHash Create(ReadOnlySpan<byte> password, int iterations = DefaultIterations)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(iterations, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(iterations, MaxIterations);
        byte[] salt = RandomNumberGenerator.GetBytes(SaltLength);
        byte[] digest = Rfc2898DeriveBytes.Pbkdf2(password, salt, iterations, HashAlgorithmName.SHA512, HashLength);
        return new PasswordHash(PasswordHashKind.Sha512Pbkdf2, iterations, salt, digest);
    }

    /// <summary>
    /// Costs one full hash computation (for PBKDF2 this is the expensive part: callers cache successes and
    /// run it off the connection's path). The comparison takes the same time wherever the bytes differ.
    /// </summary>
    public bool Verify(ReadOnlySpan<byte> password)
    {
        Span<byte> computed = stackalloc byte[HashLength];
        if (Kind == PasswordHashKind.Sha512Pbkdf2)
        {
            Rfc2898DeriveBytes.Pbkdf2(password, _salt, computed, Iterations, HashAlgorithmName.SHA512);
        }
        else
        {
            using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA512);
            sha.AppendData(password);
            sha.AppendData(_salt);
            sha.GetHashAndReset(computed);
        }
        bool equal = CryptographicOperations.FixedTimeEquals(computed, _hash);
        CryptographicOperations.ZeroMemory(computed);
        return equal;
    }

    /// <summary>The text after "user:" in the password file.</summary>
    public string Encode() => Kind == PasswordHashKind.Sha512Pbkdf2
        ? $"$7${Iterations}${Convert.ToBase64String(_salt)}${Convert.ToBase64String(_hash)}"
        : $"$6${Convert.ToBase64String(_salt)}${Convert.ToBase64String(_hash)}";

    /// <summary>Never the hash: this object ends up in debugger views and log arguments.</summary>
    public override string ToString() => Kind == PasswordHashKind.Sha512Pbkdf2 ? $"PBKDF2-SHA512 ({Iterations} iterations)" : "SHA-512";

    private static bool TryDecode(ReadOnlySpan<char> base64, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out byte[]? bytes)
    {
        var buffer = new byte[base64.Length * 3 / 4 + 3];
        if (Convert.TryFromBase64Chars(base64, buffer, out int written))
        {
            bytes = buffer.AsSpan(0, written).ToArray();
            return true;
        }
        bytes = null;
        return false;
    }
}
