using Conformance.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using MQTTnet;
using MQTTnet.Protocol;
using Xunit;
using static Conformance.Infrastructure.TestClients;
using NetVersion = MQTTnet.Formatter.MqttProtocolVersion;

namespace Conformance;

/// <summary>Retained messages (3.3.1.3) and the 5.0 subscription options that govern them.</summary>
public sealed class RetainTests
{
    private static MqttClientSubscribeOptions Subscribe(string filter, MqttRetainHandling handling = MqttRetainHandling.SendAtSubscribe,
        bool retainAsPublished = false)
        => MqttClients.Factory.CreateSubscribeOptionsBuilder()
            .WithTopicFilter(f => f.WithTopic(filter).WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce)
                .WithRetainHandling(handling).WithRetainAsPublished(retainAsPublished))
            .Build();

    [Theory]
    [InlineData(NetVersion.V311)]
    [InlineData(NetVersion.V500)]
    public async Task MQTT_3_3_1_5_Retained_message_is_stored_and_sent_to_a_new_subscriber_with_RETAIN_1(NetVersion version)
    {
        await using var broker = await BrokerInstance.StartAsync();
        using var publisher = await MqttClients.ConnectAsync(broker, version);
        await publisher.PublishAsync("r/a", "old", MqttQualityOfServiceLevel.AtLeastOnce, retain: true);
        await publisher.PublishAsync("r/a", "new", MqttQualityOfServiceLevel.AtLeastOnce, retain: true);
        var (subscriber, messages) = await SubscriberAsync(broker, version, "r/+");
        using var _ = subscriber;
        var m = await messages.NextAsync();
        Assert.Equal("new", m.ConvertPayloadToString());
        // [MQTT-3.3.1-8 (3.1.1)] RETAIN 1 on a message sent because of a new subscription.
        Assert.True(m.Retain);
        // Only the last one per topic is kept.
        await messages.AssertNothingBeforeMarkerAsync(publisher, "r/marker");
    }

    [Theory]
    [InlineData(NetVersion.V311)]
    [InlineData(NetVersion.V500)]
    public async Task MQTT_3_3_1_6_Empty_retained_publish_removes_the_retained_message(NetVersion version)
    {
        await using var broker = await BrokerInstance.StartAsync();
        using var publisher = await MqttClients.ConnectAsync(broker, version);
        await publisher.PublishAsync("r/a", "gone", MqttQualityOfServiceLevel.AtLeastOnce, retain: true);
        await publisher.PublishAsync("r/a", "", MqttQualityOfServiceLevel.AtLeastOnce, retain: true);
        await publisher.PublishAsync("r/b", "kept", MqttQualityOfServiceLevel.AtLeastOnce, retain: true);
        var (subscriber, messages) = await SubscriberAsync(broker, version, "r/+");
        using var _ = subscriber;
        Assert.Equal("r/b", (await messages.NextAsync()).Topic);
        await messages.AssertNothingBeforeMarkerAsync(publisher, "r/marker");
    }

    [Theory]
    [InlineData(NetVersion.V311)]
    [InlineData(NetVersion.V500)]
    public async Task MQTT_3_3_1_8_Non_retained_publish_does_not_replace_the_retained_message(NetVersion version)
    {
        await using var broker = await BrokerInstance.StartAsync();
        using var publisher = await MqttClients.ConnectAsync(broker, version);
        await publisher.PublishAsync("r/a", "retained", MqttQualityOfServiceLevel.AtLeastOnce, retain: true);
        await publisher.PublishAsync("r/a", "live", MqttQualityOfServiceLevel.AtLeastOnce, retain: false);
        var (subscriber, messages) = await SubscriberAsync(broker, version, "r/a");
        using var _ = subscriber;
        Assert.Equal("retained", (await messages.NextAsync()).ConvertPayloadToString());
    }

    [Theory]
    [InlineData(NetVersion.V311)]
    [InlineData(NetVersion.V500)]
    public async Task MQTT_3_3_1_12_Live_delivery_to_an_established_subscription_has_RETAIN_0(NetVersion version)
    {
        await using var broker = await BrokerInstance.StartAsync();
        var (subscriber, messages) = await SubscriberAsync(broker, version, "r/a");
        using var _ = subscriber;
        using var publisher = await MqttClients.ConnectAsync(broker, version);
        await publisher.PublishAsync("r/a", "x", MqttQualityOfServiceLevel.AtLeastOnce, retain: true);
        Assert.False((await messages.NextAsync()).Retain);
    }

    [Fact]
    public async Task MQTT_3_3_1_13_Retain_As_Published_keeps_the_RETAIN_flag()
    {
        await using var broker = await BrokerInstance.StartAsync();
        using var subscriber = await MqttClients.ConnectAsync(broker, V500);
        var messages = new MessageCollector(subscriber);
        await subscriber.SubscribeAsync(Subscribe("r/a", MqttRetainHandling.SendAtSubscribe, retainAsPublished: true));
        using var publisher = await MqttClients.ConnectAsync(broker, V500);
        await publisher.PublishAsync("r/a", "retained", MqttQualityOfServiceLevel.AtLeastOnce, retain: true);
        await publisher.PublishAsync("r/a", "plain", MqttQualityOfServiceLevel.AtLeastOnce, retain: false);
        var first = await messages.NextAsync();
        var second = await messages.NextAsync();
        Assert.True(first.Retain);
        Assert.False(second.Retain);
    }

    [Fact]
    public async Task MQTT_3_3_1_9_Retain_Handling_0_sends_retained_messages_on_every_subscribe()
    {
        await using var broker = await BrokerInstance.StartAsync();
        using var publisher = await MqttClients.ConnectAsync(broker, V500);
        await publisher.PublishAsync("r/a", "x", MqttQualityOfServiceLevel.AtLeastOnce, retain: true);
        using var subscriber = await MqttClients.ConnectAsync(broker, V500);
        var messages = new MessageCollector(subscriber);
        await subscriber.SubscribeAsync(Subscribe("r/a", MqttRetainHandling.SendAtSubscribe));
        await messages.NextAsync();
        await subscriber.SubscribeAsync(Subscribe("r/a", MqttRetainHandling.SendAtSubscribe));
        Assert.True((await messages.NextAsync()).Retain);
    }

    [Fact]
    public async Task MQTT_3_3_1_10_Retain_Handling_1_sends_retained_messages_only_for_a_new_subscription()
    {
        await using var broker = await BrokerInstance.StartAsync();
        using var publisher = await MqttClients.ConnectAsync(broker, V500);
        await publisher.PublishAsync("r/a", "x", MqttQualityOfServiceLevel.AtLeastOnce, retain: true);
        using var subscriber = await MqttClients.ConnectAsync(broker, V500);
        var messages = new MessageCollector(subscriber);
        await subscriber.SubscribeAsync(Subscribe("r/a", MqttRetainHandling.SendAtSubscribeIfNewSubscriptionOnly));
        Assert.Equal("x", (await messages.NextAsync()).ConvertPayloadToString());
        await subscriber.SubscribeAsync(Subscribe("r/a", MqttRetainHandling.SendAtSubscribeIfNewSubscriptionOnly));
        await publisher.PublishAsync("r/a", "live", MqttQualityOfServiceLevel.AtLeastOnce);
        // The resubscription sent nothing: the next message is the live one.
        Assert.Equal("live", (await messages.NextAsync()).ConvertPayloadToString());
    }

    [Fact]
    public async Task MQTT_3_3_1_11_Retain_Handling_2_sends_no_retained_messages()
    {
        await using var broker = await BrokerInstance.StartAsync();
        using var publisher = await MqttClients.ConnectAsync(broker, V500);
        await publisher.PublishAsync("r/a", "x", MqttQualityOfServiceLevel.AtLeastOnce, retain: true);
        using var subscriber = await MqttClients.ConnectAsync(broker, V500);
        var messages = new MessageCollector(subscriber);
        await subscriber.SubscribeAsync(Subscribe("r/a", MqttRetainHandling.DoNotSendOnSubscribe));
        await publisher.PublishAsync("r/a", "live", MqttQualityOfServiceLevel.AtLeastOnce);
        Assert.Equal("live", (await messages.NextAsync()).ConvertPayloadToString());
    }
    [Theory]
    [InlineData(NetVersion.V311)]
    [InlineData(NetVersion.V500)]
    public async Task MQTT_3_3_1_7_V311_QoS_0_retained_message_replaces_the_retained_one(NetVersion version)
    {
        await using var broker = await BrokerInstance.StartAsync();
        using var publisher = await MqttClients.ConnectAsync(broker, version);
        await publisher.PublishAsync("r/a", "qos1", MqttQualityOfServiceLevel.AtLeastOnce, retain: true);
        await publisher.PublishAsync("r/a", "qos0", MqttQualityOfServiceLevel.AtMostOnce, retain: true);
        var (subscriber, messages) = await SubscriberAsync(broker, version, "r/+");
        using var _ = subscriber;
        var m = await messages.NextAsync();
        Assert.Equal(("qos0", MqttQualityOfServiceLevel.AtMostOnce, true), (m.ConvertPayloadToString(), m.QualityOfServiceLevel, m.Retain));
        await messages.AssertNothingBeforeMarkerAsync(publisher, "r/marker");
    }

    [Fact]
    public async Task MQTT_3_3_2_5_Retained_message_expires_and_is_sent_with_the_time_left()
    {
        var time = new FakeTimeProvider();
        await using var broker = await BrokerInstance.StartAsync(configureServices: s => s.AddSingleton<TimeProvider>(time));
        Action<MqttClientOptionsBuilder> noKeepAlive = o => o.WithKeepAlivePeriod(TimeSpan.Zero);
        using var publisher = await MqttClients.ConnectAsync(broker, V500, configure: noKeepAlive);
        await publisher.PublishAsync(new MqttApplicationMessageBuilder().WithTopic("r/x").WithPayload("x").WithRetainFlag()
            .WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).WithMessageExpiryInterval(10).Build());
        time.Advance(TimeSpan.FromSeconds(4));
        var (early, earlyMessages) = await SubscriberAsync(broker, V500, "r/+", configure: noKeepAlive);
        using var _ = early;
        // [MQTT-3.3.2-6] what is left of the 10 s.
        Assert.Equal(6u, (await earlyMessages.NextAsync()).MessageExpiryInterval);
        time.Advance(TimeSpan.FromSeconds(7));
        var (late, lateMessages) = await SubscriberAsync(broker, V500, "r/+", configure: noKeepAlive);
        using var __ = late;
        await lateMessages.AssertNothingBeforeMarkerAsync(publisher, "r/marker");
    }
}
