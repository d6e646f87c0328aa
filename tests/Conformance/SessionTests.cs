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
            await raw.SubscribeAsync("r/#", QualityOfService.ExactlyOnce, version);
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
        // [MQTT-4.4.0-1] resent once, on the reconnect only.
        await again.AssertNothingBeforePingRespAsync(version);
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
            await raw.SubscribeAsync("q", QualityOfService.AtLeastOnce, version);
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
        await again.AssertNothingBeforePingRespAsync(version);
    }
    [Theory]
    [InlineData(QualityOfService.AtLeastOnce)]
    [InlineData(QualityOfService.ExactlyOnce)]
    public async Task MQTT_4_3_3_7_Message_already_sent_is_resent_after_its_expiry_and_one_never_sent_is_not(QualityOfService qos)
    {
        var v5 = RawVersion.V500;
        var time = new FakeTimeProvider();
        await using var broker = await BrokerInstance.StartAsync(configureServices: s => s.AddSingleton<TimeProvider>(time));
        // Receive Maximum 1: the first message is sent and left unacknowledged, the second waits in the queue.
        var props = new MqttProperties { SessionExpiryInterval = 300, ReceiveMaximum = 1 };
        ushort sentId;
        await using (var raw = await RawConnectedAsync(broker, v5, "expiring", cleanStart: false, properties: props))
        {
            await raw.SubscribeAsync("e/#", qos, v5);
            using var publisher = await MqttClients.ConnectAsync(broker, V500, configure: o => o.WithKeepAlivePeriod(TimeSpan.Zero));
            foreach (var topic in new[] { "e/sent", "e/queued" })
            {
                await publisher.PublishAsync(new MqttApplicationMessageBuilder().WithTopic(topic).WithPayload(topic)
                    .WithQualityOfServiceLevel((MqttQualityOfServiceLevel)qos).WithMessageExpiryInterval(10).Build());
            }
            var sent = await raw.ExpectAsync<PublishPacket>(v5);
            Assert.Equal(("e/sent", 10u), (sent.Topic, sent.Properties?.MessageExpiryInterval));
            sentId = sent.PacketId;
        }
        await broker.Logs.WaitForAsync(ClientDisconnectedEvent, "Client expiring disconnected", LogWait);
        time.Advance(TimeSpan.FromSeconds(30));

        await using var again = await RawConnectedAsync(broker, v5, "expiring", cleanStart: false, properties: props);
        // [MQTT-4.3.3-7] (QoS 2) and [MQTT-3.3.2-5] (onward delivery had started): the sent one comes again, with DUP
        // and its id, although its 10 s are over; what is left of its expiry is 0.
        var resent = await again.ExpectAsync<PublishPacket>(v5);
        Assert.Equal(("e/sent", true, sentId, 0u), (resent.Topic, resent.Dup, resent.PacketId, resent.Properties?.MessageExpiryInterval));
        if (qos == QualityOfService.ExactlyOnce)
        {
            // [MQTT-4.3.3-13] the exchange goes on to the end although the message expired.
            await again.SendAsync(new PubRecPacket { PacketId = sentId }, v5);
            Assert.Equal(sentId, (await again.ExpectAsync<PubRelPacket>(v5)).PacketId);
            await again.SendAsync(new PubCompPacket { PacketId = sentId }, v5);
        }
        else
        {
            await again.SendAsync(new PubAckPacket { PacketId = sentId }, v5);
        }
        // [MQTT-3.3.2-5] the queued one never started onward delivery: it expired and is not sent.
        await again.AssertNothingBeforePingRespAsync(v5);
    }

    [Fact]
    public async Task MQTT_4_3_3_13_Broker_completes_an_incoming_QoS_2_exchange_after_the_message_expired()
    {
        var v5 = RawVersion.V500;
        var time = new FakeTimeProvider();
        await using var broker = await BrokerInstance.StartAsync(configureServices: s => s.AddSingleton<TimeProvider>(time));
        await using var raw = await RawConnectedAsync(broker, v5, "late-rel");
        await raw.SendAsync(new PublishPacket
        {
            Topic = "x", Payload = "x"u8.ToArray(), QoS = QualityOfService.ExactlyOnce, PacketId = 3,
            Properties = new MqttProperties { MessageExpiryInterval = 1 },
        }, v5);
        await raw.ExpectAsync<PubRecPacket>(v5);
        time.Advance(TimeSpan.FromSeconds(5));
        await raw.SendAsync(new PubRelPacket { PacketId = 3 }, v5);
        var comp = await raw.ExpectAsync<PubCompPacket>(v5);
        Assert.Equal((3, ReasonCode.Success), (comp.PacketId, comp.ReasonCode));
    }

    [Fact]
    public async Task Session_Expiry_0_on_DISCONNECT_ends_a_persistent_session()
    {
        var v5 = RawVersion.V500;
        await using var broker = await BrokerInstance.StartAsync();
        await using (var raw = await RawConnectedAsync(broker, v5, "ending", cleanStart: false, properties: new MqttProperties { SessionExpiryInterval = 300 }))
        {
            await raw.SendAsync(new DisconnectPacket { Properties = new MqttProperties { SessionExpiryInterval = 0 } }, v5);
            Assert.Empty(await raw.ReadUntilClosedAsync(v5, LogWait));
        }
        await broker.Logs.WaitForAsync(ClientDisconnectedEvent, "Client ending disconnected", LogWait);
        await using var again = await RawClient.ConnectAsync(broker);
        Assert.False((await again.HandshakeAsync(v5, "ending", 60, cleanStart: false, properties: new MqttProperties { SessionExpiryInterval = 300 })).SessionPresent);
    }

    [Fact]
    public async Task Session_Expiry_on_DISCONNECT_replaces_the_one_from_CONNECT()
    {
        var v5 = RawVersion.V500;
        var time = new FakeTimeProvider();
        await using var broker = await BrokerInstance.StartAsync(configureServices: s => s.AddSingleton<TimeProvider>(time));
        foreach (var (clientId, onDisconnect) in new[] { ("extended", (uint?)600), ("control", null) })
        {
            await using var raw = await RawConnectedAsync(broker, v5, clientId, cleanStart: false, properties: new MqttProperties { SessionExpiryInterval = 10 });
            await raw.SendAsync(new DisconnectPacket { Properties = onDisconnect is { } e ? new MqttProperties { SessionExpiryInterval = e } : null }, v5);
            await raw.ReadUntilClosedAsync(v5, LogWait);
            await broker.Logs.WaitForAsync(ClientDisconnectedEvent, $"Client {clientId} disconnected", LogWait);
        }
        time.Advance(TimeSpan.FromSeconds(60));
        // The expiry pass that removed the control session (10 s from CONNECT) also saw the extended one.
        await broker.Logs.WaitForAsync(SessionExpiredEvent, "control", LogWait);
        await using var again = await RawClient.ConnectAsync(broker);
        Assert.True((await again.HandshakeAsync(v5, "extended", 60, cleanStart: false, properties: new MqttProperties { SessionExpiryInterval = 10 })).SessionPresent);
    }

    [Fact]
    public async Task Session_Expiry_on_DISCONNECT_after_0_on_CONNECT_is_a_protocol_error()
    {
        var v5 = RawVersion.V500;
        await using var broker = await BrokerInstance.StartAsync();
        var (subscriber, messages) = await SubscriberAsync(broker, V500, "will/#");
        using var _ = subscriber;
        await using (var raw = await RawConnectedAsync(broker, v5, "zero-then-more", cleanStart: false,
            will: new WillMessage { Topic = "will/zero-then-more", Payload = "gone"u8.ToArray() }))
        {
            // 3.14.2.2.2: Session Expiry 0 in CONNECT, non-zero in DISCONNECT: Protocol Error.
            await raw.SendAsync(new DisconnectPacket { Properties = new MqttProperties { SessionExpiryInterval = 30 } }, v5);
            var answers = await raw.ReadUntilClosedAsync(v5, LogWait);
            var disconnect = Assert.IsType<DisconnectPacket>(Assert.Single(answers));
            Assert.Equal(ReasonCode.ProtocolError, disconnect.ReasonCode);
            Assert.False(string.IsNullOrEmpty(disconnect.Properties?.ReasonString));
        }
        // Not a normal disconnection: the will is published, and the session ended with the connection.
        Assert.Equal("gone", (await messages.NextAsync()).ConvertPayloadToString());
        await using var again = await RawClient.ConnectAsync(broker);
        Assert.False((await again.HandshakeAsync(v5, "zero-then-more", 60, cleanStart: false, properties: new MqttProperties { SessionExpiryInterval = 30 })).SessionPresent);
    }
}
