using System.Buffers;
using System.Buffers.Binary;
using System.Net.Sockets;
using Broker.Connections;
using Broker.Protocol;
using Conformance.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using Xunit;

namespace Conformance.Overload;

/// <summary>
/// Overload over real sockets (docs/overload.md): a publisher is slowed while a reading subscriber cannot keep up and
/// loses nothing; a subscriber that stopped reading holds nobody, keeps the newest messages within its limits and is
/// disconnected after Broker:Limits:SlowConsumerSeconds; a throttled client is not expired for silence.
/// </summary>
public sealed class BackPressureTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task A_publisher_is_held_while_a_reading_subscriber_falls_behind_resumes_when_it_drains_and_nothing_is_lost()
    {
        const int count = 3000;
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var broker = await BrokerInstance.StartAsync(new Dictionary<string, string?>
        {
            ["Broker:Limits:MaxQueuedMessages"] = "200",
            ["Broker:Tcp:MaxPendingOutputBytes"] = "8192",
            // The subscriber pauses its reading for seconds: it must still count as a reader, not a stalled client.
            ["Broker:Limits:StalledAfterMilliseconds"] = "600000",
            ["Broker:Limits:SlowConsumerSeconds"] = "601",
        }, services => services.AddSingleton<TimeProvider>(time));
        await using var subscriber = await SmallBufferClientAsync(broker, "bp-sub");
        await subscriber.SubscribeAsync("bp/#", QualityOfService.AtLeastOnce, MqttProtocolVersion.V311, Timeout);

        // Keep Alive 1 s: the publisher is held far longer than 1.5 s and must not be expired for it.
        await using var publisher = await RawClient.ConnectAsync(broker);
        await publisher.HandshakeAsync(MqttProtocolVersion.V311, "bp-pub", keepAlive: 1);
        var acks = CountAcksAsync(publisher, count);
        var sending = SendNumberedAsync(publisher, "bp/data", count);

        await WaitUntilAsync(() => Connection(broker, "bp-pub")?.IsHeldBack == true, "the publisher was never held back");
        // Held for more than 1.5 x its keep-alive while its PINGREQs (and publishes) wait unread in the kernel.
        await time.AdvanceAsync(TimeSpan.FromSeconds(2.5));
        Assert.True(Connection(broker, "bp-pub")?.IsHeldBack, "the publisher was released although the subscriber did not read");
        Assert.False(acks.IsCompleted, "every message was acknowledged although the subscriber read nothing");
        var session = Session(broker, "bp-sub");
        // Held from half the limit down to a quarter; what the publisher had in flight may add a little, never more than twice.
        Assert.InRange(session.PendingCount, 50, 400);
        Assert.True(session.PendingBytes <= 2L * 4 * 1024 * 1024, $"{session.PendingBytes} bytes queued");

        // The subscriber reads: the publisher goes on, and every message arrives once, in order.
        for (int expected = 0; expected < count; expected++)
        {
            var publish = Assert.IsType<PublishPacket>(await subscriber.ReceiveAsync(MqttProtocolVersion.V311, Timeout));
            Assert.Equal(expected, BinaryPrimitives.ReadInt32BigEndian(publish.Payload.Span));
            await subscriber.SendAsync(new PubAckPacket { PacketId = publish.PacketId }, MqttProtocolVersion.V311);
        }
        await sending;
        Assert.Equal(count, await acks);
        Assert.False(Connection(broker, "bp-pub")!.IsHeldBack);
        Assert.DoesNotContain(broker.Logs.Messages(3), m => m.Contains("Client bp-pub disconnected", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_subscriber_that_stopped_reading_holds_nobody_keeps_the_newest_within_its_limits_and_is_disconnected()
    {
        const int count = 2000;
        await using var broker = await BrokerInstance.StartAsync(new Dictionary<string, string?>
        {
            ["Broker:Limits:MaxQueuedMessages"] = "50",
            ["Broker:Tcp:MaxPendingOutputBytes"] = "4096",
            ["Broker:Limits:StalledAfterMilliseconds"] = "1000",
            ["Broker:Limits:SlowConsumerSeconds"] = "3",
        });
        using var scraper = new Operations.MetricsScraper(broker);
        await using var stuck = await SmallBufferClientAsync(broker, "stuck");
        await stuck.SubscribeAsync("s/#", QualityOfService.AtLeastOnce, MqttProtocolVersion.V311, Timeout);
        await using var good = await RawClient.ConnectAsync(broker);
        await good.HandshakeAsync(MqttProtocolVersion.V311, "good", 60);
        await good.SubscribeAsync("s/#", QualityOfService.AtMostOnce, MqttProtocolVersion.V311, Timeout);

        await using var publisher = await RawClient.ConnectAsync(broker);
        await publisher.HandshakeAsync(MqttProtocolVersion.V311, "pub", 60);
        var acks = CountAcksAsync(publisher, count);
        var sending = SendNumberedAsync(publisher, "s/data", count);

        // The good subscriber gets everything, in order, while the stuck one holds nobody up for long.
        for (int expected = 0; expected < count; expected++)
        {
            var publish = Assert.IsType<PublishPacket>(await good.ReceiveAsync(MqttProtocolVersion.V311, Timeout));
            Assert.Equal(expected, BinaryPrimitives.ReadInt32BigEndian(publish.Payload.Span));
        }
        Assert.Equal(count, await acks.WaitAsync(Timeout, TestContext.Current.CancellationToken));

        // The stuck client's queue holds at most its limit, the oldest dropped and counted ...
        Assert.InRange(Session(broker, "stuck").PendingCount, 0, 50);
        await scraper.WaitUntilAsync(s => Operations.MetricsScraper.Value(s, "mqtt_messages_dropped_total", ("reason", "queue_full")) > 0,
            "the stuck subscriber's oldest messages dropped");
        // ... and after SlowConsumerSeconds without taking anything it is disconnected.
        await broker.Logs.WaitForAsync(3, "Client stuck disconnected: MQTT 3.1.1, keep-alive 60s, cause slow_consumer", Timeout);
        Assert.Contains(broker.Logs.Messages(14), m => m.Contains("Client stuck stopped reading", StringComparison.Ordinal));
        await sending;
    }

    private static async Task<RawClient> SmallBufferClientAsync(BrokerInstance broker, string clientId)
    {
        var client = await RawClient.ConnectWithSmallReceiveBufferAsync(broker);
        await client.HandshakeAsync(MqttProtocolVersion.V311, clientId, 60);
        return client;
    }

    /// <summary>
    /// QoS 1 publishes numbered 0..count-1 in the first four bytes of a 4 KB payload, written as fast as the socket takes
    /// them. 4 KB so that the messages outgrow the kernel's socket buffers on loopback (autotuned up to 4 MB).
    /// </summary>
    private static async Task SendNumberedAsync(RawClient publisher, string topic, int count)
    {
        var payload = new byte[4096];
        var batch = new ArrayBufferWriter<byte>();
        for (int i = 0; i < count; i++)
        {
            BinaryPrimitives.WriteInt32BigEndian(payload, i);
            MqttPacketWriter.Write(batch, new PublishPacket { Topic = topic, QoS = QualityOfService.AtLeastOnce, PacketId = (ushort)(i % 60000 + 1), Payload = payload.ToArray() }, MqttProtocolVersion.V311);
            if (batch.WrittenCount > 64 * 1024 || i == count - 1)
            {
                await publisher.Socket.SendAsync(batch.WrittenMemory, SocketFlags.None, TestContext.Current.CancellationToken);
                batch.ResetWrittenCount();
            }
        }
    }

    private static async Task<int> CountAcksAsync(RawClient publisher, int count)
    {
        int acked = 0;
        while (acked < count)
        {
            var packet = await publisher.ReceiveAsync(MqttProtocolVersion.V311, TimeSpan.FromSeconds(60));
            if (packet is null)
            {
                break;
            }
            if (packet is PubAckPacket)
            {
                acked++;
            }
        }
        return acked;
    }

    private static MqttConnection? Connection(BrokerInstance broker, string clientId) =>
        broker.Services.GetRequiredService<ConnectionRegistry>().Snapshot().FirstOrDefault(c => c.ClientId == clientId);

    private static Broker.Sessions.Session Session(BrokerInstance broker, string clientId)
    {
        Assert.True(broker.Services.GetRequiredService<Broker.Sessions.SessionStore>().TryGet(clientId, out var session));
        return session!;
    }

    private static Task<TimeSpan> WaitUntilAsync(Func<bool> condition, string message) => Eventually.TrueAsync(condition, Timeout, message);
}
