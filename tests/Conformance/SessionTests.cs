using Broker.Protocol;
using Conformance.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using MQTTnet;
using MQTTnet.Protocol;
using Xunit;
using static Conformance.Infrastructure.TestClients;
using NetVersion = MQTTnet.Formatter.MqttProtocolVersion;
using RawVersion = Broker.Protocol.MqttProtocolVersion;

namespace Conformance;

/// <summary>Session state across connections (3.1.2.4, 3.1.2.11.2, 4.1) and message expiry while queued (3.3.2.3.3).</summary>
public sealed class SessionTests
{
    private const int ClientDisconnectedEvent = 3;
    private const int SessionExpiredEvent = 12;
    private static readonly TimeSpan LogWait = TimeSpan.FromSeconds(5);

    private static Action<MqttClientOptionsBuilder> Persistent(uint expiry = 300) =>
        o => o.WithCleanSession(false).WithSessionExpiryInterval(expiry).WithKeepAlivePeriod(TimeSpan.Zero);

    [Theory]
    [InlineData(NetVersion.V311)]
    [InlineData(NetVersion.V500)]
    public async Task MQTT_3_1_2_5_Persistent_session_keeps_subscriptions_and_queues_QoS_1_while_offline(NetVersion version)
    {
        await using var broker = await BrokerInstance.StartAsync();
        using (var first = await MqttClients.ConnectAsync(broker, version, "keeper", Persistent()))
        {
            await first.SubscribeAsync("p/s", MqttQualityOfServiceLevel.AtLeastOnce);
            await first.DisconnectAsync();
        }
        using var publisher = await MqttClients.ConnectAsync(broker, version);
        await publisher.PublishAsync("p/s", "while-offline", MqttQualityOfServiceLevel.AtLeastOnce);

        using var client = MqttClients.Factory.CreateMqttClient();
        var messages = new MessageCollector(client);
        var options = MqttClients.Options(broker, version, "keeper");
        Persistent()(options);
        var result = await client.ConnectAsync(options.Build());
        Assert.True(result.IsSessionPresent);
        Assert.Equal("while-offline", (await messages.NextAsync()).ConvertPayloadToString());
        // The subscription survived too: live messages flow without subscribing again.
        await publisher.PublishAsync("p/s", "live", MqttQualityOfServiceLevel.AtLeastOnce);
        Assert.Equal("live", (await messages.NextAsync()).ConvertPayloadToString());
    }

    [Theory]
    [InlineData(NetVersion.V311)]
    [InlineData(NetVersion.V500)]
    public async Task MQTT_3_1_2_4_Clean_start_discards_the_previous_session(NetVersion version)
    {
        await using var broker = await BrokerInstance.StartAsync();
        using (var first = await MqttClients.ConnectAsync(broker, version, "cleaner", Persistent()))
        {
            await first.SubscribeAsync("p/s", MqttQualityOfServiceLevel.AtLeastOnce);
            await first.DisconnectAsync();
        }
        using var publisher = await MqttClients.ConnectAsync(broker, version);
        await publisher.PublishAsync("p/s", "queued", MqttQualityOfServiceLevel.AtLeastOnce);

        var (client, messages) = await SubscriberAsync(broker, version, "marker", clientId: "cleaner",
            configure: o => o.WithCleanSession(true));
        using var _ = client;
        await publisher.PublishAsync("p/s", "live", MqttQualityOfServiceLevel.AtLeastOnce);
        await publisher.PublishAsync("marker", "marker", MqttQualityOfServiceLevel.AtLeastOnce);
        // Neither the queued message nor the old subscription survived.
        Assert.Equal("marker", (await messages.NextAsync()).Topic);
    }

    [Fact]
    public async Task MQTT_3_1_2_23_Session_Expiry_0_ends_the_session_at_disconnect()
    {
        await using var broker = await BrokerInstance.StartAsync();
        using (var first = await MqttClients.ConnectAsync(broker, V500, "brief", o => o.WithCleanSession(false).WithSessionExpiryInterval(0)))
        {
            await first.SubscribeAsync("p/s", MqttQualityOfServiceLevel.AtLeastOnce);
            await first.DisconnectAsync();
        }
        await broker.Logs.WaitForAsync(ClientDisconnectedEvent, "Client brief disconnected", LogWait);
        using var client = MqttClients.Factory.CreateMqttClient();
        var result = await client.ConnectAsync(MqttClients.Options(broker, V500, "brief").WithCleanSession(false).WithSessionExpiryInterval(60).Build());
        Assert.False(result.IsSessionPresent);
    }

    [Fact]
    public async Task MQTT_4_1_0_2_Session_is_discarded_after_its_expiry_interval()
    {
        var time = new FakeTimeProvider();
        await using var broker = await BrokerInstance.StartAsync(configureServices: s => s.AddSingleton<TimeProvider>(time));
        using (var first = await MqttClients.ConnectAsync(broker, V500, "expiring", Persistent(expiry: 10)))
        {
            await first.DisconnectAsync();
        }
        await broker.Logs.WaitForAsync(ClientDisconnectedEvent, "Client expiring disconnected", LogWait);
        time.Advance(TimeSpan.FromSeconds(11));
        await broker.Logs.WaitForAsync(SessionExpiredEvent, "expiring", LogWait);
        using var client = MqttClients.Factory.CreateMqttClient();
        var options = MqttClients.Options(broker, V500, "expiring");
        Persistent()(options);
        Assert.False((await client.ConnectAsync(options.Build())).IsSessionPresent);
    }

    [Fact]
    public async Task MQTT_3_3_2_6_Message_Expiry_Interval_is_forwarded_as_the_time_left()
    {
        var time = new FakeTimeProvider();
        await using var broker = await BrokerInstance.StartAsync(configureServices: s => s.AddSingleton<TimeProvider>(time));
        using (var first = await MqttClients.ConnectAsync(broker, V500, "later", Persistent()))
        {
            await first.SubscribeAsync("e/#", MqttQualityOfServiceLevel.AtLeastOnce);
            await first.DisconnectAsync();
        }
        using var publisher = await MqttClients.ConnectAsync(broker, V500, configure: o => o.WithKeepAlivePeriod(TimeSpan.Zero));
        await publisher.PublishAsync(new MqttApplicationMessageBuilder().WithTopic("e/short").WithPayload("short")
            .WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).WithMessageExpiryInterval(10).Build());
        await publisher.PublishAsync(new MqttApplicationMessageBuilder().WithTopic("e/long").WithPayload("long")
            .WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).WithMessageExpiryInterval(60).Build());
        time.Advance(TimeSpan.FromSeconds(20));

        using var client = MqttClients.Factory.CreateMqttClient();
        var messages = new MessageCollector(client);
        var options = MqttClients.Options(broker, V500, "later");
        Persistent()(options);
        await client.ConnectAsync(options.Build());
        // [MQTT-3.3.2-5] the expired one is not delivered; the other carries what is left of its 60 s.
        var m = await messages.NextAsync();
        Assert.Equal("e/long", m.Topic);
        Assert.Equal(40u, m.MessageExpiryInterval);
    }

    private static MqttProperties? SessionProperties(RawVersion version)
        => version == RawVersion.V500 ? new MqttProperties { SessionExpiryInterval = 300 } : null;

    [Theory]
    [InlineData(RawVersion.V311)]
    [InlineData(RawVersion.V500)]
    public async Task MQTT_4_4_0_1_Unacknowledged_PUBLISH_and_PUBREL_are_resent_with_their_ids_after_reconnect(RawVersion version)
    {
        await using var broker = await BrokerInstance.StartAsync();
        ushort qos1Id, qos2Id;
        await using (var raw = await RawConnectedAsync(broker, version, "resend", cleanStart: false, properties: SessionProperties(version)))
        {
            await raw.SendAsync(new SubscribePacket { PacketId = 1, Subscriptions = [new("r/#", QualityOfService.ExactlyOnce)] }, version);
            await raw.ExpectAsync<SubAckPacket>(version);
            using var publisher = await MqttClients.ConnectAsync(broker, version == RawVersion.V500 ? V500 : V311);
            await publisher.PublishAsync("r/1", "one", MqttQualityOfServiceLevel.AtLeastOnce);
            await publisher.PublishAsync("r/2", "two", MqttQualityOfServiceLevel.ExactlyOnce);
            qos1Id = (await raw.ExpectAsync<PublishPacket>(version)).PacketId;
            qos2Id = (await raw.ExpectAsync<PublishPacket>(version)).PacketId;
            // The QoS 2 message gets as far as PUBREL; neither is completed before the connection drops.
            await raw.SendAsync(new PubRecPacket { PacketId = qos2Id }, version);
            await raw.ExpectAsync<PubRelPacket>(version);
        }
        await broker.Logs.WaitForAsync(ClientDisconnectedEvent, "Client resend disconnected", LogWait);

        await using var again = await RawConnectedAsync(broker, version, "resend", cleanStart: false, properties: SessionProperties(version));
        var resent = await again.ExpectAsync<PublishPacket>(version);
        // [MQTT-3.3.1-1] DUP 1 on a redelivery, same packet id.
        Assert.True(resent.Dup);
        Assert.Equal(qos1Id, resent.PacketId);
        Assert.Equal("r/1", resent.Topic);
        // [MQTT-4.3.3-6 (5.0)] after PUBREL only the PUBREL is resent, not the PUBLISH.
        Assert.Equal(qos2Id, (await again.ExpectAsync<PubRelPacket>(version)).PacketId);
        await again.SendAsync(new PubAckPacket { PacketId = qos1Id }, version);
        await again.SendAsync(new PubCompPacket { PacketId = qos2Id }, version);
        await Assert.ThrowsAsync<TimeoutException>(() => again.ReceiveAsync(version, MessageCollector.Absence));
    }

    [Theory]
    [InlineData(RawVersion.V311)]
    [InlineData(RawVersion.V500)]
    public async Task MQTT_4_4_0_1_Messages_queued_while_offline_are_sent_once_after_reconnect(RawVersion version)
    {
        // Regression: the send loop could take a queued message while the CONNACK path resent "in-flight"
        // messages, so one message went out twice on the new connection.
        const int count = 50;
        await using var broker = await BrokerInstance.StartAsync();
        await using (var raw = await RawConnectedAsync(broker, version, "queued", cleanStart: false, properties: SessionProperties(version)))
        {
            await raw.SendAsync(new SubscribePacket { PacketId = 1, Subscriptions = [new("q", QualityOfService.AtLeastOnce)] }, version);
            await raw.ExpectAsync<SubAckPacket>(version);
            await raw.SendAsync(new DisconnectPacket(), version);
            await raw.ReadUntilClosedAsync(version, LogWait);
        }
        await broker.Logs.WaitForAsync(ClientDisconnectedEvent, "Client queued disconnected", LogWait);
        using (var publisher = await MqttClients.ConnectAsync(broker, version == RawVersion.V500 ? V500 : V311))
        {
            for (int i = 0; i < count; i++)
            {
                await publisher.PublishAsync("q", i.ToString(), MqttQualityOfServiceLevel.AtLeastOnce);
            }
        }
        await using var again = await RawConnectedAsync(broker, version, "queued", cleanStart: false, properties: SessionProperties(version));
        var payloads = new List<string>();
        for (int i = 0; i < count; i++)
        {
            var p = await again.ExpectAsync<PublishPacket>(version);
            Assert.False(p.Dup);
            payloads.Add(System.Text.Encoding.UTF8.GetString(p.Payload.Span));
            await again.SendAsync(new PubAckPacket { PacketId = p.PacketId }, version);
        }
        Assert.Equal(Enumerable.Range(0, count).Select(i => i.ToString()), payloads);
        await Assert.ThrowsAsync<TimeoutException>(() => again.ReceiveAsync(version, MessageCollector.Absence));
    }
}
