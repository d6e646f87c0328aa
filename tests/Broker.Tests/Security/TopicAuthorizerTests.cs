using Broker.Security;
using Microsoft.Extensions.Time.Testing;
using Xunit;

namespace Broker.Tests.Security;

/// <summary>
/// The ACL semantics as tables: Mosquitto 2's acl_file evaluation for messages (publish = write, delivery = read;
/// own rules before patterns, deny before grant, nothing granted = denied), plus the subscribe-time refusal of
/// filters that could never deliver anything, and the $SYS rule that holds with or without an ACL.
/// </summary>
public sealed class TopicAuthorizerTests : IDisposable
{
    private const string Acl = """
        # anonymous clients: read the public tree, except its secret part
        topic read public/#
        topic deny public/secret/#

        user alice
        topic readwrite home/alice/#
        topic read sensors/#
        topic deny sensors/private/#
        topic write $SYS/broker/forbidden

        user bob
        topic write sensors/bob/#
        topic read $SYS/#

        user mallory
        topic deny devices/#

        pattern write devices/%c/status
        pattern readwrite users/%u/#
        pattern read devices/%c/commands
        """;

    private readonly TempDirectory _dir = new();
    private readonly TopicAuthorizer _authorizer;

    public TopicAuthorizerTests() => _authorizer = Create(_dir.Write("acl", Acl));

    public void Dispose()
    {
        _authorizer.Dispose();
        _dir.Dispose();
    }

    private static TopicAuthorizer Create(string? aclFile, FakeTimeProvider? time = null) =>
        new(new AuthOptions { AclFile = aclFile }, time ?? new FakeTimeProvider(), new ListLogger<TopicAuthorizer>(), new SecurityMetrics(), watchFiles: false);

    [Theory]
    // Own rules.
    [InlineData("alice", "c1", "home/alice/lights", true)]
    [InlineData("alice", "c1", "home/bob/lights", false)]
    [InlineData("alice", "c1", "sensors/x/temperature", false)] // read only
    [InlineData("bob", "c2", "sensors/bob/t", true)]
    [InlineData("bob", "c2", "sensors/alice/t", false)]
    // Patterns: %c is the client id, %u the user name, for everyone.
    [InlineData("alice", "dev-7", "devices/dev-7/status", true)]
    [InlineData("alice", "dev-7", "devices/dev-8/status", false)]
    [InlineData("carol", "dev-9", "devices/dev-9/status", true)] // no user section: only patterns
    [InlineData("carol", "dev-9", "users/carol/inbox", true)]
    [InlineData("carol", "dev-9", "users/alice/inbox", false)]
    [InlineData(null, "anon-1", "devices/anon-1/status", true)] // %c patterns apply to anonymous clients
    [InlineData(null, "anon-1", "users/anon-1/x", false)] // %u patterns do not
    // Own deny rules win over patterns.
    [InlineData("mallory", "dev-1", "devices/dev-1/status", false)]
    // Anonymous section grants read only.
    [InlineData(null, "anon-1", "public/news", false)]
    // $SYS is never writable by clients, whatever the ACL says.
    [InlineData("alice", "c1", "$SYS/broker/forbidden", false)]
    public void Publish_needs_write_access(string? user, string clientId, string topic, bool allowed) =>
        Assert.Equal(allowed, _authorizer.CanPublish(user, clientId, topic));

    [Theory]
    [InlineData("alice", "c1", "home/alice/lights", true)]
    [InlineData("alice", "c1", "sensors/kitchen/temperature", true)]
    [InlineData("alice", "c1", "sensors/private/camera", false)] // deny before grant, whatever the order in the file
    [InlineData("alice", "c1", "sensors/private", false)] // "#" also covers the parent level
    [InlineData("alice", "c1", "$SYS/broker/uptime", false)]
    [InlineData("bob", "c2", "$SYS/broker/uptime", true)]
    [InlineData("bob", "c2", "sensors/bob/t", false)] // write only
    [InlineData("alice", "dev-7", "devices/dev-7/commands", true)]
    [InlineData("alice", "dev-7", "devices/dev-8/commands", false)]
    [InlineData(null, "anon-1", "public/news", true)]
    [InlineData(null, "anon-1", "public/secret/plans", false)]
    [InlineData(null, "anon-1", "home/alice/lights", false)]
    [InlineData("carol", "c3", "public/news", false)] // the anonymous section is not for named users
    public void Delivery_needs_read_access(string? user, string clientId, string topic, bool allowed) =>
        Assert.Equal(allowed, _authorizer.CanReceive(user, clientId, topic));

    [Theory]
    [InlineData("alice", "c1", "sensors/#", true)]
    [InlineData("alice", "c1", "sensors/+/temperature", true)]
    [InlineData("alice", "c1", "#", true)] // overlaps grants: accepted, delivery filters each message
    [InlineData("alice", "c1", "sensors/private/#", false)] // entirely denied
    [InlineData("alice", "c1", "sensors/private/+/x", false)]
    [InlineData("alice", "c1", "other/#", false)] // no read grant overlaps
    [InlineData("alice", "c1", "$SYS/#", false)]
    [InlineData("bob", "c2", "$SYS/#", true)]
    [InlineData("bob", "c2", "#", true)] // through the pattern users/%u/#, not through $SYS/#
    [InlineData("bob", "c2", "other/#", false)]
    [InlineData("bob", "c2", "sensors/bob/#", false)] // write only
    [InlineData("alice", "dev-7", "devices/+/commands", true)]
    [InlineData("alice", "c1", "$share/group/sensors/#", true)] // shared: judged by the filter after the share name
    [InlineData("alice", "c1", "$share/group/other/#", false)]
    [InlineData(null, "anon-1", "public/+", true)]
    [InlineData(null, "anon-1", "public/secret/#", false)]
    [InlineData("mallory", "dev-1", "devices/dev-1/commands", false)]
    public void Subscribe_is_refused_only_when_the_filter_could_never_deliver_anything(string? user, string clientId, string filter, bool allowed) =>
        Assert.Equal(allowed, _authorizer.CanSubscribe(user, clientId, filter));

    [Theory]
    [InlineData("al/ice", "dev-7")]
    [InlineData("al+ice", "dev-7")]
    [InlineData("alice", "dev/7")]
    [InlineData("alice", "#")]
    public void Names_with_wildcards_or_separators_get_no_pattern_rules(string user, string clientId)
    {
        var permissions = _authorizer.ForClient(user, clientId);
        Assert.False(permissions.CanPublish($"devices/{clientId}/status"));
        Assert.False(permissions.CanPublish($"users/{user}/x"));
        Assert.False(permissions.CanPublish("devices/#"));
    }

    [Fact]
    public void Substitution_is_one_pass()
    {
        Assert.Equal("d/%u/x", ClientPermissions.Substitute("d/%c/x", userName: "bob", clientId: "%u"));
        Assert.Equal("d/%u/%u", ClientPermissions.Substitute("d/%u/%u", userName: null, clientId: "c"));
        Assert.Equal("a%", ClientPermissions.Substitute("a%", "u", "c"));
    }

    [Theory]
    [InlineData("$SYS", false)]
    [InlineData("$SYS/broker/clients", false)]
    [InlineData("$SYSTEM/x", true)]
    [InlineData("sys/$SYS", true)]
    [InlineData("anything/else", true)]
    public void Without_an_acl_everything_is_allowed_except_publishing_to_SYS(string topic, bool canPublish)
    {
        using var open = Create(null);
        var permissions = open.ForClient(null, "c");
        Assert.True(permissions.IsUnrestricted);
        Assert.Equal(canPublish, permissions.CanPublish(topic));
        Assert.True(permissions.CanReceive(topic));
        Assert.True(permissions.CanSubscribe("#"));
    }

    [Fact]
    public void A_changed_acl_applies_to_clients_already_connected()
    {
        string path = _dir.Write("acl2", "user alice\ntopic write a\n");
        using var authorizer = Create(path);
        var alice = authorizer.ForClient("alice", "c1");
        Assert.True(alice.CanPublish("a"));

        File.WriteAllText(path, "user alice\ntopic write b\n");
        File.SetLastWriteTimeUtc(path, DateTime.UtcNow.AddMinutes(1));
        Assert.True(authorizer.ReloadIfChanged());

        Assert.False(alice.CanPublish("a"));
        Assert.True(alice.CanPublish("b"));
    }

    [Fact]
    public void Publish_and_delivery_checks_do_not_allocate()
    {
        var alice = _authorizer.ForClient("alice", "dev-7");
        string[] topics = ["home/alice/lights", "devices/dev-7/status", "sensors/private/x", "nowhere/at/all", "$SYS/x"];
        foreach (var topic in topics)
        {
            alice.CanPublish(topic);
            alice.CanReceive(topic);
        }

        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 1000; i++)
        {
            foreach (var topic in topics)
            {
                alice.CanPublish(topic);
                alice.CanReceive(topic);
            }
        }
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }
}
