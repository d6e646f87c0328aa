using System.Buffers;
using System.Collections.Concurrent;
using System.Diagnostics;
using Broker.Protocol;
using Conformance.Infrastructure;
using Xunit;

namespace Conformance.KeepAlive;

/// <summary>
/// [MQTT-3.12.4-1]: the server answers PINGREQ with PINGRESP. It must do so at once even on a busy connection,
/// or a client with a short ping timeout gives up on a healthy broker.
/// </summary>
[Collection(Conformance.Infrastructure.RealTimeCollection.Name)]
public sealed class PingResponseTests
{
    private static readonly TimeSpan MaxRoundTrip = TimeSpan.FromMilliseconds(200);

    [Fact]
    public async Task MQTT_3_12_4_1_pingresp_comes_at_once_while_the_connection_carries_traffic_both_ways()
    {
        await using var broker = await BrokerInstance.StartAsync();
        await Task.WhenAll(
            PingUnderTrafficAsync(broker, MqttProtocolVersion.V311),
            PingUnderTrafficAsync(broker, MqttProtocolVersion.V500));
    }

    private static async Task PingUnderTrafficAsync(BrokerInstance broker, MqttProtocolVersion version)
    {
        var clock = Stopwatch.StartNew();
        await using var client = await RawClient.ConnectAsync(broker);
        await client.HandshakeAsync(version, $"busy-{version}", 30);
        var pingResponses = new ConcurrentQueue<TimeSpan>();
        var watch = new ConnectionWatch(client, version, clock, (packet, at) =>
        {
            if (packet.Type == PacketType.PingResp)
            {
                pingResponses.Enqueue(at);
            }
        });
        string topic = $"busy/{version}";
        await client.SendAsync(new SubscribePacket { PacketId = 1, Subscriptions = [new TopicSubscription(topic, QualityOfService.AtMostOnce)] }, version);
        Assert.True(await watch.WaitForAsync(PacketType.SubAck, 1, TimeSpan.FromSeconds(5)), "no SUBACK");

        // Another client streams 10 x 256-byte messages every 10 ms to this one (broker -> client traffic).
        await using var feeder = await RawClient.ConnectAsync(broker);
        await feeder.HandshakeAsync(version, $"feeder-{version}", 30);
        byte[] burst = Encode(version, 10, new PublishPacket { Topic = topic, Payload = new byte[256], QoS = QualityOfService.AtMostOnce });
        using var stopFeeding = new CancellationTokenSource();
        var feeding = Task.Run(async () =>
        {
            using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(10));
            while (await timer.WaitForNextTickAsync(stopFeeding.Token).ConfigureAwait(false))
            {
                await feeder.SendAsync(burst);
            }
        });

        // The connection itself publishes every 10 ms (client -> broker traffic) and pings every 200 ms, from one
        // task so that the two never interleave on the socket.
        byte[] ownPublish = Encode(version, 1, new PublishPacket { Topic = "busy/elsewhere", Payload = new byte[100], QoS = QualityOfService.AtMostOnce });
        byte[] pingReq = Encode(version, 1, PingReqPacket.Instance);
        var pingSent = new List<TimeSpan>();
        using (var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(10)))
        {
            for (int tick = 0; tick < 200 && await timer.WaitForNextTickAsync(); tick++)
            {
                await client.SendAsync(ownPublish);
                if (tick % 20 == 10)
                {
                    pingSent.Add(clock.Elapsed);
                    await client.SendAsync(pingReq);
                }
            }
        }
        Assert.True(await watch.WaitForAsync(PacketType.PingResp, pingSent.Count, TimeSpan.FromSeconds(5)),
            $"{version}: {watch.Count(PacketType.PingResp)} PINGRESP for {pingSent.Count} PINGREQ");
        await stopFeeding.CancelAsync();
        await feeding.ContinueWith(_ => { }).WaitAsync(TimeSpan.FromSeconds(5));

        var roundTrips = pingResponses.Zip(pingSent, (received, sent) => received - sent).ToArray();
        int delivered = watch.Count(PacketType.Publish);
        TestContext.Current.SendDiagnosticMessage($"{version}: PINGRESP round trips {string.Join(", ", roundTrips.Select(r => r.TotalMilliseconds.ToString("F1")))} ms; {delivered} messages delivered meanwhile");
        Assert.True(delivered >= 500, $"{version}: only {delivered} messages reached the pinging client: the traffic did not flow");
        Assert.All(roundTrips, rtt => Assert.True(rtt < MaxRoundTrip, $"{version}: PINGRESP took {rtt.TotalMilliseconds:F1} ms"));
    }

    private static byte[] Encode(MqttProtocolVersion version, int copies, MqttPacket packet)
    {
        var writer = new ArrayBufferWriter<byte>();
        for (int i = 0; i < copies; i++)
        {
            MqttPacketWriter.Write(writer, packet, version);
        }
        return writer.WrittenSpan.ToArray();
    }
}
