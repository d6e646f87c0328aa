using Broker.Protocol;
using Conformance.Infrastructure;
using MQTTnet;
using MQTTnet.Protocol;
using Xunit;
using static Conformance.Infrastructure.TestClients;
using NetVersion = MQTTnet.Formatter.MqttProtocolVersion;
using RawVersion = Broker.Protocol.MqttProtocolVersion;

namespace Conformance;

/// <summary>Topic matching, overlapping and shared subscriptions, subscription options, UNSUBSCRIBE (3.8 - 3.11, 4.7, 4.8).</summary>
public sealed class SubscriptionTests
{
    [Theory]
    [InlineData(NetVersion.V311)]
    [InlineData(NetVersion.V500)]
    public async Task MQTT_4_7_1_Wildcards_match_single_and_multiple_levels(NetVersion version)
    {
        await using var broker = await BrokerInstance.StartAsync();
        using var subscriber = await MqttClients.ConnectAsync(broker, version);
        var messages = new MessageCollector(subscriber);
        await subscriber.SubscribeAsync("s/+/x", MqttQualityOfServiceLevel.AtLeastOnce);
        await subscriber.SubscribeAsync("m/#", MqttQualityOfServiceLevel.AtLeastOnce);
        using var publisher = await MqttClients.ConnectAsync(broker, version);
        foreach (var topic in new[] { "s/a/b/x", "s/a/x", "s//x", "m", "m/a/b/c", "mm/a" })
        {
            await publisher.PublishAsync(topic, topic, MqttQualityOfServiceLevel.AtLeastOnce);
        }
        await publisher.PublishAsync("m/end", "end", MqttQualityOfServiceLevel.AtLeastOnce);
        var received = new List<string>();
        while (received.LastOrDefault() != "m/end")
        {
            received.Add((await messages.NextAsync()).Topic);
        }
        // "#" also matches the parent level [4.7.1.2]; "+" matches an empty level.
        Assert.Equal(["s/a/x", "s//x", "m", "m/a/b/c", "m/end"], received);
    }

    [Theory]
    [InlineData(NetVersion.V311)]
    [InlineData(NetVersion.V500)]
    public async Task MQTT_4_7_2_1_Dollar_topics_are_not_matched_by_leading_wildcards(NetVersion version)
    {
        await using var broker = await BrokerInstance.StartAsync();
        using var subscriber = await MqttClients.ConnectAsync(broker, version);
        var messages = new MessageCollector(subscriber);
        await subscriber.SubscribeAsync("#", MqttQualityOfServiceLevel.AtLeastOnce);
        await subscriber.SubscribeAsync("+/x", MqttQualityOfServiceLevel.AtLeastOnce);
        using var publisher = await MqttClients.ConnectAsync(broker, version);
        await publisher.PublishAsync("$app/x", "hidden", MqttQualityOfServiceLevel.AtLeastOnce);
        await publisher.PublishAsync("visible", "visible", MqttQualityOfServiceLevel.AtLeastOnce);
        Assert.Equal("visible", (await messages.NextAsync()).Topic);
    }

    [Theory]
    [InlineData(NetVersion.V311)]
    [InlineData(NetVersion.V500)]
    public async Task MQTT_3_3_4_2_Overlapping_subscriptions_deliver_one_copy_at_the_highest_QoS(NetVersion version)
    {
        await using var broker = await BrokerInstance.StartAsync();
        using var subscriber = await MqttClients.ConnectAsync(broker, version);
        var messages = new MessageCollector(subscriber);
        await subscriber.SubscribeAsync("o/+", MqttQualityOfServiceLevel.AtMostOnce);
        await subscriber.SubscribeAsync("o/#", MqttQualityOfServiceLevel.ExactlyOnce);
        await subscriber.SubscribeAsync("marker", MqttQualityOfServiceLevel.AtLeastOnce);
        using var publisher = await MqttClients.ConnectAsync(broker, version);
        await publisher.PublishAsync("o/a", "1", MqttQualityOfServiceLevel.ExactlyOnce);
        await publisher.PublishAsync("marker", "marker", MqttQualityOfServiceLevel.AtLeastOnce);
        var m = await messages.NextAsync();
        Assert.Equal("o/a", m.Topic);
        Assert.Equal(MqttQualityOfServiceLevel.ExactlyOnce, m.QualityOfServiceLevel);
        // One copy: the message after it is the marker, not a second "o/a".
        Assert.Equal("marker", (await messages.NextAsync()).Topic);
    }

    [Fact]
    public async Task MQTT_3_3_4_4_Single_copy_carries_every_matching_Subscription_Identifier()
    {
        await using var broker = await BrokerInstance.StartAsync();
        using var subscriber = await MqttClients.ConnectAsync(broker, V500);
        var messages = new MessageCollector(subscriber);
        await subscriber.SubscribeAsync(MqttClients.Factory.CreateSubscribeOptionsBuilder()
            .WithTopicFilter("o/+", MqttQualityOfServiceLevel.AtMostOnce).WithSubscriptionIdentifier(11).Build());
        await subscriber.SubscribeAsync(MqttClients.Factory.CreateSubscribeOptionsBuilder()
            .WithTopicFilter("o/#", MqttQualityOfServiceLevel.AtLeastOnce).WithSubscriptionIdentifier(22).Build());
        await subscriber.SubscribeAsync("o/plain", MqttQualityOfServiceLevel.AtLeastOnce);
        using var publisher = await MqttClients.ConnectAsync(broker, V500);
        await publisher.PublishAsync("o/a", "1", MqttQualityOfServiceLevel.AtLeastOnce);
        var m = await messages.NextAsync();
        Assert.Equal([11u, 22u], m.SubscriptionIdentifiers.Order());
        await messages.AssertNothingBeforeMarkerAsync(publisher, "o/plain");
    }

    [Fact]
    public async Task MQTT_3_8_3_3_No_Local_does_not_send_a_client_its_own_messages()
    {
        await using var broker = await BrokerInstance.StartAsync();
        using var client = await MqttClients.ConnectAsync(broker, V500);
        var messages = new MessageCollector(client);
        await client.SubscribeAsync(MqttClients.Factory.CreateSubscribeOptionsBuilder()
            .WithTopicFilter(f => f.WithTopic("nl").WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).WithNoLocal()).Build());
        await client.PublishAsync("nl", "own", MqttQualityOfServiceLevel.AtLeastOnce);
        using var other = await MqttClients.ConnectAsync(broker, V500);
        await other.PublishAsync("nl", "other", MqttQualityOfServiceLevel.AtLeastOnce);
        Assert.Equal("other", (await messages.NextAsync()).ConvertPayloadToString());
    }

    [Fact]
    public async Task MQTT_4_8_2_Shared_subscription_prefers_connected_members_over_offline_sessions()
    {
        await using var broker = await BrokerInstance.StartAsync();
        // A member whose session outlives its connection: offline, it would only queue the group's messages.
        var (gone, _) = await SubscriberAsync(broker, V500, "$share/g/pref/#", MqttQualityOfServiceLevel.AtLeastOnce, "sh-offline",
            o => o.WithCleanSession(false).WithSessionExpiryInterval(300));
        await gone.DisconnectAsync();
        gone.Dispose();
        var (online, messages) = await SubscriberAsync(broker, V500, "$share/g/pref/#", MqttQualityOfServiceLevel.AtLeastOnce);
        using var _ = online;
        using var publisher = await MqttClients.ConnectAsync(broker, V500);
        for (int i = 0; i < 6; i++)
        {
            await publisher.PublishAsync("pref/" + i, i.ToString(), MqttQualityOfServiceLevel.AtLeastOnce);
        }
        for (int i = 0; i < 6; i++)
        {
            Assert.Equal(i.ToString(), (await messages.NextAsync()).ConvertPayloadToString());
        }
    }

    [Fact]
    public async Task MQTT_4_8_2_Shared_subscription_delivers_each_message_to_one_member()
    {
        await using var broker = await BrokerInstance.StartAsync();
        var (a, aMessages) = await SubscriberAsync(broker, V500, "$share/g/sh/#", MqttQualityOfServiceLevel.AtLeastOnce);
        var (b, bMessages) = await SubscriberAsync(broker, V500, "$share/g/sh/#", MqttQualityOfServiceLevel.AtLeastOnce);
        using var _ = a;
        using var __ = b;
        using var publisher = await MqttClients.ConnectAsync(broker, V500);
        const int count = 20;
        for (int i = 0; i < count; i++)
        {
            await publisher.PublishAsync("sh/" + i, i.ToString(), MqttQualityOfServiceLevel.AtLeastOnce);
        }
        // Round robin between two connected members: each gets every other message, in order.
        var seen = new List<string>();
        for (int i = 0; i < count / 2; i++)
        {
            seen.Add((await aMessages.NextAsync()).ConvertPayloadToString());
            seen.Add((await bMessages.NextAsync()).ConvertPayloadToString());
        }
        Assert.Equal(Enumerable.Range(0, count).Select(i => i.ToString()), seen.Order(Comparer<string>.Create((x, y) => int.Parse(x).CompareTo(int.Parse(y)))));
        // Nothing more for either: two markers, one each, come next.
        await publisher.PublishAsync("sh/marker", "marker", MqttQualityOfServiceLevel.AtLeastOnce);
        await publisher.PublishAsync("sh/marker", "marker", MqttQualityOfServiceLevel.AtLeastOnce);
        Assert.Equal("sh/marker", (await aMessages.NextAsync()).Topic);
        Assert.Equal("sh/marker", (await bMessages.NextAsync()).Topic);
    }

    [Theory]
    [InlineData(RawVersion.V311)]
    [InlineData(RawVersion.V500)]
    public async Task MQTT_3_10_4_4_UNSUBSCRIBE_is_answered_with_UNSUBACK_and_stops_delivery(RawVersion version)
    {
        await using var broker = await BrokerInstance.StartAsync();
        await using var raw = await RawConnectedAsync(broker, version, "unsub");
        await raw.SendAsync(new SubscribePacket { PacketId = 1, Subscriptions = [new TopicSubscription("u/a", QualityOfService.AtMostOnce), new TopicSubscription("u/b", QualityOfService.AtMostOnce)] }, version);
        await raw.ExpectAsync<SubAckPacket>(version);
        await raw.SendAsync(new UnsubscribePacket { PacketId = 2, TopicFilters = ["u/a", "u/none"] }, version);
        var ack = await raw.ExpectAsync<UnsubAckPacket>(version);
        Assert.Equal(2, ack.PacketId);
        if (version == RawVersion.V500)
        {
            // [MQTT-3.11.3-1 (5.0)] one reason code per filter; 0x11 where no subscription existed.
            Assert.Equal([0x00, 0x11], ack.ReasonCodes);
        }
        using var publisher = await MqttClients.ConnectAsync(broker, version == RawVersion.V500 ? V500 : V311);
        await publisher.PublishAsync("u/a", "a");
        await publisher.PublishAsync("u/b", "b");
        var p = await raw.ExpectAsync<PublishPacket>(version);
        Assert.Equal("u/b", p.Topic);
    }

    [Theory]
    [InlineData(RawVersion.V311)]
    [InlineData(RawVersion.V500)]
    public async Task MQTT_4_7_1_1_Misplaced_multi_level_wildcard_is_refused(RawVersion version)
    {
        await using var broker = await BrokerInstance.StartAsync();
        await using var raw = await RawConnectedAsync(broker, version, "badfilter");
        await raw.SendAsync(new SubscribePacket { PacketId = 5, Subscriptions = [new("a/#/b", QualityOfService.AtMostOnce)] }, version);
        // The filter breaks [MQTT-4.7.1-2 (3.1.1) / 4.7.1-1 (5.0)]: the broker treats the SUBSCRIBE as malformed and
        // closes (3.1.1 has no other choice; 5.0 says why with DISCONNECT 0x8F Topic Filter invalid) rather than
        // answering a SUBACK failure code, which the specs also allow.
        var answers = await raw.ReadUntilClosedAsync(version, TimeSpan.FromSeconds(5));
        if (version == RawVersion.V311)
        {
            Assert.Empty(answers);
        }
        else
        {
            Assert.Equal(ReasonCode.TopicFilterInvalid, Assert.IsType<DisconnectPacket>(Assert.Single(answers)).ReasonCode);
        }
    }

    [Fact]
    public async Task MQTT_3_8_3_4_No_Local_on_a_shared_subscription_is_a_protocol_error()
    {
        var v5 = RawVersion.V500;
        await using var broker = await BrokerInstance.StartAsync();
        await using var raw = await RawConnectedAsync(broker, v5, "sharednl");
        await raw.SendAsync(new SubscribePacket { PacketId = 5, Subscriptions = [new("$share/g/t", QualityOfService.AtMostOnce, NoLocal: true)] }, v5);
        var answers = await raw.ReadUntilClosedAsync(v5, TimeSpan.FromSeconds(5));
        Assert.Equal(ReasonCode.ProtocolError, Assert.IsType<DisconnectPacket>(Assert.Single(answers)).ReasonCode);
    }

    [Theory]
    [InlineData(RawVersion.V311)]
    [InlineData(RawVersion.V500)]
    public async Task MQTT_3_8_4_1_SUBSCRIBE_is_answered_with_SUBACK_with_one_code_per_filter(RawVersion version)
    {
        await using var broker = await BrokerInstance.StartAsync();
        await using var raw = await RawConnectedAsync(broker, version, "sub");
        await raw.SendAsync(new SubscribePacket
        {
            PacketId = 33,
            Subscriptions = [new("a", QualityOfService.AtMostOnce), new("b/+", QualityOfService.AtLeastOnce), new("c/#", QualityOfService.ExactlyOnce)],
        }, version);
        var ack = await raw.ExpectAsync<SubAckPacket>(version);
        Assert.Equal(33, ack.PacketId);
        Assert.Equal([0, 1, 2], ack.ReasonCodes);
        // SUBACK: type 9 flags 0, remaining length, packet id 33, (5.0: property length 0), one code per filter in order.
        Assert.Equal(version == RawVersion.V311
            ? [0x90, 0x05, 0x00, 0x21, 0x00, 0x01, 0x02]
            : new byte[] { 0x90, 0x06, 0x00, 0x21, 0x00, 0x00, 0x01, 0x02 }, raw.LastPacketBytes);
    }

    [Theory]
    [InlineData(NetVersion.V311)]
    [InlineData(NetVersion.V500)]
    public async Task MQTT_3_8_4_3_Repeated_subscription_replaces_the_existing_one(NetVersion version)
    {
        await using var broker = await BrokerInstance.StartAsync();
        using var subscriber = await MqttClients.ConnectAsync(broker, version);
        var messages = new MessageCollector(subscriber);
        await subscriber.SubscribeAsync("rep", MqttQualityOfServiceLevel.ExactlyOnce);
        await subscriber.SubscribeAsync("rep", MqttQualityOfServiceLevel.AtMostOnce);
        using var publisher = await MqttClients.ConnectAsync(broker, version);
        await publisher.PublishAsync("rep", "x", MqttQualityOfServiceLevel.ExactlyOnce);
        var m = await messages.NextAsync();
        Assert.Equal(MqttQualityOfServiceLevel.AtMostOnce, m.QualityOfServiceLevel);
        // One subscription, so one copy.
        await messages.AssertNothingBeforeMarkerAsync(publisher, "rep");
    }
    [Theory]
    [InlineData(NetVersion.V311)]
    [InlineData(NetVersion.V500)]
    public async Task MQTT_3_8_4_3_Repeated_subscription_resends_the_retained_messages(NetVersion version)
    {
        await using var broker = await BrokerInstance.StartAsync();
        using var publisher = await MqttClients.ConnectAsync(broker, version);
        await publisher.PublishAsync("rep/a", "kept", MqttQualityOfServiceLevel.AtLeastOnce, retain: true);
        using var subscriber = await MqttClients.ConnectAsync(broker, version);
        var messages = new MessageCollector(subscriber);
        await subscriber.SubscribeAsync("rep/+", MqttQualityOfServiceLevel.AtLeastOnce);
        Assert.Equal("kept", (await messages.NextAsync()).ConvertPayloadToString());
        await subscriber.SubscribeAsync("rep/+", MqttQualityOfServiceLevel.ExactlyOnce);
        var again = await messages.NextAsync();
        Assert.Equal(("kept", true), (again.ConvertPayloadToString(), again.Retain));
        // Replaced, not added: the next live message comes once, at the new QoS.
        await publisher.PublishAsync("rep/a", "live", MqttQualityOfServiceLevel.ExactlyOnce);
        var live = await messages.NextAsync();
        Assert.Equal(("live", MqttQualityOfServiceLevel.ExactlyOnce), (live.ConvertPayloadToString(), live.QualityOfServiceLevel));
        await messages.AssertNothingBeforeMarkerAsync(publisher, "rep/marker");
    }

    [Fact]
    public async Task MQTT_4_8_2_3_Shared_member_gets_the_QoS_it_was_granted()
    {
        await using var broker = await BrokerInstance.StartAsync();
        var (member, messages) = await SubscriberAsync(broker, V500, "$share/g/q/#", MqttQualityOfServiceLevel.AtMostOnce);
        using var _ = member;
        using var publisher = await MqttClients.ConnectAsync(broker, V500);
        await publisher.PublishAsync("q/a", "x", MqttQualityOfServiceLevel.ExactlyOnce);
        Assert.Equal(MqttQualityOfServiceLevel.AtMostOnce, (await messages.NextAsync()).QualityOfServiceLevel);
    }

    [Fact]
    public async Task MQTT_4_8_2_4_Shared_QoS_2_delivery_is_completed_to_the_same_member_when_it_reconnects()
    {
        var v5 = RawVersion.V500;
        await using var broker = await BrokerInstance.StartAsync();
        var session = new MqttProperties { SessionExpiryInterval = 300 };
        using var publisher = await MqttClients.ConnectAsync(broker, V500);
        ushort id;
        await using (var first = await RawConnectedAsync(broker, v5, "member-a", cleanStart: false, properties: session))
        {
            await first.SubscribeAsync("$share/g/sh/#", QualityOfService.ExactlyOnce, v5);
            await publisher.PublishAsync("sh/1", "in flight", MqttQualityOfServiceLevel.ExactlyOnce);
            id = (await first.ExpectAsync<PublishPacket>(v5)).PacketId;
        }
        await broker.Logs.WaitForAsync(3, "Client member-a disconnected", TimeSpan.FromSeconds(5));
        var (other, otherMessages) = await SubscriberAsync(broker, V500, "$share/g/sh/#");
        using var _ = other;
        await using var again = await RawConnectedAsync(broker, v5, "member-a", cleanStart: false, properties: session);
        var resent = await again.ExpectAsync<PublishPacket>(v5);
        Assert.Equal(("sh/1", true, id), (resent.Topic, resent.Dup, resent.PacketId));
        // The other member never got it. (The marker may go to either member: it is published until "other" has one.)
        await again.SendAsync(new PubRecPacket { PacketId = id }, v5);
        await again.ExpectAsync<PubRelPacket>(v5);
        await again.SendAsync(new PubCompPacket { PacketId = id }, v5);
        await AssertFirstSharedMessageIsMarkerAsync(otherMessages, publisher, again, v5);
    }

    [Fact]
    public async Task MQTT_4_8_2_5_Shared_message_of_a_member_whose_session_ended_goes_to_no_other_member()
    {
        var v5 = RawVersion.V500;
        await using var broker = await BrokerInstance.StartAsync();
        using var publisher = await MqttClients.ConnectAsync(broker, V500);
        await using (var first = await RawConnectedAsync(broker, v5, "member-a"))
        {
            await first.SubscribeAsync("$share/g/sh/#", QualityOfService.ExactlyOnce, v5);
            await publisher.PublishAsync("sh/1", "in flight", MqttQualityOfServiceLevel.ExactlyOnce);
            await first.ExpectAsync<PublishPacket>(v5);
        }
        // Session Expiry 0: the session ends with the connection, with the message unacknowledged.
        await broker.Logs.WaitForAsync(3, "Client member-a disconnected", TimeSpan.FromSeconds(5));
        var (other, otherMessages) = await SubscriberAsync(broker, V500, "$share/g/sh/#");
        using var _ = other;
        await otherMessages.AssertNothingBeforeMarkerAsync(publisher, "sh/marker");
    }

    [Fact]
    public async Task MQTT_4_8_2_6_Shared_message_refused_by_a_member_goes_to_no_other_member()
    {
        var v5 = RawVersion.V500;
        await using var broker = await BrokerInstance.StartAsync();
        await using var refusing = await RawConnectedAsync(broker, v5, "member-a");
        await refusing.SubscribeAsync("$share/g/sh/#", QualityOfService.AtLeastOnce, v5);
        var (other, otherMessages) = await SubscriberAsync(broker, V500, "$share/g/sh/#", MqttQualityOfServiceLevel.AtLeastOnce);
        using var _ = other;
        using var publisher = await MqttClients.ConnectAsync(broker, V500);
        // Two messages: the group hands one to each member.
        await publisher.PublishAsync("sh/1", "1", MqttQualityOfServiceLevel.AtLeastOnce);
        await publisher.PublishAsync("sh/2", "2", MqttQualityOfServiceLevel.AtLeastOnce);
        var refused = await refusing.ExpectAsync<PublishPacket>(v5);
        await refusing.SendAsync(new PubAckPacket { PacketId = refused.PacketId, ReasonCode = ReasonCode.UnspecifiedError }, v5);
        await refusing.AssertNothingBeforePingRespAsync(v5);
        var own = await otherMessages.NextAsync();
        Assert.NotEqual(refused.Topic, own.Topic);
        // [MQTT-4.4.0-2] not resent to the member either, and not handed to the other one.
        await AssertFirstSharedMessageIsMarkerAsync(otherMessages, publisher, refusing, v5);
    }

    [Fact]
    public async Task Shared_subscription_gets_no_retained_messages()
    {
        await using var broker = await BrokerInstance.StartAsync();
        using var publisher = await MqttClients.ConnectAsync(broker, V500);
        await publisher.PublishAsync("sh/retained", "retained", MqttQualityOfServiceLevel.AtLeastOnce, retain: true);
        // 5.0 3.3.1.3: retained messages go to a new Non-shared Subscription only.
        var (member, messages) = await SubscriberAsync(broker, V500, "$share/g/sh/#");
        using var _ = member;
        await messages.AssertNothingBeforeMarkerAsync(publisher, "sh/marker");
    }

    /// <summary>
    /// Markers to a group of a collector and a raw member: published until the collector gets one (round robin), each
    /// one the raw member gets being acknowledged; the collector must get nothing before its marker.
    /// </summary>
    private static async Task AssertFirstSharedMessageIsMarkerAsync(MessageCollector collector, IMqttClient publisher, RawClient raw, RawVersion version)
    {
        for (int i = 0; i < 2; i++)
        {
            await publisher.PublishAsync("sh/marker", "marker", MqttQualityOfServiceLevel.AtLeastOnce);
        }
        var m = await collector.NextAsync();
        Assert.Equal(("sh/marker", "marker"), (m.Topic, m.ConvertPayloadToString()));
        var toRaw = await raw.ExpectAsync<PublishPacket>(version);
        Assert.Equal("sh/marker", toRaw.Topic);
    }
}
