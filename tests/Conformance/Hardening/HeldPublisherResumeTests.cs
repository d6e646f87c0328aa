using System.Buffers.Binary;
using System.Net.Sockets;
using Broker.Connections;
using Broker.Protocol;
using Conformance.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Xunit;

namespace Conformance.Hardening;

/// <summary>
/// Found by the hostile soak: a publisher that sends one packet at a time (each read holds exactly one PUBLISH) is
/// held by back-pressure with nothing left in its input buffer, so the buffer goes back to the pool while it is
/// parked. Resuming must then simply read the socket again; it used to frame a null buffer and end the connection
/// as an internal error.
/// </summary>
public sealed class HeldPublisherResumeTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task A_publisher_held_with_nothing_buffered_resumes_when_the_subscriber_drains_and_loses_nothing()
    {
        // 200 x 32 KB: more than the kernel's socket buffers take on loopback (autotuned up to 4 MB), so the hold lasts.
        const int count = 200;
        var cancel = TestContext.Current.CancellationToken;
        await using var broker = await BrokerInstance.StartAsync(new Dictionary<string, string?>
        {
            // Held above 4 queued messages (half the limit), released below 2.
            ["Broker:Limits:MaxQueuedMessages"] = "8",
            ["Broker:Tcp:MaxPendingOutputBytes"] = "1024",
            // The subscriber does not read for a while: it must count as a slow reader, not a stalled one.
            ["Broker:Limits:StalledAfterMilliseconds"] = "600000",
            ["Broker:Limits:SlowConsumerSeconds"] = "601",
        });
        await using var subscriber = await RawClient.ConnectWithSmallReceiveBufferAsync(broker);
        await subscriber.HandshakeAsync(MqttProtocolVersion.V311, "held-sub", 60);
        await subscriber.SubscribeAsync("held/#", QualityOfService.AtLeastOnce, MqttProtocolVersion.V311, Timeout);

        await using var publisher = await RawClient.ConnectAsync(broker);
        await publisher.HandshakeAsync(MqttProtocolVersion.V311, "held-pub", 60);
        // One PUBLISH at a time, each after the previous PUBACK: every read of the publisher's socket is one whole packet.
        var publishing = Task.Run(async () =>
        {
            var payload = new byte[32 * 1024];
            for (int i = 0; i < count; i++)
            {
                BinaryPrimitives.WriteInt32BigEndian(payload, i);
                await publisher.SendAsync(new PublishPacket { Topic = "held/x", QoS = QualityOfService.AtLeastOnce, PacketId = (ushort)(i + 1), Payload = payload.ToArray() },
                    MqttProtocolVersion.V311);
                var ack = await publisher.ReceiveAsync(MqttProtocolVersion.V311, TimeSpan.FromSeconds(60));
                if (ack is not PubAckPacket)
                {
                    return i;
                }
            }
            return count;
        }, cancel);

        // The subscriber reads nothing until the publisher is held ...
        using (var poll = new PeriodicTimer(TimeSpan.FromMilliseconds(20)))
        {
            var waited = System.Diagnostics.Stopwatch.StartNew();
            while (Connection(broker, "held-pub")?.IsHeldBack != true)
            {
                Assert.True(waited.Elapsed < Timeout, "the publisher was never held back");
                Assert.False(publishing.IsCompleted, $"the publisher finished without being held after {(publishing.IsCompletedSuccessfully ? publishing.Result : -1)} PUBACKs; "
                    + string.Join("; ", broker.Logs.Errors));
                await poll.WaitForNextTickAsync(cancel);
            }
        }
        // ... then reads everything: the publisher is released, goes on, and every message arrives once, in order.
        var received = new List<int>();
        while (received.Count < count)
        {
            MqttPacket? packet;
            try
            {
                packet = await subscriber.ReceiveAsync(MqttProtocolVersion.V311, Timeout);
            }
            catch (TimeoutException)
            {
                break;
            }
            var publish = Assert.IsType<PublishPacket>(packet);
            received.Add(BinaryPrimitives.ReadInt32BigEndian(publish.Payload.Span));
            await subscriber.SendAsync(new PubAckPacket { PacketId = publish.PacketId }, MqttProtocolVersion.V311);
        }
        Assert.Empty(broker.Logs.Errors);
        Assert.Equal(count, await publishing.WaitAsync(Timeout, cancel));
        Assert.Equal(Enumerable.Range(0, count), received);
    }

    private static MqttConnection? Connection(BrokerInstance broker, string clientId) =>
        broker.Services.GetRequiredService<ConnectionRegistry>().Snapshot().FirstOrDefault(c => c.ClientId == clientId);
}
