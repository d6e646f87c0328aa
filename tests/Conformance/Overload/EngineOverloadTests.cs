using Broker.Connections;
using Broker.Diagnostics;
using Broker.Protocol;
using Conformance.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Xunit;

namespace Conformance.Overload;

/// <summary>
/// The broker as a whole behind (docs/overload.md): while the socket engine lags, a publisher is read one PUBLISH at a
/// time, everyone else is served, a held publisher is not expired for silence, and catching up lets the held go a
/// share at a time. The gate is driven by hand here (its probe is off), so the lags are exact, not whatever this
/// machine's load makes them.
/// </summary>
public sealed class EngineOverloadTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);
    private static readonly TimeSpan Behind = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan Quick = TimeSpan.FromMilliseconds(1);

    [Fact]
    public async Task While_the_engine_is_behind_a_publisher_is_read_one_PUBLISH_at_a_time_others_are_served_and_nothing_is_lost()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var broker = await StartAsync(time);
        var gate = broker.Services.GetRequiredService<EngineOverloadGate>();
        await using var subscriber = await RawClient.ConnectAsync(broker);
        await subscriber.HandshakeAsync(MqttProtocolVersion.V311, "eng-sub", 60);
        await subscriber.SubscribeAsync("eng/#", QualityOfService.AtLeastOnce, MqttProtocolVersion.V311, Timeout);
        // Keep Alive 1 s: held for longer than 1.5 s, it must not be expired for the silence the broker caused.
        await using var publisher = await RawClient.ConnectAsync(broker);
        await publisher.HandshakeAsync(MqttProtocolVersion.V311, "eng-pub", keepAlive: 1);
        await using var idle = await RawClient.ConnectAsync(broker);
        await idle.HandshakeAsync(MqttProtocolVersion.V311, "eng-idle", 60);

        gate.OnLagMeasured(Behind);
        Assert.True(gate.IsBehind);
        var three = new System.Buffers.ArrayBufferWriter<byte>();
        for (ushort id = 1; id <= 3; id++)
        {
            MqttPacketWriter.Write(three, new PublishPacket { Topic = "eng/data", QoS = QualityOfService.AtLeastOnce, PacketId = id, Payload = new[] { (byte)id } },
                MqttProtocolVersion.V311);
        }
        await publisher.SendAsync(three.WrittenMemory);

        Assert.Equal(1, Assert.IsType<PubAckPacket>(await publisher.ReceiveAsync(MqttProtocolVersion.V311, Timeout)).PacketId);
        await Eventually.TrueAsync(() => Connection(broker, "eng-pub")?.IsHeldBack == true, Timeout, "the publisher was not held after its PUBLISH");
        Assert.Equal(1, gate.HeldCount);
        await ExpectDeliveryAsync(subscriber, 1);
        // A client that only pings, and one that only acknowledges, are not held.
        await idle.SendAsync(new PingReqPacket(), MqttProtocolVersion.V311);
        Assert.IsType<PingRespPacket>(await idle.ReceiveAsync(MqttProtocolVersion.V311, Timeout));
        Assert.False(Connection(broker, "eng-sub")!.IsHeldBack);

        await time.AdvanceAsync(TimeSpan.FromSeconds(2));
        await Assert.ThrowsAsync<TimeoutException>(() => publisher.ReceiveAsync(MqttProtocolVersion.V311, TimeSpan.FromMilliseconds(100)));
        Assert.True(Connection(broker, "eng-pub")?.IsHeldBack, "the publisher went on (or was expired) while the engine was behind");

        // Caught up: the publisher goes on where it stopped.
        gate.OnLagMeasured(Quick);
        Assert.False(gate.IsBehind);
        Assert.Equal(2, Assert.IsType<PubAckPacket>(await publisher.ReceiveAsync(MqttProtocolVersion.V311, Timeout)).PacketId);
        Assert.Equal(3, Assert.IsType<PubAckPacket>(await publisher.ReceiveAsync(MqttProtocolVersion.V311, Timeout)).PacketId);
        await ExpectDeliveryAsync(subscriber, 2);
        await ExpectDeliveryAsync(subscriber, 3);
        Assert.Equal(0, gate.HeldCount);
        Assert.False(Connection(broker, "eng-pub")!.IsHeldBack);
        Assert.DoesNotContain(broker.Logs.Messages(3), m => m.Contains("Client eng-pub disconnected", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Once_caught_up_the_held_publishers_go_a_share_at_a_time_oldest_first()
    {
        const int publishers = 20;
        await using var broker = await StartAsync();
        var gate = broker.Services.GetRequiredService<EngineOverloadGate>();
        var clients = new List<RawClient>();
        try
        {
            gate.OnLagMeasured(Behind);
            for (int i = 0; i < publishers; i++)
            {
                var client = await RawClient.ConnectAsync(broker);
                clients.Add(client);
                await client.HandshakeAsync(MqttProtocolVersion.V311, "share-" + i, 60);
                await client.SendAsync(new PublishPacket { Topic = "share/" + i, Payload = "x"u8.ToArray() }, MqttProtocolVersion.V311);
                int held = i + 1;
                await Eventually.TrueAsync(() => gate.HeldCount == held, Timeout, $"publisher {i} was not held");
            }

            // A lag between a quarter of the threshold and the threshold: still behind, nobody goes.
            gate.OnLagMeasured(TimeSpan.FromMilliseconds(10));
            Assert.Equal(publishers, gate.HeldCount);
            // Each quick answer lets a quarter go, at least 8: 20 -> 12 -> 4 -> 0, the oldest first.
            gate.OnLagMeasured(Quick);
            Assert.Equal(12, gate.HeldCount);
            await Eventually.TrueAsync(() => Enumerable.Range(0, 8).All(i => Connection(broker, "share-" + i)?.IsHeldBack == false), Timeout,
                "the first eight held were not the first released");
            Assert.All(Enumerable.Range(8, 12), i => Assert.True(Connection(broker, "share-" + i)!.IsHeldBack));
            gate.OnLagMeasured(Quick);
            Assert.Equal(4, gate.HeldCount);
            gate.OnLagMeasured(Quick);
            Assert.Equal(0, gate.HeldCount);
            await Eventually.TrueAsync(() => Enumerable.Range(0, publishers).All(i => Connection(broker, "share-" + i)?.IsHeldBack == false), Timeout,
                "a publisher stayed held after everyone was released");
        }
        finally
        {
            foreach (var client in clients)
            {
                await client.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task The_broker_measures_its_socket_engine_while_clients_publish()
    {
        // The real probe at the default threshold (test brokers have it off): it measures while a client publishes.
        await using var broker = await BrokerInstance.StartAsync(new Dictionary<string, string?> { ["Broker:Limits:EngineLagMilliseconds"] = "20" },
            minimumLogLevel: Microsoft.Extensions.Logging.LogLevel.Warning);
        var metrics = broker.Services.GetRequiredService<BrokerMetrics>();
        int measured = 0;
        using var listener = new System.Diagnostics.Metrics.MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (ReferenceEquals(instrument.Meter, metrics.Meter) && instrument.Name == "mqtt.socket_engine.lag")
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<double>((_, _, _, _) => Interlocked.Increment(ref measured));
        listener.Start();
        await using var publisher = await RawClient.ConnectAsync(broker);
        await publisher.HandshakeAsync(MqttProtocolVersion.V311, "probe-pub", 60);

        long start = TimeProvider.System.GetTimestamp();
        while (Volatile.Read(ref measured) == 0)
        {
            Assert.True(TimeProvider.System.GetElapsedTime(start) < Timeout, "no socket engine lag was measured while a client published");
            await publisher.SendAsync(new PublishPacket { Topic = "probe/x", Payload = "x"u8.ToArray() }, MqttProtocolVersion.V311);
            await Task.Delay(10, TestContext.Current.CancellationToken);
        }
    }

    private static Task<BrokerInstance> StartAsync(TimeProvider? time = null) => BrokerInstance.StartAsync(
        configureServices: services =>
        {
            if (time is not null)
            {
                services.AddSingleton(time);
            }
            services.RemoveAll<EngineOverloadGate>();
            services.AddSingleton(sp => new EngineOverloadGate(TimeSpan.FromMilliseconds(20), sp.GetRequiredService<BrokerMetrics>(), NullLogger.Instance, measure: false));
        },
        minimumLogLevel: Microsoft.Extensions.Logging.LogLevel.Information);

    private static async Task ExpectDeliveryAsync(RawClient subscriber, byte payload)
    {
        var publish = Assert.IsType<PublishPacket>(await subscriber.ReceiveAsync(MqttProtocolVersion.V311, Timeout));
        Assert.Equal([payload], publish.Payload.ToArray());
        await subscriber.SendAsync(new PubAckPacket { PacketId = publish.PacketId }, MqttProtocolVersion.V311);
    }

    private static MqttConnection? Connection(BrokerInstance broker, string clientId) =>
        broker.Services.GetRequiredService<ConnectionRegistry>().Snapshot().FirstOrDefault(c => c.ClientId == clientId);
}
