using System.Text;
using Broker.Protocol;
using Conformance.Infrastructure;
using Xunit;

namespace Conformance.KeepAlive;

/// <summary>
/// [MQTT-3.1.2-23] (3.1.1) / [MQTT-3.1.2-20] (5.0): the client keeps the connection alive by sending any
/// control packet within K; PINGREQ is only the packet it sends when it has nothing else to send.
/// </summary>
[Collection(Conformance.Infrastructure.RealTimeCollection.Name)]
public sealed class KeepAliveActivityTests
{
    private const ushort K = 2;

    [Fact]
    public async Task MQTT_3_1_2_24_and_22_pingreq_every_0_6K_or_publish_every_1_25K_keeps_the_connection_for_over_3K()
    {
        await using var broker = await BrokerInstance.StartAsync();
        var hold = TimeSpan.FromSeconds(3 * K + 0.5);
        var clients = new List<(string Id, MqttProtocolVersion Version, RawClient Client, ConnectionWatch Watch, PacketPacer Pacer)>();
        try
        {
            foreach (var version in new[] { MqttProtocolVersion.V311, MqttProtocolVersion.V500 })
            {
                // PINGREQ at 0.6K: the usual client behaviour, far inside the 1.5K grace.
                var (pinger, pingClock, _) = await KeepAliveClients.ConnectAsync(broker, version, $"pinger-{version}", K);
                clients.Add(($"pinger-{version}", version, pinger, new ConnectionWatch(pinger, version, pingClock),
                    new PacketPacer(pinger, version, PingReqPacket.Instance, TimeSpan.FromSeconds(0.6 * K))));

                // QoS 0 PUBLISH at 1.25K and never a PINGREQ: later than K (the client is late by the spec's
                // own measure) but inside 1.5K, and a packet with no reply at all still counts.
                var publish = new PublishPacket { Topic = "ka/activity", Payload = Encoding.UTF8.GetBytes("tick"), QoS = QualityOfService.AtMostOnce };
                var (publisher, pubClock, _) = await KeepAliveClients.ConnectAsync(broker, version, $"publisher-{version}", K);
                clients.Add(($"publisher-{version}", version, publisher, new ConnectionWatch(publisher, version, pubClock),
                    new PacketPacer(publisher, version, publish, TimeSpan.FromSeconds(1.25 * K))));
            }

            var closedAt = await Task.WhenAll(clients.Select(c => c.Watch.WaitClosedAsync(hold)));
            for (int i = 0; i < clients.Count; i++)
            {
                Assert.True(closedAt[i] is null, $"{clients[i].Id}: closed at {closedAt[i]?.TotalSeconds:F3}s although it sent a packet every {(clients[i].Id.StartsWith("pinger") ? 0.6 : 1.25) * K}s");
            }

            foreach (var c in clients)
            {
                await c.Pacer.DisposeAsync();
                TestContext.Current.SendDiagnosticMessage($"{c.Id}: {c.Pacer.Sent} packets sent, open after {hold.TotalSeconds}s");
            }

            foreach (var c in clients.Where(c => c.Id.StartsWith("pinger")))
            {
                // Every PINGREQ was answered (the last one may still be on its way).
                Assert.True(await c.Watch.WaitForAsync(PacketType.PingResp, c.Pacer.Sent, TimeSpan.FromSeconds(2)),
                    $"{c.Id}: {c.Watch.Count(PacketType.PingResp)} PINGRESP for {c.Pacer.Sent} PINGREQ");
                Assert.True(c.Pacer.Sent >= 5, $"{c.Id}: only {c.Pacer.Sent} PINGREQ sent in {hold.TotalSeconds}s");
            }
            foreach (var c in clients.Where(c => c.Id.StartsWith("publisher")))
            {
                Assert.True(c.Pacer.Sent >= 2, $"{c.Id}: only {c.Pacer.Sent} PUBLISH sent in {hold.TotalSeconds}s");
                // Still served, not merely unclosed.
                await c.Client.SendAsync(PingReqPacket.Instance, c.Version);
                Assert.True(await c.Watch.WaitForAsync(PacketType.PingResp, 1, TimeSpan.FromSeconds(2)), $"{c.Id}: no PINGRESP after the hold");
            }
        }
        finally
        {
            foreach (var c in clients)
            {
                await c.Pacer.DisposeAsync();
                await c.Client.DisposeAsync();
            }
        }
    }
}
