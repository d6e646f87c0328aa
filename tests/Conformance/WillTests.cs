using Broker.Protocol;
using Conformance.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using MQTTnet;
using MQTTnet.Protocol;
using Xunit;
using static Conformance.Infrastructure.TestClients;
using RawVersion = Broker.Protocol.MqttProtocolVersion;

namespace Conformance;

/// <summary>Will messages (3.1.2.5 - 3.1.2.7, 3.1.3.2, 3.14.4).</summary>
public sealed class WillTests
{
    private const int ClientDisconnectedEvent = 3;
    private static readonly TimeSpan LogWait = TimeSpan.FromSeconds(5);

    private static WillMessage Will(uint? delaySeconds = null) => new()
    {
        Topic = "will/t",
        Payload = "gone"u8.ToArray(),
        QoS = QualityOfService.AtLeastOnce,
        Properties = delaySeconds is { } d ? new MqttProperties { WillDelayInterval = d } : null,
    };

    [Theory]
    [InlineData(RawVersion.V311)]
    [InlineData(RawVersion.V500)]
    public async Task MQTT_3_1_2_8_Will_is_published_when_the_connection_closes_without_DISCONNECT(RawVersion version)
    {
        await using var broker = await BrokerInstance.StartAsync();
        var (subscriber, messages) = await SubscriberAsync(broker, V500, "will/#");
        using var _ = subscriber;
        var raw = await RawConnectedAsync(broker, version, "dying", will: Will());
        await raw.DisposeAsync();
        var m = await messages.NextAsync();
        Assert.Equal(("will/t", "gone"), (m.Topic, m.ConvertPayloadToString()));
    }

    [Theory]
    [InlineData(RawVersion.V311)]
    [InlineData(RawVersion.V500)]
    public async Task MQTT_3_14_4_3_Will_is_discarded_after_a_normal_DISCONNECT(RawVersion version)
    {
        await using var broker = await BrokerInstance.StartAsync();
        var (subscriber, messages) = await SubscriberAsync(broker, V500, "will/#");
        using var _ = subscriber;
        await using (var raw = await RawConnectedAsync(broker, version, "polite", will: Will()))
        {
            await raw.SendAsync(new DisconnectPacket { ReasonCode = ReasonCode.NormalDisconnection }, version);
            await raw.ReadUntilClosedAsync(version, LogWait);
        }
        await broker.Logs.WaitForAsync(ClientDisconnectedEvent, "Client polite disconnected", LogWait);
        using var publisher = await MqttClients.ConnectAsync(broker, V500);
        await publisher.PublishAsync("will/marker", "marker", MqttQualityOfServiceLevel.AtLeastOnce);
        Assert.Equal("will/marker", (await messages.NextAsync()).Topic);
    }

    [Fact]
    public async Task MQTT_3_14_4_3_DISCONNECT_0x04_publishes_the_will()
    {
        await using var broker = await BrokerInstance.StartAsync();
        var (subscriber, messages) = await SubscriberAsync(broker, V500, "will/#");
        using var _ = subscriber;
        using var client = await MqttClients.ConnectAsync(broker, V500, "leaving", o => o.WithWillTopic("will/t").WithWillPayload("gone"));
        await client.DisconnectAsync(new MqttClientDisconnectOptionsBuilder().WithReason(MqttClientDisconnectOptionsReason.DisconnectWithWillMessage).Build());
        Assert.Equal("gone", (await messages.NextAsync()).ConvertPayloadToString());
    }

    [Fact]
    public async Task MQTT_3_1_2_8_Will_Delay_Interval_delays_the_will()
    {
        var time = new FakeTimeProvider();
        await using var broker = await BrokerInstance.StartAsync(configureServices: s => s.AddSingleton<TimeProvider>(time));
        var (subscriber, messages) = await SubscriberAsync(broker, V500, "will/#", configure: o => o.WithKeepAlivePeriod(TimeSpan.Zero));
        using var _ = subscriber;
        var raw = await RawConnectedAsync(broker, RawVersion.V500, "late", cleanStart: false,
            properties: new MqttProperties { SessionExpiryInterval = 60 }, will: Will(delaySeconds: 5));
        await raw.DisposeAsync();
        await broker.Logs.WaitForAsync(ClientDisconnectedEvent, "Client late disconnected", LogWait);
        time.Advance(TimeSpan.FromSeconds(4));
        await messages.AssertNothingAsync();
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal("gone", (await messages.NextAsync()).ConvertPayloadToString());
    }

    [Fact]
    public async Task MQTT_3_1_3_9_Reconnect_within_the_Will_Delay_Interval_cancels_the_will()
    {
        var time = new FakeTimeProvider();
        await using var broker = await BrokerInstance.StartAsync(configureServices: s => s.AddSingleton<TimeProvider>(time));
        var (subscriber, messages) = await SubscriberAsync(broker, V500, "will/#", configure: o => o.WithKeepAlivePeriod(TimeSpan.Zero));
        using var _ = subscriber;
        var sessionProps = new MqttProperties { SessionExpiryInterval = 60 };
        var raw = await RawConnectedAsync(broker, RawVersion.V500, "back", cleanStart: false, properties: sessionProps, will: Will(delaySeconds: 5));
        await raw.DisposeAsync();
        await broker.Logs.WaitForAsync(ClientDisconnectedEvent, "Client back disconnected", LogWait);
        time.Advance(TimeSpan.FromSeconds(2));
        await using var again = await RawConnectedAsync(broker, RawVersion.V500, "back", cleanStart: false, properties: sessionProps);
        time.Advance(TimeSpan.FromSeconds(10));
        await again.SendAsync(new PublishPacket { Topic = "will/marker", Payload = "marker"u8.ToArray() }, RawVersion.V500);
        Assert.Equal("will/marker", (await messages.NextAsync()).Topic);
    }

    [Fact]
    public async Task MQTT_3_1_2_8_Will_is_published_when_the_session_ends_before_the_delay()
    {
        var time = new FakeTimeProvider();
        await using var broker = await BrokerInstance.StartAsync(configureServices: s => s.AddSingleton<TimeProvider>(time));
        var (subscriber, messages) = await SubscriberAsync(broker, V500, "will/#", configure: o => o.WithKeepAlivePeriod(TimeSpan.Zero));
        using var _ = subscriber;
        // Session expiry 0 ends the session with the connection: the will goes out at once despite a 30 s delay.
        var raw = await RawConnectedAsync(broker, RawVersion.V500, "short", will: Will(delaySeconds: 30));
        await raw.DisposeAsync();
        Assert.Equal("gone", (await messages.NextAsync()).ConvertPayloadToString());
    }
}
