using Broker.Protocol;
using Broker.Routing;
using Broker.Security;
using Broker.Tests.Security;
using Conformance.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Xunit;
using static Conformance.Security.SecurityKit;

namespace Conformance.Security;

/// <summary>
/// The ACL applied by the connection (docs/security.md, "What is checked when"): SUBSCRIBE refusals per filter,
/// PUBLISH refusals (5.0 0x87; 3.1.1 acknowledged and dropped), retained messages, wills at CONNECT and at
/// publication, delivery per subscriber, and $SYS. Absence is proven with a marker message sent after the one
/// that must not arrive.
/// </summary>
public sealed class AuthorizationTests : IDisposable
{
    private const string Acl = """
        # anonymous: nothing
        user alice
        topic readwrite home/alice/#
        topic read sensors/#
        topic deny sensors/private/#
        topic write $SYS/#
        topic write wills/alice
        user bob
        topic readwrite sensors/#
        topic write home/#
        topic readwrite $SYS/#
        """;

    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Theory]
    [InlineData(MqttProtocolVersion.V311, (byte)0x80)]
    [InlineData(MqttProtocolVersion.V500, (byte)ReasonCode.NotAuthorized)]
    public async Task A_denied_filter_gets_its_failure_code_and_the_others_are_granted(MqttProtocolVersion version, byte refused)
    {
        await using var broker = await StartAsync(_dir, Acl);
        await using var alice = await LoggedInAsync(broker, version, "alice-1", "alice", "alice-pw");

        var codes = await SubscribeAsync(alice, version, 1,
            ("home/alice/#", QualityOfService.AtLeastOnce),
            ("home/bob/#", QualityOfService.AtLeastOnce),
            ("sensors/private/#", QualityOfService.AtMostOnce),
            ("$share/g/sensors/+", QualityOfService.AtLeastOnce),
            ("$share/g/home/bob/x", QualityOfService.AtLeastOnce));

        Assert.Equal([1, refused, refused, 1, refused], codes);
        Assert.Equal(2, broker.Services.GetRequiredService<Router>().SubscriptionCount);
    }

    [Fact]
    public async Task A_denied_PUBLISH_is_answered_0x87_in_5_0_and_is_not_delivered()
    {
        var v5 = MqttProtocolVersion.V500;
        await using var broker = await StartAsync(_dir, Acl);
        await using var bob = await LoggedInAsync(broker, v5, "bob-1", "bob", "bob-pw");
        Assert.Equal([1], await SubscribeAsync(bob, v5, 1, ("sensors/#", QualityOfService.AtLeastOnce)));
        await using var alice = await LoggedInAsync(broker, v5, "alice-1", "alice", "alice-pw");

        await PublishAsync(alice, v5, "sensors/a", "denied", QualityOfService.AtLeastOnce, 1);
        Assert.Equal(ReasonCode.NotAuthorized, (await alice.ExpectAsync<PubAckPacket>(v5, Wait)).ReasonCode);
        // QoS 2: PUBREC 0x87 ends the exchange [MQTT-4.3.3-4].
        await PublishAsync(alice, v5, "sensors/b", "denied", QualityOfService.ExactlyOnce, 2);
        Assert.Equal(ReasonCode.NotAuthorized, (await alice.ExpectAsync<PubRecPacket>(v5, Wait)).ReasonCode);
        await PublishAsync(alice, v5, "sensors/c", "denied", QualityOfService.AtMostOnce);

        await PublishAsync(bob, v5, "sensors/marker", "marker", QualityOfService.AtLeastOnce, 3);
        var first = await NextPublishAsync(bob, v5);
        Assert.Equal(("sensors/marker", "marker"), (first.Topic, Text(first)));
    }

    [Fact]
    public async Task A_denied_PUBLISH_in_3_1_1_is_acknowledged_as_usual_and_dropped()
    {
        var v3 = MqttProtocolVersion.V311;
        await using var broker = await StartAsync(_dir, Acl);
        await using var bob = await LoggedInAsync(broker, v3, "bob-1", "bob", "bob-pw");
        Assert.Equal([1], await SubscribeAsync(bob, v3, 1, ("sensors/#", QualityOfService.AtLeastOnce)));
        await using var alice = await LoggedInAsync(broker, v3, "alice-1", "alice", "alice-pw");

        await PublishAsync(alice, v3, "sensors/a", "denied", QualityOfService.AtLeastOnce, 1);
        Assert.Equal(1, (await alice.ExpectAsync<PubAckPacket>(v3, Wait)).PacketId);
        await PublishAsync(alice, v3, "sensors/b", "denied", QualityOfService.ExactlyOnce, 2);
        Assert.Equal(2, (await alice.ExpectAsync<PubRecPacket>(v3, Wait)).PacketId);
        await alice.SendAsync(new PubRelPacket { PacketId = 2 }, v3);
        Assert.Equal(2, (await alice.ExpectAsync<PubCompPacket>(v3, Wait)).PacketId);

        await PublishAsync(bob, v3, "sensors/marker", "marker", QualityOfService.AtLeastOnce, 3);
        var first = await NextPublishAsync(bob, v3);
        Assert.Equal("sensors/marker", first.Topic);
    }

    [Fact]
    public async Task A_denied_retained_PUBLISH_leaves_the_retained_store_untouched()
    {
        var v5 = MqttProtocolVersion.V500;
        await using var broker = await StartAsync(_dir, Acl);
        await using var bob = await LoggedInAsync(broker, v5, "bob-1", "bob", "bob-pw");
        await PublishAsync(bob, v5, "sensors/temp", "21", QualityOfService.AtLeastOnce, 1, retain: true);
        Assert.Equal(ReasonCode.NoMatchingSubscribers, (await bob.ExpectAsync<PubAckPacket>(v5, Wait)).ReasonCode);

        // alice may read sensors/# but not write: neither replace nor clear (empty payload) the retained message.
        await using var alice = await LoggedInAsync(broker, v5, "alice-1", "alice", "alice-pw");
        await PublishAsync(alice, v5, "sensors/temp", "99", QualityOfService.AtLeastOnce, 1, retain: true);
        Assert.Equal(ReasonCode.NotAuthorized, (await alice.ExpectAsync<PubAckPacket>(v5, Wait)).ReasonCode);
        await PublishAsync(alice, v5, "sensors/temp", "", QualityOfService.AtLeastOnce, 2, retain: true);
        Assert.Equal(ReasonCode.NotAuthorized, (await alice.ExpectAsync<PubAckPacket>(v5, Wait)).ReasonCode);

        Assert.Equal([1], await SubscribeAsync(alice, v5, 3, ("sensors/temp", QualityOfService.AtLeastOnce)));
        var retained = await NextPublishAsync(alice, v5);
        Assert.Equal(("sensors/temp", "21", true), (retained.Topic, Text(retained), retained.Retain));
    }

    [Fact]
    public async Task Delivery_and_retained_messages_at_SUBSCRIBE_are_filtered_by_read_access()
    {
        var v5 = MqttProtocolVersion.V500;
        await using var broker = await StartAsync(_dir, Acl);
        await using var bob = await LoggedInAsync(broker, v5, "bob-1", "bob", "bob-pw");
        await PublishAsync(bob, v5, "sensors/private/door", "open", QualityOfService.AtLeastOnce, 1, retain: true);
        await bob.ExpectAsync<PubAckPacket>(v5, Wait);
        await PublishAsync(bob, v5, "sensors/public/temp", "20", QualityOfService.AtLeastOnce, 2, retain: true);
        await bob.ExpectAsync<PubAckPacket>(v5, Wait);

        // "sensors/#" overlaps alice's grant, so it is accepted; what she receives under it is filtered.
        await using var alice = await LoggedInAsync(broker, v5, "alice-1", "alice", "alice-pw");
        Assert.Equal([1], await SubscribeAsync(alice, v5, 1, ("sensors/#", QualityOfService.AtLeastOnce)));
        var retained = await NextPublishAsync(alice, v5);
        Assert.Equal(("sensors/public/temp", true), (retained.Topic, retained.Retain));

        await PublishAsync(bob, v5, "sensors/private/door", "closed", QualityOfService.AtLeastOnce, 3);
        await bob.ExpectAsync<PubAckPacket>(v5, Wait);
        await PublishAsync(bob, v5, "sensors/public/marker", "marker", QualityOfService.AtLeastOnce, 4);
        var live = await NextPublishAsync(alice, v5);
        Assert.Equal(("sensors/public/marker", "marker"), (live.Topic, Text(live)));
    }

    [Fact]
    public async Task Messages_queued_for_an_offline_session_are_checked_again_when_it_resumes()
    {
        var v5 = MqttProtocolVersion.V500;
        var expiry = new MqttProperties { SessionExpiryInterval = 300 };
        await using var broker = await StartAsync(_dir, Acl);
        await (await ConnectSubscribedAsync()).DisposeAsync();
        await broker.Logs.WaitForAsync(3, "Client alice-queue disconnected", Wait);

        await using var bob = await LoggedInAsync(broker, v5, "bob-1", "bob", "bob-pw");
        await PublishAsync(bob, v5, "sensors/a", "queued-before-the-change", QualityOfService.AtLeastOnce, 1);
        await bob.ExpectAsync<PubAckPacket>(v5, Wait);
        // The ACL changes while alice is offline: she may no longer read sensors/a.
        ReplaceAcl(broker, Acl.Replace("topic deny sensors/private/#", "topic deny sensors/a", StringComparison.Ordinal));
        await PublishAsync(bob, v5, "sensors/b", "marker", QualityOfService.AtLeastOnce, 2);
        await bob.ExpectAsync<PubAckPacket>(v5, Wait);

        await using var alice = await LoggedInAsync(broker, v5, "alice-queue", "alice", "alice-pw", cleanStart: false, properties: expiry);
        var first = await NextPublishAsync(alice, v5);
        Assert.Equal(("sensors/b", "marker"), (first.Topic, Text(first)));

        async Task<RawClient> ConnectSubscribedAsync()
        {
            var client = await LoggedInAsync(broker, v5, "alice-queue", "alice", "alice-pw", cleanStart: false, properties: expiry);
            Assert.Equal([1], await SubscribeAsync(client, v5, 1, ("sensors/#", QualityOfService.AtLeastOnce)));
            return client;
        }
    }

    [Theory]
    [InlineData(MqttProtocolVersion.V311, (byte)ConnectReturnCode.NotAuthorized)]
    [InlineData(MqttProtocolVersion.V500, (byte)ReasonCode.NotAuthorized)]
    public async Task A_will_to_a_topic_the_client_may_not_write_refuses_the_CONNECT(MqttProtocolVersion version, byte expected)
    {
        await using var broker = await StartAsync(_dir, Acl);
        var will = new WillMessage { Topic = "wills/bob", Payload = "gone"u8.ToArray() };

        var (client, ack) = await ConnectAsync(broker, version, "alice-will", "alice", "alice-pw", will);
        await using var _ = client;

        Assert.Equal(expected, ack!.ReasonCode);
        Assert.Contains("wills/bob", await broker.Logs.WaitForAsync(1100, "alice-will", Wait));
    }

    [Fact]
    public async Task A_will_is_checked_again_when_it_is_published()
    {
        var v5 = MqttProtocolVersion.V500;
        const string willAcl = """
            user alice
            topic write wills/alice
            topic write wills/marker
            user bob
            topic read wills/#
            """;
        await using var broker = await StartAsync(_dir, willAcl);
        await using var bob = await LoggedInAsync(broker, v5, "bob-1", "bob", "bob-pw");
        Assert.Equal([1], await SubscribeAsync(bob, v5, 1, ("wills/#", QualityOfService.AtLeastOnce)));
        var will = new WillMessage { Topic = "wills/alice", Payload = "gone"u8.ToArray(), QoS = QualityOfService.AtLeastOnce };
        var alice = await LoggedInAsync(broker, v5, "alice-will", "alice", "alice-pw", will);

        // While alice is connected the ACL takes her write access to her will topic away; then her connection drops.
        ReplaceAcl(broker, willAcl.Replace("topic write wills/alice", "", StringComparison.Ordinal));
        await alice.DisposeAsync();
        await broker.Logs.WaitForAsync(3, "Client alice-will disconnected", Wait);

        await using var marker = await LoggedInAsync(broker, v5, "alice-marker", "alice", "alice-pw");
        await PublishAsync(marker, v5, "wills/marker", "marker", QualityOfService.AtLeastOnce, 1);
        await marker.ExpectAsync<PubAckPacket>(v5, Wait);
        var first = await NextPublishAsync(bob, v5);
        Assert.Equal(("wills/marker", "marker"), (first.Topic, Text(first)));
    }

    /// <summary>Rewrites the ACL file and makes sure the broker uses the new one (the file watcher may be first).</summary>
    private void ReplaceAcl(BrokerInstance broker, string acl)
    {
        var authorizer = broker.Services.GetRequiredService<TopicAuthorizer>();
        long before = authorizer.Version;
        File.WriteAllText(Path.Combine(_dir.Path, "acl"), acl);
        authorizer.ReloadIfChanged();
        Assert.True(authorizer.Version > before, "the changed ACL was not loaded");
    }

    [Theory]
    [InlineData(null)]
    [InlineData(Acl)]
    public async Task No_client_publishes_to_SYS_whatever_the_ACL_grants(string? acl)
    {
        var v5 = MqttProtocolVersion.V500;
        await using var broker = await StartAsync(_dir, acl);
        // bob's ACL says readwrite $SYS/#; without an ACL file everything else is allowed.
        await using var bob = await LoggedInAsync(broker, v5, "bob-1", "bob", "bob-pw");
        Assert.Equal([1], await SubscribeAsync(bob, v5, 1, ("$SYS/test/#", QualityOfService.AtLeastOnce)));
        foreach (var topic in new[] { "$SYS/test/x", "$SYS" })
        {
            await PublishAsync(bob, v5, topic, "forged", QualityOfService.AtLeastOnce, 2, retain: true);
            Assert.Equal(ReasonCode.NotAuthorized, (await bob.ExpectAsync<PubAckPacket>(v5, Wait)).ReasonCode);
        }
        Assert.Equal(0, broker.Services.GetRequiredService<Router>().GetRetained("$SYS/test/#").Count);
    }
}
