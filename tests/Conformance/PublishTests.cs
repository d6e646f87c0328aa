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
        await raw.SendAsync(new SubscribePacket { PacketId = 1, Subscriptions = [new TopicSubscription("t", QualityOfService.AtLeastOnce)] }, version);
        await raw.ExpectAsync<SubAckPacket>(version);
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
        await raw.SendAsync(new SubscribePacket { PacketId = 1, Subscriptions = [new TopicSubscription("t", QualityOfService.ExactlyOnce)] }, version);
        await raw.ExpectAsync<SubAckPacket>(version);
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

    [Fact]
    public async Task MQTT_3_3_4_9_Server_sends_no_more_than_the_client_Receive_Maximum()
    {
        var v5 = RawVersion.V500;
        await using var broker = await BrokerInstance.StartAsync();
        await using var raw = await RawConnectedAsync(broker, v5, "rm", properties: new MqttProperties { ReceiveMaximum = 1 });
        await raw.SendAsync(new SubscribePacket { PacketId = 1, Subscriptions = [new TopicSubscription("t", QualityOfService.AtLeastOnce)] }, v5);
        await raw.ExpectAsync<SubAckPacket>(v5);
        using var publisher = await MqttClients.ConnectAsync(broker, V500);
        await publisher.PublishAsync("t", "1", MqttQualityOfServiceLevel.AtLeastOnce);
        await publisher.PublishAsync("t", "2", MqttQualityOfServiceLevel.AtLeastOnce);
        var first = await raw.ExpectAsync<PublishPacket>(v5);
        await Assert.ThrowsAsync<TimeoutException>(() => raw.ReceiveAsync(v5, MessageCollector.Absence));
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
        await raw.SendAsync(new SubscribePacket { PacketId = 1, Subscriptions = [new TopicSubscription("alias/#", QualityOfService.AtMostOnce)] }, v5);
        await raw.ExpectAsync<SubAckPacket>(v5);
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
    public async Task MQTT_3_3_2_11_No_topic_alias_without_a_client_Topic_Alias_Maximum()
    {
        var v5 = RawVersion.V500;
        await using var broker = await BrokerInstance.StartAsync();
        await using var raw = await RawConnectedAsync(broker, v5, "plain");
        await raw.SendAsync(new SubscribePacket { PacketId = 1, Subscriptions = [new TopicSubscription("t", QualityOfService.AtMostOnce)] }, v5);
        await raw.ExpectAsync<SubAckPacket>(v5);
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
}
