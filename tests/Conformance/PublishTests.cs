using Broker.Protocol;
using Conformance.Infrastructure;
using MQTTnet;
using MQTTnet.Protocol;
using Xunit;
using static Conformance.Infrastructure.TestClients;
using NetVersion = MQTTnet.Formatter.MqttProtocolVersion;
using RawVersion = Broker.Protocol.MqttProtocolVersion;

namespace Conformance;

/// <summary>PUBLISH and its acknowledgement flows in both directions (3.3 - 3.7, 4.3).</summary>
public sealed class PublishTests
{
    private static PublishPacket Publish(string topic, string payload, QualityOfService qos, ushort packetId = 0, bool dup = false)
        => new() { Topic = topic, Payload = System.Text.Encoding.UTF8.GetBytes(payload), QoS = qos, PacketId = packetId, Dup = dup };

    [Theory]
    [InlineData(NetVersion.V311, MqttQualityOfServiceLevel.AtMostOnce)]
    [InlineData(NetVersion.V311, MqttQualityOfServiceLevel.AtLeastOnce)]
    [InlineData(NetVersion.V311, MqttQualityOfServiceLevel.ExactlyOnce)]
    [InlineData(NetVersion.V500, MqttQualityOfServiceLevel.AtMostOnce)]
    [InlineData(NetVersion.V500, MqttQualityOfServiceLevel.AtLeastOnce)]
    [InlineData(NetVersion.V500, MqttQualityOfServiceLevel.ExactlyOnce)]
    public async Task MQTT_4_3_Message_is_delivered_at_each_QoS(NetVersion version, MqttQualityOfServiceLevel qos)
    {
        await using var broker = await BrokerInstance.StartAsync();
        var (subscriber, messages) = await SubscriberAsync(broker, version, "q/+");
        using var _ = subscriber;
        using var publisher = await MqttClients.ConnectAsync(broker, version);
        var result = await publisher.PublishAsync("q/a", "hello", qos);
        Assert.True(result.IsSuccess, result.ReasonCode.ToString());
        var message = await messages.NextAsync();
        Assert.Equal("hello", message.ConvertPayloadToString());
        Assert.Equal(qos, message.QualityOfServiceLevel);
    }

    [Theory]
    [InlineData(NetVersion.V311, MqttQualityOfServiceLevel.ExactlyOnce, MqttQualityOfServiceLevel.AtLeastOnce)]
    [InlineData(NetVersion.V311, MqttQualityOfServiceLevel.AtLeastOnce, MqttQualityOfServiceLevel.AtMostOnce)]
    [InlineData(NetVersion.V500, MqttQualityOfServiceLevel.ExactlyOnce, MqttQualityOfServiceLevel.AtLeastOnce)]
    [InlineData(NetVersion.V500, MqttQualityOfServiceLevel.AtMostOnce, MqttQualityOfServiceLevel.ExactlyOnce)]
    public async Task MQTT_3_8_4_8_Delivered_at_the_lower_of_published_and_granted_QoS(NetVersion version,
        MqttQualityOfServiceLevel published, MqttQualityOfServiceLevel granted)
    {
        await using var broker = await BrokerInstance.StartAsync();
        var (subscriber, messages) = await SubscriberAsync(broker, version, "q", granted);
        using var _ = subscriber;
        using var publisher = await MqttClients.ConnectAsync(broker, version);
        await publisher.PublishAsync("q", "x", published);
        var message = await messages.NextAsync();
        Assert.Equal((MqttQualityOfServiceLevel)Math.Min((int)published, (int)granted), message.QualityOfServiceLevel);
    }

    [Theory]
    [InlineData(RawVersion.V311)]
    [InlineData(RawVersion.V500)]
    public async Task MQTT_4_3_2_4_QoS_1_PUBLISH_is_answered_with_PUBACK_with_its_packet_id(RawVersion version)
    {
        await using var broker = await BrokerInstance.StartAsync();
        await using var raw = await RawConnectedAsync(broker, version, "pub1");
        await raw.SendAsync(Publish("t", "x", QualityOfService.AtLeastOnce, 4711), version);
        var ack = await raw.ExpectAsync<PubAckPacket>(version);
        Assert.Equal(4711, ack.PacketId);
    }

    [Theory]
    [InlineData(RawVersion.V311)]
    [InlineData(RawVersion.V500)]
    public async Task MQTT_4_3_3_8_QoS_2_PUBLISH_gets_PUBREC_and_PUBREL_gets_PUBCOMP(RawVersion version)
    {
        await using var broker = await BrokerInstance.StartAsync();
        await using var raw = await RawConnectedAsync(broker, version, "pub2");
        await raw.SendAsync(Publish("t", "x", QualityOfService.ExactlyOnce, 900), version);
        Assert.Equal(900, (await raw.ExpectAsync<PubRecPacket>(version)).PacketId);
        // [MQTT-4.3.3-11] PUBREL is answered with PUBCOMP carrying the same id.
        await raw.SendAsync(new PubRelPacket { PacketId = 900 }, version);
        Assert.Equal(900, (await raw.ExpectAsync<PubCompPacket>(version)).PacketId);
    }

    [Theory]
    [InlineData(RawVersion.V311)]
    [InlineData(RawVersion.V500)]
    public async Task MQTT_4_3_3_10_QoS_2_resend_before_PUBREL_is_not_delivered_twice(RawVersion version)
    {
        await using var broker = await BrokerInstance.StartAsync();
        var (subscriber, messages) = await SubscriberAsync(broker, version == RawVersion.V500 ? V500 : V311, "t");
        using var _ = subscriber;
        await using var raw = await RawConnectedAsync(broker, version, "pub2");
        await raw.SendAsync(Publish("t", "once", QualityOfService.ExactlyOnce, 7), version);
        await raw.ExpectAsync<PubRecPacket>(version);
        await raw.SendAsync(Publish("t", "once", QualityOfService.ExactlyOnce, 7, dup: true), version);
        Assert.Equal(7, (await raw.ExpectAsync<PubRecPacket>(version)).PacketId);
        await raw.SendAsync(new PubRelPacket { PacketId = 7 }, version);
        await raw.ExpectAsync<PubCompPacket>(version);
        // [MQTT-4.3.3-12] after PUBREL the same id is a new message.
        await raw.SendAsync(Publish("t", "again", QualityOfService.ExactlyOnce, 7), version);
        await raw.ExpectAsync<PubRecPacket>(version);

        Assert.Equal("once", (await messages.NextAsync()).ConvertPayloadToString());
        Assert.Equal("again", (await messages.NextAsync()).ConvertPayloadToString());
    }

    [Theory]
    [InlineData(RawVersion.V311)]
    [InlineData(RawVersion.V500)]
    public async Task MQTT_4_3_2_1_Server_sends_QoS_1_with_a_packet_id_and_frees_it_on_PUBACK(RawVersion version)
    {
        await using var broker = await BrokerInstance.StartAsync();
        await using var raw = await RawConnectedAsync(broker, version, "sub1");
        await raw.SubscribeAsync("t", QualityOfService.AtLeastOnce, version);
        using var publisher = await MqttClients.ConnectAsync(broker, version == RawVersion.V500 ? V500 : V311);
        await publisher.PublishAsync("t", "one", MqttQualityOfServiceLevel.AtLeastOnce);
        var first = await raw.ExpectAsync<PublishPacket>(version);
        // [MQTT-4.3.2-2 (5.0)] QoS 1, DUP 0 on the first send, a non-zero packet id.
        Assert.Equal(QualityOfService.AtLeastOnce, first.QoS);
        Assert.False(first.Dup);
        Assert.NotEqual(0, first.PacketId);
        await raw.SendAsync(new PubAckPacket { PacketId = first.PacketId }, version);
        await publisher.PublishAsync("t", "two", MqttQualityOfServiceLevel.AtLeastOnce);
        var second = await raw.ExpectAsync<PublishPacket>(version);
        Assert.Equal("two", System.Text.Encoding.UTF8.GetString(second.Payload.Span));
    }

    [Theory]
    [InlineData(RawVersion.V311)]
    [InlineData(RawVersion.V500)]
    public async Task MQTT_4_3_3_4_Server_answers_PUBREC_with_PUBREL_and_completes_on_PUBCOMP(RawVersion version)
    {
        await using var broker = await BrokerInstance.StartAsync();
        await using var raw = await RawConnectedAsync(broker, version, "sub2");
        await raw.SubscribeAsync("t", QualityOfService.ExactlyOnce, version);
        using var publisher = await MqttClients.ConnectAsync(broker, version == RawVersion.V500 ? V500 : V311);
        await publisher.PublishAsync("t", "x", MqttQualityOfServiceLevel.ExactlyOnce);
        var publish = await raw.ExpectAsync<PublishPacket>(version);
        Assert.Equal(QualityOfService.ExactlyOnce, publish.QoS);
        Assert.False(publish.Dup);
        Assert.NotEqual(0, publish.PacketId);
        await raw.SendAsync(new PubRecPacket { PacketId = publish.PacketId }, version);
        var rel = await raw.ExpectAsync<PubRelPacket>(version);
        Assert.Equal(publish.PacketId, rel.PacketId);
        await raw.SendAsync(new PubCompPacket { PacketId = publish.PacketId }, version);
        // The exchange is complete: the next message flows normally.
        await publisher.PublishAsync("t", "y", MqttQualityOfServiceLevel.ExactlyOnce);
        Assert.Equal("y", System.Text.Encoding.UTF8.GetString((await raw.ExpectAsync<PublishPacket>(version)).Payload.Span));
    }

    [Theory]
    [InlineData(RawVersion.V311)]
    [InlineData(RawVersion.V500)]
    public async Task MQTT_3_3_1_3_Incoming_DUP_flag_is_not_propagated(RawVersion version)
    {
        await using var broker = await BrokerInstance.StartAsync();
        await using var subscriber = await RawConnectedAsync(broker, version, "sub");
        await subscriber.SubscribeAsync("t", QualityOfService.AtLeastOnce, version);
        await using var publisher = await RawConnectedAsync(broker, version, "pub");
        await publisher.SendAsync(Publish("t", "x", QualityOfService.AtLeastOnce, 5, dup: true), version);
        await publisher.ExpectAsync<PubAckPacket>(version);
        Assert.False((await subscriber.ExpectAsync<PublishPacket>(version)).Dup);
    }

    [Theory]
    [InlineData(RawVersion.V311)]
    [InlineData(RawVersion.V500)]
    public async Task MQTT_3_12_4_1_PINGREQ_is_answered_with_PINGRESP(RawVersion version)
    {
        await using var broker = await BrokerInstance.StartAsync();
        await using var raw = await RawConnectedAsync(broker, version, "pinger");
        await raw.SendAsync([0xC0, 0x00]);
        await raw.ExpectAsync<PingRespPacket>(version);
    }

    [Fact]
    public async Task MQTT_3_3_4_9_Server_sends_no_more_than_the_client_Receive_Maximum()
    {
        var v5 = RawVersion.V500;
        await using var broker = await BrokerInstance.StartAsync();
        await using var raw = await RawConnectedAsync(broker, v5, "rm", properties: new MqttProperties { ReceiveMaximum = 1 });
        await raw.SubscribeAsync("t", QualityOfService.AtLeastOnce, v5);
        using var publisher = await MqttClients.ConnectAsync(broker, V500);
        await publisher.PublishAsync("t", "1", MqttQualityOfServiceLevel.AtLeastOnce);
        await publisher.PublishAsync("t", "2", MqttQualityOfServiceLevel.AtLeastOnce);
        var first = await raw.ExpectAsync<PublishPacket>(v5);
        // Both messages were routed before the publisher got its PUBACKs: the second waits for the window.
        await raw.AssertNothingBeforePingRespAsync(v5);
        await raw.SendAsync(new PubAckPacket { PacketId = first.PacketId }, v5);
        var second = await raw.ExpectAsync<PublishPacket>(v5);
        Assert.Equal("2", System.Text.Encoding.UTF8.GetString(second.Payload.Span));
    }

    [Fact]
    public async Task MQTT_3_3_4_7_Client_exceeding_the_broker_Receive_Maximum_gets_DISCONNECT_0x93()
    {
        var v5 = RawVersion.V500;
        await using var broker = await BrokerInstance.StartAsync(new Dictionary<string, string?> { ["Broker:Limits:ReceiveMaximum"] = "2" });
        await using var raw = await RawClient.ConnectAsync(broker);
        var ack = await raw.HandshakeAsync(v5, "greedy", 60);
        Assert.Equal((ushort)2, ack.Properties?.ReceiveMaximum);
        for (ushort id = 1; id <= 3; id++)
        {
            await raw.SendAsync(Publish("t", "x", QualityOfService.ExactlyOnce, id), v5);
        }
        var answers = await raw.ReadUntilClosedAsync(v5, TimeSpan.FromSeconds(5));
        Assert.Equal(3, answers.Count);
        Assert.IsType<PubRecPacket>(answers[0]);
        Assert.IsType<PubRecPacket>(answers[1]);
        Assert.Equal(ReasonCode.ReceiveMaximumExceeded, Assert.IsType<DisconnectPacket>(answers[2]).ReasonCode);
    }

    [Fact]
    public async Task MQTT_3_3_2_12_Server_accepts_inbound_topic_aliases()
    {
        var v5 = RawVersion.V500;
        await using var broker = await BrokerInstance.StartAsync();
        var (subscriber, messages) = await SubscriberAsync(broker, V500, "alias/#");
        using var _ = subscriber;
        await using var raw = await RawConnectedAsync(broker, v5, "aliaser");
        await raw.SendAsync(new PublishPacket { Topic = "alias/a", Payload = "1"u8.ToArray(), Properties = new MqttProperties { TopicAlias = 1 } }, v5);
        await raw.SendAsync(new PublishPacket { Topic = "", Payload = "2"u8.ToArray(), Properties = new MqttProperties { TopicAlias = 1 } }, v5);
        var first = await messages.NextAsync();
        var second = await messages.NextAsync();
        Assert.Equal(("alias/a", "1"), (first.Topic, first.ConvertPayloadToString()));
        Assert.Equal(("alias/a", "2"), (second.Topic, second.ConvertPayloadToString()));
    }

    [Fact]
    public async Task MQTT_3_3_2_7_Topic_alias_mappings_do_not_carry_over_to_a_new_connection()
    {
        var v5 = RawVersion.V500;
        await using var broker = await BrokerInstance.StartAsync();
        await using (var first = await RawConnectedAsync(broker, v5, "aliaser"))
        {
            await first.SendAsync(new PublishPacket { Topic = "alias/a", Payload = "1"u8.ToArray(), Properties = new MqttProperties { TopicAlias = 1 } }, v5);
            await first.SendAsync(new DisconnectPacket(), v5);
            await first.ReadUntilClosedAsync(v5, TimeSpan.FromSeconds(5));
        }
        await using var second = await RawConnectedAsync(broker, v5, "aliaser");
        await second.SendAsync(new PublishPacket { Topic = "", Payload = "2"u8.ToArray(), Properties = new MqttProperties { TopicAlias = 1 } }, v5);
        var answers = await second.ReadUntilClosedAsync(v5, TimeSpan.FromSeconds(5));
        var disconnect = Assert.IsType<DisconnectPacket>(Assert.Single(answers));
        Assert.True((byte)disconnect.ReasonCode >= 0x80);
    }

    [Fact]
    public async Task MQTT_3_3_2_11_Server_uses_no_topic_alias_above_the_client_maximum()
    {
        var v5 = RawVersion.V500;
        await using var broker = await BrokerInstance.StartAsync();
        await using var raw = await RawConnectedAsync(broker, v5, "aliased", properties: new MqttProperties { TopicAliasMaximum = 1 });
        await raw.SubscribeAsync("alias/#", QualityOfService.AtMostOnce, v5);
        using var publisher = await MqttClients.ConnectAsync(broker, V500);
        foreach (var topic in new[] { "alias/a", "alias/b", "alias/a", "alias/b" })
        {
            await publisher.PublishAsync(topic, topic);
        }
        var received = new List<PublishPacket>();
        for (int i = 0; i < 4; i++)
        {
            received.Add(await raw.ExpectAsync<PublishPacket>(v5));
        }
        Assert.All(received, p => Assert.True(p.Properties?.TopicAlias is null or 1, $"alias {p.Properties?.TopicAlias}"));
        // The first topic got alias 1; repeating it may omit the topic name. The payload says which topic was meant.
        Assert.Equal((ushort?)1, received[0].Properties?.TopicAlias);
        Assert.Equal("alias/a", received[0].Topic);
        Assert.Equal("alias/b", received[1].Topic);
        Assert.Null(received[1].Properties?.TopicAlias);
        Assert.True(received[2].Topic is "" or "alias/a");
        Assert.Equal((ushort?)1, received[2].Properties?.TopicAlias);
    }

    [Fact]
    public async Task MQTT_3_1_2_27_No_topic_alias_without_a_client_Topic_Alias_Maximum()
    {
        var v5 = RawVersion.V500;
        await using var broker = await BrokerInstance.StartAsync();
        await using var raw = await RawConnectedAsync(broker, v5, "plain");
        await raw.SubscribeAsync("t", QualityOfService.AtMostOnce, v5);
        using var publisher = await MqttClients.ConnectAsync(broker, V500);
        await publisher.PublishAsync("t", "1");
        await publisher.PublishAsync("t", "2");
        for (int i = 0; i < 2; i++)
        {
            var p = await raw.ExpectAsync<PublishPacket>(v5);
            Assert.Equal("t", p.Topic);
            Assert.Null(p.Properties?.TopicAlias);
        }
    }

    [Fact]
    public async Task MQTT_3_3_2_17_Application_properties_are_forwarded_unaltered()
    {
        await using var broker = await BrokerInstance.StartAsync();
        var (subscriber, messages) = await SubscriberAsync(broker, V500, "props");
        using var _ = subscriber;
        using var publisher = await MqttClients.ConnectAsync(broker, V500);
        await publisher.PublishAsync(new MqttApplicationMessageBuilder()
            .WithTopic("props").WithPayload("{}")
            .WithUserProperty("b", "2").WithUserProperty("a", "1").WithUserProperty("b", "3")
            .WithContentType("application/json")
            .WithCorrelationData([1, 2, 3])
            .WithResponseTopic("reply/here")
            .WithPayloadFormatIndicator(MqttPayloadFormatIndicator.CharacterData)
            .Build());
        var m = await messages.NextAsync();
        // [MQTT-3.3.2-18] order kept, duplicates kept.
        Assert.Equal(["b=2", "a=1", "b=3"], m.UserProperties.Select(p => p.Name + "=" + p.Value));
        Assert.Equal("application/json", m.ContentType);
        Assert.Equal([1, 2, 3], m.CorrelationData);
        Assert.Equal("reply/here", m.ResponseTopic);
        Assert.Equal(MqttPayloadFormatIndicator.CharacterData, m.PayloadFormatIndicator);
    }

    [Fact]
    public async Task MQTT_3_1_2_25_Message_larger_than_client_Maximum_Packet_Size_is_not_sent()
    {
        await using var broker = await BrokerInstance.StartAsync();
        var (subscriber, messages) = await SubscriberAsync(broker, V500, "big/#", MqttQualityOfServiceLevel.AtLeastOnce,
            configure: o => o.WithMaximumPacketSize(128));
        using var _ = subscriber;
        using var publisher = await MqttClients.ConnectAsync(broker, V500);
        await publisher.PublishAsync("big/1", new string('x', 500), MqttQualityOfServiceLevel.AtLeastOnce);
        await publisher.PublishAsync("big/2", "small", MqttQualityOfServiceLevel.AtLeastOnce);
        var m = await messages.NextAsync();
        Assert.Equal("big/2", m.Topic);
        Assert.True(subscriber.IsConnected);
    }
    private static async Task SubscribeRawAsync(RawClient raw, RawVersion version, string filter, QualityOfService qos)
    {
        await raw.SubscribeAsync(filter, qos, version);
    }

    [Theory]
    [InlineData(RawVersion.V311)]
    [InlineData(RawVersion.V500)]
    public async Task MQTT_2_3_1_5_QoS_0_PUBLISH_has_no_packet_id_and_DUP_0(RawVersion version)
    {
        await using var broker = await BrokerInstance.StartAsync();
        await using var raw = await RawConnectedAsync(broker, version, "zero");
        await SubscribeRawAsync(raw, version, "t", QualityOfService.AtMostOnce);
        using var publisher = await MqttClients.ConnectAsync(broker, version == RawVersion.V500 ? V500 : V311);
        await publisher.PublishAsync("t", "x", MqttQualityOfServiceLevel.AtMostOnce);
        await raw.ExpectAsync<PublishPacket>(version);
        // [MQTT-2.3.1-5 (3.1.1) / 2.2.1-2 (5.0)] no packet id; [MQTT-4.3.1-1] QoS 0, DUP 0, RETAIN 0:
        // 0x30, remaining length, topic "t", (5.0: property length 0), payload "x" right after.
        byte[] expected = version == RawVersion.V311
            ? [0x30, 0x04, 0x00, 0x01, (byte)'t', (byte)'x']
            : [0x30, 0x05, 0x00, 0x01, (byte)'t', 0x00, (byte)'x'];
        Assert.Equal(expected, raw.LastPacketBytes);
    }

    [Theory]
    [InlineData(RawVersion.V311, QualityOfService.AtLeastOnce)]
    [InlineData(RawVersion.V311, QualityOfService.ExactlyOnce)]
    [InlineData(RawVersion.V500, QualityOfService.AtLeastOnce)]
    [InlineData(RawVersion.V500, QualityOfService.ExactlyOnce)]
    public async Task MQTT_4_3_2_2_First_QoS_1_and_2_PUBLISH_has_DUP_0_and_its_packet_id_after_the_topic(RawVersion version, QualityOfService qos)
    {
        await using var broker = await BrokerInstance.StartAsync();
        await using var raw = await RawConnectedAsync(broker, version, "header");
        await SubscribeRawAsync(raw, version, "t", qos);
        using var publisher = await MqttClients.ConnectAsync(broker, version == RawVersion.V500 ? V500 : V311);
        await publisher.PublishAsync("t", "x", (MqttQualityOfServiceLevel)qos);
        var p = await raw.ExpectAsync<PublishPacket>(version);
        byte[] b = raw.LastPacketBytes;
        // Fixed header: type 3, DUP 0, QoS in bits 2-1, RETAIN 0 [MQTT-4.3.2-2 / 4.3.3-2 (5.0), 4.3.2-1 / 4.3.3-1 (3.1.1)].
        Assert.Equal((byte)(0x30 | ((int)qos << 1)), b[0]);
        Assert.Equal(b.Length - 2, b[1]);
        // Topic "t", then the packet id, big-endian and non-zero [MQTT-2.2.1-4 (5.0) / 2.3.1-1 (3.1.1)].
        Assert.Equal([0x00, 0x01, (byte)'t'], b[2..5]);
        Assert.Equal(p.PacketId, (b[5] << 8) | b[6]);
        Assert.NotEqual(0, p.PacketId);
        Assert.Equal(version == RawVersion.V500 ? [0x00, (byte)'x'] : new[] { (byte)'x' }, b[7..]);
    }

    [Theory]
    [InlineData(RawVersion.V311)]
    [InlineData(RawVersion.V500)]
    public async Task MQTT_4_3_2_1_Messages_in_flight_at_once_have_distinct_packet_ids_and_stay_unacknowledged_until_PUBACK(RawVersion version)
    {
        const int window = 4;
        // The window is the broker's (3.1.1) or the client's Receive Maximum (5.0).
        await using var broker = await BrokerInstance.StartAsync(version == RawVersion.V311
            ? new Dictionary<string, string?> { ["Broker:Limits:MaxInflightMessages"] = window.ToString() } : null);
        await using var raw = await RawConnectedAsync(broker, version, "window",
            properties: version == RawVersion.V500 ? new MqttProperties { ReceiveMaximum = window } : null);
        await SubscribeRawAsync(raw, version, "w", QualityOfService.AtLeastOnce);
        using var publisher = await MqttClients.ConnectAsync(broker, version == RawVersion.V500 ? V500 : V311);
        for (int i = 0; i < window + 3; i++)
        {
            await publisher.PublishAsync("w", i.ToString(), MqttQualityOfServiceLevel.AtLeastOnce);
        }
        var inFlight = new Dictionary<ushort, string>();
        for (int i = 0; i < window; i++)
        {
            var p = await raw.ExpectAsync<PublishPacket>(version);
            Assert.False(p.Dup);
            Assert.NotEqual(0, p.PacketId);
            // [MQTT-2.3.1-4 (3.1.1) / 2.2.1-4 (5.0)] an id not used by another message in flight.
            Assert.True(inFlight.TryAdd(p.PacketId, System.Text.Encoding.UTF8.GetString(p.Payload.Span)), $"packet id {p.PacketId} used twice");
        }
        // Four unacknowledged messages fill the window: nothing more (and nothing resent) until a PUBACK.
        await raw.AssertNothingBeforePingRespAsync(version);
        ushort acked = inFlight.Keys.ElementAt(1);
        await raw.SendAsync(new PubAckPacket { PacketId = acked }, version);
        inFlight.Remove(acked);
        var next = await raw.ExpectAsync<PublishPacket>(version);
        Assert.Equal(window.ToString(), System.Text.Encoding.UTF8.GetString(next.Payload.Span));
        Assert.DoesNotContain(next.PacketId, inFlight.Keys);
        await raw.AssertNothingBeforePingRespAsync(version);
    }

    [Theory]
    [InlineData(RawVersion.V311)]
    [InlineData(RawVersion.V500)]
    public async Task MQTT_4_3_2_5_Packet_id_reused_after_PUBACK_is_a_new_message(RawVersion version)
    {
        await using var broker = await BrokerInstance.StartAsync();
        var (subscriber, messages) = await SubscriberAsync(broker, version == RawVersion.V500 ? V500 : V311, "reuse");
        using var _ = subscriber;
        await using var raw = await RawConnectedAsync(broker, version, "device");
        // A device that numbers every QoS 1 publish 1, as many small clients do; DUP on the last one changes nothing.
        foreach (var (payload, dup) in new[] { ("a", false), ("b", false), ("c", true) })
        {
            await raw.SendAsync(Publish("reuse", payload, QualityOfService.AtLeastOnce, 1, dup), version);
            Assert.Equal(1, (await raw.ExpectAsync<PubAckPacket>(version)).PacketId);
        }
        foreach (var payload in new[] { "a", "b", "c" })
        {
            Assert.Equal(payload, (await messages.NextAsync()).ConvertPayloadToString());
        }
    }

    [Fact]
    public async Task MQTT_3_3_4_10_Other_packets_flow_while_the_client_Receive_Maximum_is_exhausted()
    {
        var v5 = RawVersion.V500;
        await using var broker = await BrokerInstance.StartAsync();
        await using var raw = await RawConnectedAsync(broker, v5, "quota", properties: new MqttProperties { ReceiveMaximum = 1 });
        await SubscribeRawAsync(raw, v5, "q/#", QualityOfService.AtLeastOnce);
        using var publisher = await MqttClients.ConnectAsync(broker, V500);
        await publisher.PublishAsync("q/1", "1", MqttQualityOfServiceLevel.AtLeastOnce);
        await publisher.PublishAsync("q/2", "2", MqttQualityOfServiceLevel.AtLeastOnce);
        var first = await raw.ExpectAsync<PublishPacket>(v5);
        // Send quota 0 [MQTT-4.9.0-2]; every other packet is still answered at once [MQTT-3.3.4-10 / 4.9.0-3],
        // each answer being the next packet (no PUBLISH slips in).
        await raw.AssertNothingBeforePingRespAsync(v5);
        await raw.SendAsync(new SubscribePacket { PacketId = 7, Subscriptions = [new TopicSubscription("other", QualityOfService.AtLeastOnce)] }, v5);
        Assert.Equal(7, (await raw.ExpectAsync<SubAckPacket>(v5)).PacketId);
        await raw.SendAsync(new UnsubscribePacket { PacketId = 8, TopicFilters = ["other"] }, v5);
        Assert.Equal(8, (await raw.ExpectAsync<UnsubAckPacket>(v5)).PacketId);
        await raw.SendAsync(Publish("elsewhere", "x", QualityOfService.AtLeastOnce, 9), v5);
        Assert.Equal(9, (await raw.ExpectAsync<PubAckPacket>(v5)).PacketId);
        await raw.SendAsync(Publish("elsewhere", "x", QualityOfService.ExactlyOnce, 10), v5);
        Assert.Equal(10, (await raw.ExpectAsync<PubRecPacket>(v5)).PacketId);
        await raw.SendAsync(new PubRelPacket { PacketId = 10 }, v5);
        Assert.Equal(10, (await raw.ExpectAsync<PubCompPacket>(v5)).PacketId);
        await raw.SendAsync(new PubAckPacket { PacketId = first.PacketId }, v5);
        Assert.Equal("q/2", (await raw.ExpectAsync<PublishPacket>(v5)).Topic);
    }

    [Theory]
    [InlineData(RawVersion.V311)]
    [InlineData(RawVersion.V500)]
    public async Task MQTT_4_6_0_4_V311_PUBREL_goes_out_in_the_order_the_PUBRECs_came(RawVersion version)
    {
        await using var broker = await BrokerInstance.StartAsync();
        await using var raw = await RawConnectedAsync(broker, version, "order");
        await SubscribeRawAsync(raw, version, "o", QualityOfService.ExactlyOnce);
        using var publisher = await MqttClients.ConnectAsync(broker, version == RawVersion.V500 ? V500 : V311);
        var ids = new List<ushort>();
        for (int i = 0; i < 3; i++)
        {
            await publisher.PublishAsync("o", i.ToString(), MqttQualityOfServiceLevel.ExactlyOnce);
            ids.Add((await raw.ExpectAsync<PublishPacket>(version)).PacketId);
        }
        ushort[] recOrder = [ids[2], ids[0], ids[1]];
        var writer = new System.Buffers.ArrayBufferWriter<byte>();
        foreach (var id in recOrder)
        {
            MqttPacketWriter.Write(writer, new PubRecPacket { PacketId = id }, version);
        }
        await raw.SendAsync(writer.WrittenSpan.ToArray());
        var relOrder = new List<ushort>();
        for (int i = 0; i < 3; i++)
        {
            relOrder.Add((await raw.ExpectAsync<PubRelPacket>(version)).PacketId);
        }
        Assert.Equal(recOrder, relOrder);
    }

    [Fact]
    public async Task OutboundTopicAliases_false_sends_the_topic_name_to_a_client_that_allows_aliases()
    {
        var v5 = RawVersion.V500;
        await using var broker = await BrokerInstance.StartAsync(new Dictionary<string, string?> { ["Broker:Limits:OutboundTopicAliases"] = "false" });
        await using var raw = await RawConnectedAsync(broker, v5, "noalias", properties: new MqttProperties { TopicAliasMaximum = 10 });
        await SubscribeRawAsync(raw, v5, "alias/#", QualityOfService.AtMostOnce);
        using var publisher = await MqttClients.ConnectAsync(broker, V500);
        await publisher.PublishAsync("alias/a", "1");
        await publisher.PublishAsync("alias/a", "2");
        for (int i = 0; i < 2; i++)
        {
            var p = await raw.ExpectAsync<PublishPacket>(v5);
            Assert.Equal("alias/a", p.Topic);
            Assert.Null(p.Properties?.TopicAlias);
        }
    }
}
