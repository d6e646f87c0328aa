using Broker.Protocol;
using Conformance.Infrastructure;
using Conformance.Operations;
using MQTTnet;
using MQTTnet.Protocol;
using Xunit;
using static Conformance.Infrastructure.TestClients;
using RawVersion = Broker.Protocol.MqttProtocolVersion;

namespace Conformance;

/// <summary>
/// Broker:Limits on topics and retained messages (docs/security.md, "Hardening: limits"), end to end:
/// what a client sees at each limit, and that the well-behaved clients beside it carry on.
/// </summary>
public sealed class LimitsTests
{
    private static readonly Dictionary<string, string?> ThreeLevels = new() { ["Broker:Limits:MaxTopicLevels"] = "3" };

    [Theory]
    [InlineData(RawVersion.V500)]
    [InlineData(RawVersion.V311)]
    public async Task Publish_to_a_topic_deeper_than_MaxTopicLevels_closes_the_connection_with_Topic_Name_Invalid(RawVersion version)
    {
        await using var broker = await BrokerInstance.StartAsync(ThreeLevels);
        var (bystander, messages) = await SubscriberAsync(broker, V500, "#", MqttQualityOfServiceLevel.AtLeastOnce);
        using var _ = bystander;

        await using var raw = await RawConnectedAsync(broker, version, "deep");
        await raw.SendAsync(new PublishPacket { Topic = "a/b/c", Payload = "fits"u8.ToArray(), QoS = QualityOfService.AtLeastOnce, PacketId = 1 }, version);
        Assert.Equal(1, (await raw.ExpectAsync<PubAckPacket>(version)).PacketId);
        await raw.SendAsync(new PublishPacket { Topic = "a/b/c/d", Payload = "deep"u8.ToArray(), QoS = QualityOfService.AtLeastOnce, PacketId = 2 }, version);

        var answers = await raw.ReadUntilClosedAsync(version, TimeSpan.FromSeconds(5));
        if (version == RawVersion.V500)
        {
            Assert.Equal(ReasonCode.TopicNameInvalid, Assert.IsType<DisconnectPacket>(Assert.Single(answers)).ReasonCode);
        }
        else
        {
            Assert.Empty(answers); // 3.1.1 has no DISCONNECT from the server: the connection is closed
        }

        Assert.Equal("a/b/c", (await messages.NextAsync()).Topic);
        await bystander.PublishAsync("x/y", "after");
        Assert.Equal("x/y", (await messages.NextAsync()).Topic); // the deep one was never routed
    }

    [Theory]
    [InlineData(RawVersion.V500)]
    [InlineData(RawVersion.V311)]
    public async Task A_will_topic_deeper_than_MaxTopicLevels_refuses_the_CONNECT(RawVersion version)
    {
        await using var broker = await BrokerInstance.StartAsync(ThreeLevels);
        await using var raw = await RawClient.ConnectAsync(broker);
        await raw.SendAsync(new ConnectPacket
        {
            ProtocolVersion = version,
            ClientId = "deep-will",
            CleanStart = true,
            KeepAliveSeconds = 30,
            Will = new WillMessage { Topic = "a/b/c/d", Payload = "gone"u8.ToArray() },
        }, version);

        var answers = await raw.ReadUntilClosedAsync(version, TimeSpan.FromSeconds(5));
        if (version == RawVersion.V500)
        {
            var ack = Assert.IsType<ConnAckPacket>(Assert.Single(answers));
            Assert.Equal((byte)ReasonCode.TopicNameInvalid, ack.ReasonCode);
            Assert.Contains("MaxTopicLevels", ack.Properties?.ReasonString);
            await broker.Logs.WaitForAsync(5, "will topic: topic name with more levels than Broker:Limits:MaxTopicLevels", TimeSpan.FromSeconds(5));
        }
        else
        {
            Assert.Empty(answers); // 3.1.1 has no return code for a bad will topic: the connection is closed
        }
    }

    [Theory]
    [InlineData(RawVersion.V500, 0x8F)] // Topic Filter Invalid
    [InlineData(RawVersion.V311, 0x80)] // Failure
    public async Task Subscribe_refuses_only_the_filters_beyond_the_topic_limits(RawVersion version, byte refused)
    {
        await using var broker = await BrokerInstance.StartAsync(new Dictionary<string, string?>
        {
            ["Broker:Limits:MaxTopicLevels"] = "3",
            ["Broker:Limits:MaxTopicLength"] = "20",
        });

        await using var raw = await RawConnectedAsync(broker, version, "subscriber");
        await raw.SendAsync(new SubscribePacket
        {
            PacketId = 7,
            Subscriptions =
            [
                new TopicSubscription("a/+/#", QualityOfService.AtLeastOnce),
                new TopicSubscription("a/b/c/d", QualityOfService.AtLeastOnce),
                new TopicSubscription("$share/g/a/b/+", QualityOfService.AtMostOnce), // 3 levels after the share prefix
                new TopicSubscription("twenty-one-bytes-long", QualityOfService.AtLeastOnce),
            ],
        }, version);
        var suback = await raw.ExpectAsync<SubAckPacket>(version);
        Assert.Equal([0x01, refused, 0x00, refused], suback.ReasonCodes);

        // The accepted filter works.
        await using var publisher = await RawConnectedAsync(broker, RawVersion.V500, "publisher");
        await publisher.SendAsync(new PublishPacket { Topic = "a/x", Payload = "hi"u8.ToArray() }, RawVersion.V500);
        Assert.Equal("a/x", (await raw.ExpectAsync<PublishPacket>(version)).Topic);
    }

    [Fact]
    public async Task A_full_retained_store_still_delivers_but_keeps_only_what_fits()
    {
        // $SYS off: its retained topics would take the one slot.
        await using var broker = await BrokerInstance.StartAsync(new Dictionary<string, string?> { ["Broker:Limits:MaxRetainedMessages"] = "1", ["Broker:Sys:IntervalSeconds"] = "0" });
        using var scraper = new MetricsScraper(broker);
        var (live, liveMessages) = await SubscriberAsync(broker, V500, "state/#", MqttQualityOfServiceLevel.AtLeastOnce);
        using var _ = live;
        using var publisher = await MqttClients.ConnectAsync(broker, V500);

        var first = await publisher.PublishAsync("state/a", "1", MqttQualityOfServiceLevel.AtLeastOnce, retain: true);
        var second = await publisher.PublishAsync("state/b", "1", MqttQualityOfServiceLevel.AtLeastOnce, retain: true);
        var replaced = await publisher.PublishAsync("state/a", "2", MqttQualityOfServiceLevel.AtLeastOnce, retain: true);

        // The publisher is told nothing: its messages were accepted and routed.
        Assert.True(first.IsSuccess && second.IsSuccess && replaced.IsSuccess);
        Assert.Equal(["state/a", "state/b", "state/a"], [(await liveMessages.NextAsync()).Topic, (await liveMessages.NextAsync()).Topic, (await liveMessages.NextAsync()).Topic]);

        // A new subscriber gets the one retained message there was room for, replaced.
        var (late, lateMessages) = await SubscriberAsync(broker, V500, "state/#", MqttQualityOfServiceLevel.AtLeastOnce);
        using var __ = late;
        var retained = await lateMessages.NextAsync();
        Assert.Equal("state/a", retained.Topic);
        Assert.Equal("2", retained.ConvertPayloadToString());
        await lateMessages.AssertNothingBeforeMarkerAsync(publisher, "state/marker");

        // Operators see the refusal and what the store holds ("state/a" + "2").
        await scraper.WaitUntilAsync(
            s => MetricsScraper.Value(s, "mqtt_retained_refused_total") == 1
                && MetricsScraper.Value(s, "mqtt_retained_messages") == 1
                && MetricsScraper.Value(s, "mqtt_retained_size_bytes") == "state/a".Length + 1,
            "one refusal, one retained message of 8 bytes");
    }
}
