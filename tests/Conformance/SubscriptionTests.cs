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
        await messages.AssertNothingAsync();
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
        var seen = new List<string>();
        var both = Task.WhenAll(Drain(aMessages), Drain(bMessages));
        await both;
        Assert.Equal(count, seen.Count);
        Assert.Equal(count, seen.Distinct().Count());

        async Task Drain(MessageCollector collector)
        {
            while (true)
            {
                MqttApplicationMessage m;
                try
                {
                    m = await collector.NextAsync(TimeSpan.FromMilliseconds(500));
                }
                catch (TimeoutException)
                {
                    return;
                }
                lock (seen)
                {
                    seen.Add(m.ConvertPayloadToString());
                }
            }
        }
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
        await messages.AssertNothingAsync();
    }
}
