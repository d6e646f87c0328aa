using Broker.Protocol;

namespace Broker.Security;

[Flags]
internal enum AclAccess : byte
{
    /// <summary>Only on deny rules: they match any operation.</summary>
    None = 0,
    Read = 1,
    Write = 2,
    ReadWrite = Read | Write,
}

/// <summary>One <c>topic</c> or <c>pattern</c> line. A deny rule refuses whatever it matches, read or write.</summary>
internal readonly record struct AclRule(string Filter, AclAccess Access, bool IsDeny)
{
    public override string ToString() => $"{(IsDeny ? "deny" : Access.ToString().ToLowerInvariant())} {Filter}";
}

/// <summary>
/// The rules that apply to one user (or to anonymous clients), split the way they are evaluated: every deny rule
/// before any grant, as Mosquitto 2 does ("deny topics are handled before topics that grant read/write access").
/// </summary>
internal sealed class AclRuleSet
{
    public static readonly AclRuleSet Empty = new([]);

    public AclRuleSet(IEnumerable<AclRule> rules)
    {
        Deny = rules.Where(r => r.IsDeny).ToArray();
        Grant = rules.Where(r => !r.IsDeny).ToArray();
    }

    public AclRule[] Deny { get; }

    public AclRule[] Grant { get; }

    public bool IsEmpty => Deny.Length == 0 && Grant.Length == 0;
}

/// <summary>
/// Mosquitto's <c>acl_file</c>:
/// <code>
/// # comment
/// topic [read|write|readwrite|deny] FILTER     rules before any "user" line: anonymous clients
/// user NAME                                    rules after it: that user (the CONNECT user name)
/// pattern [read|write|readwrite|deny] FILTER   every client, with %u = user name, %c = client id
/// </code>
/// Without an access word the access is readwrite. The filter is the rest of the line, so it may contain spaces.
/// Unlike Mosquitto, which skips lines it does not understand, an unknown keyword, an unknown access word or an
/// invalid filter stops loading with the line number: a typo in an ACL silently grants or denies.
/// </summary>
internal sealed class AclFile
{
    private readonly Dictionary<string, AclRuleSet> _users;

    private AclFile(AclRuleSet anonymous, Dictionary<string, AclRuleSet> users, AclRule[] patterns)
    {
        Anonymous = anonymous;
        _users = users;
        Patterns = patterns;
    }

    public AclRuleSet Anonymous { get; }

    /// <summary>In file order; split into deny and grant per client once %u and %c are substituted.</summary>
    public AclRule[] Patterns { get; }

    public IEnumerable<string> UserNames => _users.Keys;

    /// <summary>The user's own rules; <see cref="AclRuleSet.Empty"/> for a user without a "user" section.</summary>
    public AclRuleSet RulesOf(string? userName) =>
        userName is null ? Anonymous : _users.GetValueOrDefault(userName, AclRuleSet.Empty);

    public static AclFile Load(string path)
    {
        using var reader = new StreamReader(path, System.Text.Encoding.UTF8, detectEncodingFromByteOrderMarks: true);
        return Parse(reader, path);
    }

    /// <exception cref="SecurityFileException">A line cannot be understood.</exception>
    public static AclFile Parse(TextReader reader, string source)
    {
        var anonymous = new List<AclRule>();
        var users = new Dictionary<string, List<AclRule>>(StringComparer.Ordinal);
        var patterns = new List<AclRule>();
        List<AclRule> current = anonymous;
        int lineNumber = 0;
        while (reader.ReadLine() is { } line)
        {
            lineNumber++;
            var text = line.AsSpan().Trim();
            if (text.IsEmpty || text[0] == '#')
            {
                continue;
            }
            var keyword = NextToken(ref text);
            if (keyword is "user")
            {
                if (text.IsEmpty)
                {
                    throw new SecurityFileException(source, lineNumber, "'user' needs a user name");
                }
                string name = text.ToString();
                if (!users.TryGetValue(name, out var rules))
                {
                    // A user may appear in several sections; the rules add up, as in Mosquitto.
                    users[name] = rules = [];
                }
                current = rules;
            }
            else if (keyword is "topic" or "pattern")
            {
                var rule = ParseRule(keyword.ToString(), text, source, lineNumber);
                (keyword is "topic" ? current : patterns).Add(rule);
            }
            else
            {
                throw new SecurityFileException(source, lineNumber, $"unknown keyword '{keyword}' (expected topic, pattern or user)");
            }
        }
        return new AclFile(
            new AclRuleSet(anonymous),
            users.ToDictionary(u => u.Key, u => new AclRuleSet(u.Value), StringComparer.Ordinal),
            patterns.ToArray());
    }

    private static AclRule ParseRule(string keyword, ReadOnlySpan<char> rest, string source, int lineNumber)
    {
        var first = NextToken(ref rest);
        if (first.IsEmpty)
        {
            throw new SecurityFileException(source, lineNumber, $"'{keyword}' needs a topic filter");
        }
        AclAccess access;
        bool deny = false;
        ReadOnlySpan<char> filter = rest;
        if (rest.IsEmpty)
        {
            // One word only: it is the filter, with readwrite access (Mosquitto's reading of "topic foo").
            filter = first;
            access = AclAccess.ReadWrite;
        }
        else
        {
            filter = rest;
            switch (first)
            {
                case "read":
                    access = AclAccess.Read;
                    break;
                case "write":
                    access = AclAccess.Write;
                    break;
                case "readwrite":
                    access = AclAccess.ReadWrite;
                    break;
                case "deny":
                    access = AclAccess.None;
                    deny = true;
                    break;
                default:
                    throw new SecurityFileException(source, lineNumber, $"unknown access '{first}' (expected read, write, readwrite or deny)");
            }
        }
        if (!TopicRules.IsValidTopicFilter(filter))
        {
            throw new SecurityFileException(source, lineNumber, $"'{filter}' is not a valid topic filter");
        }
        return new AclRule(filter.ToString(), access, deny);
    }

    private static ReadOnlySpan<char> NextToken(scoped ref ReadOnlySpan<char> text)
    {
        int end = text.IndexOfAny(' ', '\t');
        ReadOnlySpan<char> token;
        if (end < 0)
        {
            token = text;
            text = default;
        }
        else
        {
            token = text[..end];
            text = text[end..].TrimStart(" \t");
        }
        return token;
    }
}
