namespace Broker.Security;

/// <summary>
/// Mosquitto's password file: one <c>user:hash</c> per line, the user name ending at the first ':'. Blank lines
/// and lines starting with '#' are skipped. A malformed line stops loading with its line number (and never its
/// hash): a half-read file would lock users out without saying why.
/// </summary>
internal sealed class PasswordFile
{
    private static readonly Lazy<PasswordHash> DefaultDecoy = new(() => PasswordHash.Create("decoy"u8));

    private readonly Dictionary<string, PasswordHash> _users;

    private PasswordFile(Dictionary<string, PasswordHash> users) => _users = users;

    public int Count => _users.Count;

    public IEnumerable<string> UserNames => _users.Keys;

    /// <summary>
    /// The hash used to spend the same time on an unknown user as on a known one (so response times do not
    /// tell which user names exist): the parameters of the file's first user, else a default PBKDF2 hash.
    /// </summary>
    public PasswordHash Decoy { get; private init; } = DefaultDecoy.Value;

    public bool TryGetHash(string userName, out PasswordHash? hash) => _users.TryGetValue(userName, out hash);

    public static PasswordFile Load(string path)
    {
        using var reader = new StreamReader(path, System.Text.Encoding.UTF8, detectEncodingFromByteOrderMarks: true);
        return Parse(reader, path);
    }

    /// <exception cref="SecurityFileException">A line is malformed or a user is listed twice.</exception>
    public static PasswordFile Parse(TextReader reader, string source)
    {
        var users = new Dictionary<string, PasswordHash>(StringComparer.Ordinal);
        PasswordHash? first = null;
        int lineNumber = 0;
        while (reader.ReadLine() is { } line)
        {
            lineNumber++;
            var text = line.AsSpan().TrimEnd("\r\n \t");
            if (text.IsEmpty || text[0] == '#')
            {
                continue;
            }
            if (!TrySplit(text, out var user, out var encoded))
            {
                throw new SecurityFileException(source, lineNumber, "expected user:hash");
            }
            if (!PasswordHash.TryParse(encoded, out var hash, out string? error))
            {
                throw new SecurityFileException(source, lineNumber, $"user '{user}': {error}");
            }
            if (!users.TryAdd(user, hash!))
            {
                throw new SecurityFileException(source, lineNumber, $"user '{user}' is listed twice");
            }
            first ??= hash;
        }
        return new PasswordFile(users) { Decoy = first ?? DefaultDecoy.Value };
    }

    /// <summary>Splits "user:hash"; false for a line without ':' or with an empty user name.</summary>
    internal static bool TrySplit(ReadOnlySpan<char> line, out string user, out ReadOnlySpan<char> encoded)
    {
        int colon = line.IndexOf(':');
        if (colon <= 0)
        {
            user = "";
            encoded = default;
            return false;
        }
        user = line[..colon].ToString();
        encoded = line[(colon + 1)..];
        return true;
    }
}

/// <summary>A security file (password, ACL, certificate) that cannot be used; the message names file and line.</summary>
internal sealed class SecurityFileException : Exception
{
    public SecurityFileException(string source, int line, string problem)
        : base($"{source} line {line}: {problem}")
    {
    }

    public SecurityFileException(string message, Exception? inner = null)
        : base(message, inner)
    {
    }
}
