using System.Text;
using Broker.Protocol;
using Conformance.Infrastructure;
using Xunit;
using static Conformance.KeepAlive.KeepAliveBounds;

namespace Conformance.KeepAlive;

/// <summary>
/// A keep-alive expiry is a disconnection without DISCONNECT, so the will is published [MQTT-3.1.2-8];
/// a normal DISCONNECT discards it [MQTT-3.1.2-10] (3.1.1) / [MQTT-3.14.4-3] (5.0).
/// </summary>
[Collection(Conformance.Infrastructure.RealTimeCollection.Name)]
public sealed class KeepAliveWillTests
{
    private const int DisconnectedEventId = 3;

    [Fact]
    public async Task Will_is_published_on_keep_alive_expiry_and_not_after_a_normal_disconnect()
    {
        await using var broker = await BrokerInstance.StartAsync();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        await using var subscriber = await RawClient.ConnectAsync(broker);
        await subscriber.HandshakeAsync(MqttProtocolVersion.V311, "will-watcher", 0);
        var watch = new ConnectionWatch(subscriber, MqttProtocolVersion.V311, clock);
        await subscriber.SendAsync(new SubscribePacket { PacketId = 1, Subscriptions = [new TopicSubscription("will/#", QualityOfService.AtMostOnce)] }, MqttProtocolVersion.V311);
        Assert.True(await watch.WaitForAsync(PacketType.SubAck, 1, TimeSpan.FromSeconds(5)), "no SUBACK");

        var clients = new List<RawClient>();
        try
        {
            var expiredWatches = new List<(string Id, ConnectionWatch Watch)>();
            foreach (var version in new[] { MqttProtocolVersion.V311, MqttProtocolVersion.V500 })
            {
                var (expiring, expiringClock, _) = await KeepAliveClients.ConnectAsync(broker, version, $"expires-{version}", 1, Will($"will/expired/{version}"));
                clients.Add(expiring);
                expiredWatches.Add(($"expires-{version}", new ConnectionWatch(expiring, version, expiringClock)));

                var (polite, _, _) = await KeepAliveClients.ConnectAsync(broker, version, $"polite-{version}", 1, Will($"will/normal/{version}"));
                clients.Add(polite);
                await polite.SendAsync(new DisconnectPacket { ReasonCode = ReasonCode.NormalDisconnection }, version);
            }

            foreach (var (id, expiredWatch) in expiredWatches)
            {
                AssertClosedInWindow(id, await expiredWatch.WaitClosedAsync(TimeSpan.FromSeconds(5)), Grace(1));
            }
            Assert.True(await watch.WaitForAsync(PacketType.Publish, 2, TimeSpan.FromSeconds(5)), "the wills of the expired clients did not arrive");

            // The polite clients disconnected 1.5 s before the others expired; their end is logged after any will
            // is handed to the router, so by now a wrongly published will would already be here.
            foreach (var version in new[] { MqttProtocolVersion.V311, MqttProtocolVersion.V500 })
            {
                Assert.Contains(broker.Logs.Messages(DisconnectedEventId), m => m.Contains($"Client polite-{version} disconnected"));
            }
            var topics = watch.Packets.Select(p => p.Packet).OfType<PublishPacket>().Select(p => p.Topic).Order().ToArray();
            Assert.Equal(["will/expired/V311", "will/expired/V500"], topics);
        }
        finally
        {
            foreach (var client in clients)
            {
                await client.DisposeAsync();
            }
        }
    }

    private static WillMessage Will(string topic) => new() { Topic = topic, Payload = Encoding.UTF8.GetBytes("gone"), QoS = QualityOfService.AtMostOnce };
}
