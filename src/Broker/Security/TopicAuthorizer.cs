using System.Text;
using Broker.Protocol;
using Broker.Routing;
using Microsoft.Extensions.Logging;

namespace Broker.Security;

/// <summary>
/// Topic authorisation (docs/security.md, "Authorization"): the ACL file when one is configured, and always the
/// rule that clients cannot publish to $SYS. The connection asks <see cref="ForClient"/> once at CONNECT and keeps
/// the <see cref="ClientPermissions"/> with the session; every later check goes through that object.
/// </summary>
internal sealed class TopicAuthorizer : IDisposable
{
    private static readonly TimeSpan FileCheckInterval = TimeSpan.FromSeconds(1);

    private readonly WatchedFile<AclFile>? _acl;
    // Without an ACL the permissions of every client are the same: one shared object, nothing per client.
    private readonly ClientPermissions? _unrestricted;

    public TopicAuthorizer(AuthOptions options, TimeProvider time, ILogger<TopicAuthorizer> logger, SecurityMetrics metrics, bool watchFiles = true)
    {
        Logger = logger;
        Metrics = metrics;
        if (options.HasAclFile)
        {
            string path = options.AclFile!;
            _acl = new WatchedFile<AclFile>([path], () => AclFile.Load(path), time, logger,
                AuthOptions.SectionName + ":" + nameof(AuthOptions.AclFile), FileCheckInterval, watchFiles);
        }
        else
        {
            _unrestricted = new ClientPermissions(this, null, string.Empty);
        }
    }

    /// <summary>False: no ACL file, every topic may be read and subscribed, and written except $SYS.</summary>
    public bool HasAcl => _acl is not null;

    internal ILogger Logger { get; }

    internal SecurityMetrics Metrics { get; }

    /// <summary>Changes with every ACL reload; permissions compare it on each check (one volatile read).</summary>
    internal long Version => _acl?.Version ?? 0;

    internal AclFile? Acl => _acl?.Current;

    internal bool ReloadIfChanged() => _acl?.CheckNow() ?? false;

    /// <summary>
    /// The permissions of an authenticated client (<paramref name="userName"/> null for anonymous). Without an ACL
    /// one shared object (its <see cref="ClientPermissions.UserName"/> and <see cref="ClientPermissions.ClientId"/>
    /// are then not the client's); with one, substitutes %u and %c into the patterns once for this client.
    /// </summary>
    public ClientPermissions ForClient(string? userName, string clientId)
    {
        if (_unrestricted is { } shared)
        {
            return shared;
        }
        _acl!.CheckIfDue();
        return new ClientPermissions(this, userName, clientId);
    }

    /// <summary>One-off checks (tests, tools); a connection keeps its <see cref="ClientPermissions"/> instead.</summary>
    public bool CanPublish(string? userName, string clientId, ReadOnlySpan<char> topic) => ForClient(userName, clientId).CanPublish(topic);

    public bool CanSubscribe(string? userName, string clientId, ReadOnlySpan<char> filter) => ForClient(userName, clientId).CanSubscribe(filter);

    public bool CanReceive(string? userName, string clientId, ReadOnlySpan<char> topic) => ForClient(userName, clientId).CanReceive(topic);

    public void Dispose() => _acl?.Dispose();
}

/// <summary>
/// What one client may do, evaluated like Mosquitto 2's acl_file: first the client's own rules (its "user"
/// section, or the anonymous section), deny rules before grants; if none matched, the patterns with %u and %c
/// substituted, again deny before grant; if still none matched, denied. Checks do not allocate: after an ACL
/// reload the next check recompiles once.
/// </summary>
internal sealed class ClientPermissions : ITopicPermissions
{
    private readonly TopicAuthorizer _authorizer;
    private Compiled? _compiled;

    internal ClientPermissions(TopicAuthorizer authorizer, string? userName, string clientId)
    {
        _authorizer = authorizer;
        UserName = userName;
        ClientId = clientId;
        if (authorizer.HasAcl)
        {
            _compiled = Compile();
        }
    }

    public string? UserName { get; }

    public string ClientId { get; }

    /// <summary>No ACL: every subscription and delivery is allowed, so callers may skip <see cref="CanReceive"/>.</summary>
    public bool IsUnrestricted => !_authorizer.HasAcl;

    /// <summary>
    /// PUBLISH, a retained PUBLISH and the will (checked at CONNECT and again when it is published): write access
    /// to the topic name, and never $SYS.
    /// </summary>
    public bool CanPublish(ReadOnlySpan<char> topic)
    {
        if (Diagnostics.SysTopicRules.IsReserved(topic) || (_authorizer.HasAcl && !Allows(Current(), topic, AclAccess.Write)))
        {
            _authorizer.Metrics.AclDenied(AclAction.Publish);
            return false;
        }
        return true;
    }

    /// <summary>
    /// Delivery of one message (also retained messages sent at SUBSCRIBE and queued messages of a resumed
    /// session): read access to its topic name. This is the check that decides what a client sees.
    /// </summary>
    public bool CanReceive(ReadOnlySpan<char> topic)
    {
        if (!_authorizer.HasAcl || Allows(Current(), topic, AclAccess.Read))
        {
            return true;
        }
        _authorizer.Metrics.AclDenied(AclAction.Receive);
        return false;
    }

    /// <summary>
    /// A SUBSCRIBE filter ($share/name/ removed). Mosquitto accepts every subscription and filters at delivery;
    /// this refuses the filters that could never deliver anything: those a deny rule covers entirely, and those no
    /// read grant overlaps, stage by stage as for messages. A broader filter that partly overlaps a grant is
    /// accepted and <see cref="CanReceive"/> filters its messages ("#" with read access to "a/#" receives a/...).
    /// </summary>
    public bool CanSubscribe(ReadOnlySpan<char> filter)
    {
        if (!_authorizer.HasAcl)
        {
            return true;
        }
        if (TopicRules.IsSharedSubscription(filter))
        {
            var rest = filter[TopicRules.SharePrefix.Length..];
            int slash = rest.IndexOf('/');
            filter = slash < 0 ? rest : rest[(slash + 1)..];
        }
        var compiled = Current();
        var decision = SubscribeDecision(compiled.Own, filter);
        if (decision == 0)
        {
            decision = SubscribeDecision(compiled.Patterns, filter);
        }
        if (decision > 0)
        {
            return true;
        }
        _authorizer.Metrics.AclDenied(AclAction.Subscribe);
        return false;
    }

    private Compiled Current()
    {
        var compiled = Volatile.Read(ref _compiled)!;
        if (compiled.Version != _authorizer.Version)
        {
            compiled = Compile();
            Volatile.Write(ref _compiled, compiled);
        }
        return compiled;
    }

    private static bool Allows(Compiled compiled, ReadOnlySpan<char> topic, AclAccess access)
    {
        int decision = TopicDecision(compiled.Own, topic, access);
        if (decision == 0)
        {
            decision = TopicDecision(compiled.Patterns, topic, access);
        }
        return decision > 0;
    }

    /// <returns>-1 denied, 1 granted, 0 no rule of this set matched.</returns>
    private static int TopicDecision(AclRuleSet rules, ReadOnlySpan<char> topic, AclAccess access)
    {
        foreach (ref readonly var rule in rules.Deny.AsSpan())
        {
            if (TopicMatcher.Matches(rule.Filter, topic))
            {
                return -1;
            }
        }
        foreach (ref readonly var rule in rules.Grant.AsSpan())
        {
            if ((rule.Access & access) != 0 && TopicMatcher.Matches(rule.Filter, topic))
            {
                return 1;
            }
        }
        return 0;
    }

    private static int SubscribeDecision(AclRuleSet rules, ReadOnlySpan<char> filter)
    {
        foreach (ref readonly var rule in rules.Deny.AsSpan())
        {
            if (AclFilters.Covers(rule.Filter, filter))
            {
                return -1;
            }
        }
        foreach (ref readonly var rule in rules.Grant.AsSpan())
        {
            if ((rule.Access & AclAccess.Read) != 0 && AclFilters.Intersect(rule.Filter, filter))
            {
                return 1;
            }
        }
        return 0;
    }

    private Compiled Compile()
    {
        long version = _authorizer.Version;
        var acl = _authorizer.Acl!;
        return new Compiled(version, acl.RulesOf(UserName), CompilePatterns(acl.Patterns));
    }

    private AclRuleSet CompilePatterns(AclRule[] patterns)
    {
        if (patterns.Length == 0)
        {
            return AclRuleSet.Empty;
        }
        // Substituting a name with a wildcard or a level separator would widen the rule ("%u" = "#"), so such
        // clients get no pattern rules at all, as in Mosquitto.
        if (ClientId.AsSpan().IndexOfAny("+#/") >= 0 || (UserName is not null && UserName.AsSpan().IndexOfAny("+#/") >= 0))
        {
            SecurityLog.DangerousNameForPatterns(_authorizer.Logger, ClientId, UserName);
            return AclRuleSet.Empty;
        }
        var rules = new List<AclRule>(patterns.Length);
        foreach (var pattern in patterns)
        {
            if (UserName is null && pattern.Filter.Contains("%u", StringComparison.Ordinal))
            {
                continue; // Mosquitto skips %u patterns for clients without a user name.
            }
            rules.Add(pattern with { Filter = Substitute(pattern.Filter, UserName, ClientId) });
        }
        return new AclRuleSet(rules);
    }

    /// <summary>One pass, so a client id containing "%u" is not substituted again.</summary>
    internal static string Substitute(string filter, string? userName, string clientId)
    {
        if (!filter.Contains('%'))
        {
            return filter;
        }
        var text = new StringBuilder(filter.Length + clientId.Length);
        for (int i = 0; i < filter.Length; i++)
        {
            if (filter[i] == '%' && i + 1 < filter.Length)
            {
                if (filter[i + 1] == 'c')
                {
                    text.Append(clientId);
                    i++;
                    continue;
                }
                if (filter[i + 1] == 'u' && userName is not null)
                {
                    text.Append(userName);
                    i++;
                    continue;
                }
            }
            text.Append(filter[i]);
        }
        return text.ToString();
    }

    private sealed record Compiled(long Version, AclRuleSet Own, AclRuleSet Patterns);
}
