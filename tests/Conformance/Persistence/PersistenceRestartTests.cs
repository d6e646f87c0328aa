using System.Net;
using System.Text;
using Broker.Protocol;
using Conformance.Infrastructure;
using Xunit;

namespace Conformance.Persistence;

/// <summary>
/// Issue #14 with the broker as a child process on a store of its own: what a client was promised survives a normal
/// restart (SIGTERM) and a crash (SIGKILL). Each test starts the broker two or three times; the classes run in
/// parallel with each other.
/// </summary>
public sealed class PersistenceRestartTests : IDisposable
{
    private static readonly MqttProtocolVersion V311 = MqttProtocolVersion.V311;
    private static readonly MqttProtocolVersion V500 = MqttProtocolVersion.V500;
    private readonly string _store = BrokerInstance.NewStoreDirectory();

    public void Dispose() => BrokerInstance.DeleteStoreDirectory(_store);

    [Fact]
    public async Task Subscription_queued_QoS_1_messages_and_retained_messages_survive_a_restart_and_are_delivered_once()
    {
        var (first, endPoint) = await ChildBroker.StartListeningAsync(_store);
        using (first)
        {
            // 3.1.1 Clean Session 0: kept for Broker:Limits:V311SessionExpirySeconds.
            await using (var sub = await ConnectAsync(endPoint, V311, "restart-sub", cleanStart: false, expectPresent: false))
            {
                await sub.SendAsync(new SubscribePacket { PacketId = 1, Subscriptions = [new TopicSubscription("queue/#", QualityOfService.AtLeastOnce)] }, V311);
                var suback = await sub.ExpectAsync<SubAckPacket>(V311);
                Assert.Equal([(byte)1], suback.ReasonCodes);
                await sub.SendAsync(new DisconnectPacket(), V311);
            }
            await using (var pub = await ConnectAsync(endPoint, V311, "restart-pub", cleanStart: true, expectPresent: false))
            {
                await PublishAcknowledgedAsync(pub, V311, "queue/a", "m1", 1);
                await PublishAcknowledgedAsync(pub, V311, "queue/a", "m2", 2);
                await PublishAcknowledgedAsync(pub, V311, "state/lamp", "on", 3, retain: true);
                await PublishAcknowledgedAsync(pub, V311, "state/gone", "x", 4, retain: true);
                await PublishAcknowledgedAsync(pub, V311, "state/gone", "", 5, retain: true); // cleared again
                await pub.SendAsync(new DisconnectPacket(), V311);
            }
            Assert.Equal(0, await first.StopAsync());
        }

        var (second, endPoint2) = await ChildBroker.StartListeningAsync(_store);
        using (second)
        {
            Assert.Contains("restored 1 sessions (1 subscriptions, 2 queued", second.Output);
            await using (var pub = await ConnectAsync(endPoint2, V311, "restart-pub", cleanStart: true, expectPresent: false))
            {
                // Routed through the restored subscription.
                await PublishAcknowledgedAsync(pub, V311, "queue/a", "m3", 1);
            }
            await using (var sub = await ConnectAsync(endPoint2, V311, "restart-sub", cleanStart: false, expectPresent: true))
            {
                Assert.Equal(["m1", "m2", "m3"], await ReceiveAndAcknowledgeAsync(sub, V311, 3));
                await sub.AssertNothingBeforePingRespAsync(V311);
                await sub.SendAsync(new DisconnectPacket(), V311);
            }
            await using (var late = await ConnectAsync(endPoint2, V311, "restart-late", cleanStart: true, expectPresent: false))
            {
                await late.SubscribeAsync("state/#", QualityOfService.AtLeastOnce, V311);
                var retained = await late.ExpectAsync<PublishPacket>(V311);
                Assert.Equal(("state/lamp", "on", true), (retained.Topic, Encoding.UTF8.GetString(retained.Payload.Span), retained.Retain));
                await late.SendAsync(new PubAckPacket { PacketId = retained.PacketId }, V311);
                // The cleared one stays cleared.
                await late.AssertNothingBeforePingRespAsync(V311);
            }
            Assert.Equal(0, await second.StopAsync());
        }

        // The acknowledged deliveries were removed from the store: nothing is delivered a second time.
        var (third, endPoint3) = await ChildBroker.StartListeningAsync(_store);
        using (third)
        {
            await using var sub = await ConnectAsync(endPoint3, V311, "restart-sub", cleanStart: false, expectPresent: true);
            await sub.AssertNothingBeforePingRespAsync(V311);
        }
    }

    [Fact]
    public async Task A_QoS_2_exchange_interrupted_by_a_crash_between_PUBREC_and_PUBREL_completes_exactly_once_in_both_directions()
    {
        var session = new MqttProperties { SessionExpiryInterval = 600 };
        var (first, endPoint) = await ChildBroker.StartListeningAsync(_store);
        ushort outboundId;
        using (first)
        {
            await using var sub = await ConnectAsync(endPoint, V500, "q2-sub", cleanStart: true, expectPresent: false, session);
            await sub.SubscribeAsync("q2/#", QualityOfService.ExactlyOnce, V500);

            await using var pub = await ConnectAsync(endPoint, V500, "q2-pub", cleanStart: true, expectPresent: false, session);
            // Inbound: the broker acknowledged the PUBLISH (PUBREC), the client has not released it yet.
            await pub.SendAsync(Publish("q2/in", "inbound", QualityOfService.ExactlyOnce, 7), V500);
            Assert.Equal(ReasonCode.Success, (await pub.ExpectAsync<PubRecPacket>(V500)).ReasonCode);

            // Outbound: the subscriber has the message and sent PUBREC, the broker answered PUBREL, no PUBCOMP yet.
            var delivered = await sub.ExpectAsync<PublishPacket>(V500);
            Assert.Equal("inbound", Encoding.UTF8.GetString(delivered.Payload.Span));
            outboundId = delivered.PacketId;
            await sub.SendAsync(new PubRecPacket { PacketId = outboundId }, V500);
            Assert.Equal(outboundId, (await sub.ExpectAsync<PubRelPacket>(V500)).PacketId);

            await first.CrashAsync();
        }

        var (second, endPoint2) = await ChildBroker.StartListeningAsync(_store);
        using (second)
        {
            // The publisher did not see the PUBREC arrive (say) and resends the PUBLISH: acknowledged, not delivered again.
            await using (var pub = await ConnectAsync(endPoint2, V500, "q2-pub", cleanStart: false, expectPresent: true, session))
            {
                var resend = Publish("q2/in", "inbound", QualityOfService.ExactlyOnce, 7);
                resend.Dup = true;
                await pub.SendAsync(resend, V500);
                Assert.Equal(ReasonCode.Success, (await pub.ExpectAsync<PubRecPacket>(V500)).ReasonCode);
                await pub.SendAsync(new PubRelPacket { PacketId = 7 }, V500);
                Assert.Equal(ReasonCode.Success, (await pub.ExpectAsync<PubCompPacket>(V500)).ReasonCode);
            }
            // The subscriber gets the PUBREL again [MQTT-4.4.0-1], not the PUBLISH, and nothing else.
            await using (var sub = await ConnectAsync(endPoint2, V500, "q2-sub", cleanStart: false, expectPresent: true, session))
            {
                Assert.Equal(outboundId, (await sub.ExpectAsync<PubRelPacket>(V500)).PacketId);
                await sub.SendAsync(new PubCompPacket { PacketId = outboundId }, V500);
                await sub.AssertNothingBeforePingRespAsync(V500);
            }
        }
    }

    [Fact]
    public async Task A_QoS_2_message_sent_before_a_crash_is_resent_with_its_packet_id_and_DUP()
    {
        var session = new MqttProperties { SessionExpiryInterval = 600 };
        var (first, endPoint) = await ChildBroker.StartListeningAsync(_store);
        ushort sentId;
        using (first)
        {
            await using var sub = await ConnectAsync(endPoint, V500, "dup-sub", cleanStart: true, expectPresent: false, session);
            await sub.SubscribeAsync("dup/#", QualityOfService.ExactlyOnce, V500);
            await using var pub = await ConnectAsync(endPoint, V500, "dup-pub", cleanStart: true, expectPresent: false);
            await pub.SendAsync(Publish("dup/x", "only once", QualityOfService.ExactlyOnce, 1), V500);
            await pub.ExpectAsync<PubRecPacket>(V500);
            // The PUBLISH went out (its packet id was durable first); the subscriber never answers.
            sentId = (await sub.ExpectAsync<PublishPacket>(V500)).PacketId;
            await first.CrashAsync();
        }

        var (second, endPoint2) = await ChildBroker.StartListeningAsync(_store);
        using (second)
        {
            await using var sub = await ConnectAsync(endPoint2, V500, "dup-sub", cleanStart: false, expectPresent: true, session);
            var resent = await sub.ExpectAsync<PublishPacket>(V500);
            // The same id, so the client recognises the message it may already have [MQTT-4.3.3-?, 4.4.0-1].
            Assert.Equal((sentId, true, "only once"), (resent.PacketId, resent.Dup, Encoding.UTF8.GetString(resent.Payload.Span)));
            await sub.SendAsync(new PubRecPacket { PacketId = sentId }, V500);
            await sub.ExpectAsync<PubRelPacket>(V500);
            await sub.SendAsync(new PubCompPacket { PacketId = sentId }, V500);
            await sub.AssertNothingBeforePingRespAsync(V500);
        }
    }

    internal static async Task<RawClient> ConnectAsync(IPEndPoint endPoint, MqttProtocolVersion version, string clientId, bool cleanStart,
        bool expectPresent, MqttProperties? properties = null, WillMessage? will = null)
    {
        var raw = await RawClient.ConnectAsync(endPoint);
        var ack = await raw.HandshakeAsync(version, clientId, 60, cleanStart, properties, will);
        Assert.Equal(0, ack.ReasonCode);
        Assert.Equal(expectPresent, ack.SessionPresent);
        return raw;
    }

    internal static PublishPacket Publish(string topic, string payload, QualityOfService qos, ushort packetId, bool retain = false) => new()
    {
        Topic = topic,
        Payload = Encoding.UTF8.GetBytes(payload),
        QoS = qos,
        PacketId = packetId,
        Retain = retain,
    };

    private static async Task PublishAcknowledgedAsync(RawClient client, MqttProtocolVersion version, string topic, string payload, ushort packetId,
        bool retain = false)
    {
        await client.SendAsync(Publish(topic, payload, QualityOfService.AtLeastOnce, packetId, retain), version);
        Assert.Equal(packetId, (await client.ExpectAsync<PubAckPacket>(version)).PacketId);
    }

    private static async Task<List<string>> ReceiveAndAcknowledgeAsync(RawClient client, MqttProtocolVersion version, int count)
    {
        var payloads = new List<string>();
        for (int i = 0; i < count; i++)
        {
            var publish = await client.ExpectAsync<PublishPacket>(version);
            payloads.Add(Encoding.UTF8.GetString(publish.Payload.Span));
            await client.SendAsync(new PubAckPacket { PacketId = publish.PacketId }, version);
        }
        return payloads;
    }
}
