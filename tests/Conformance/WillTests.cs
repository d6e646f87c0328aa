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
        // Retain As Published 1: the subscriber sees the RETAIN flag the will was published with, not a cleared one.
        var (subscriber, messages) = await SubscriberAsync(broker, V500, "will/#", configure: null, retainAsPublished: true);
        using var _ = subscriber;
        var raw = await RawConnectedAsync(broker, version, "dying", will: Will());
        await raw.DisposeAsync();
        var m = await messages.NextAsync();
        Assert.Equal(("will/t", "gone"), (m.Topic, m.ConvertPayloadToString()));
        // [MQTT-3.1.2-16 (3.1.1) / 3.1.2-14 (5.0)] Will Retain 0: published as a non-retained message...
        Assert.False(m.Retain);
        // ...so a later subscriber gets no retained will.
        var (late, lateMessages) = await SubscriberAsync(broker, V500, "will/#");
        using var __ = late;
        await lateMessages.AssertNothingBeforeMarkerAsync(subscriber, "will/marker");
    }

    [Theory]
    [InlineData(RawVersion.V311)]
    [InlineData(RawVersion.V500)]
    public async Task MQTT_3_1_2_17_Will_with_Will_Retain_1_is_published_as_retained(RawVersion version)
    {
        await using var broker = await BrokerInstance.StartAsync();
        var will = Will();
        will.Retain = true;
        var raw = await RawConnectedAsync(broker, version, "retaining", will: will);
        await raw.DisposeAsync();
        await broker.Logs.WaitForAsync(ClientDisconnectedEvent, "Client retaining disconnected", LogWait);
        var (subscriber, messages) = await SubscriberAsync(broker, V500, "will/#");
        using var _ = subscriber;
        var m = await messages.NextAsync();
        Assert.Equal("gone", m.ConvertPayloadToString());
        // Sent because of a new subscription: RETAIN 1 only if the will was stored as retained.
        Assert.True(m.Retain);
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
        await messages.AssertNothingBeforeMarkerAsync(publisher, "will/marker");
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
        // The will timer runs inside Advance: had it fired, the will would be queued before the marker.
        await messages.AssertNothingBeforeMarkerAsync(subscriber, "will/marker");
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
        await messages.AssertNothingBeforeMarkerAsync(subscriber, "will/marker");
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
    [Theory]
    [InlineData(RawVersion.V311)]
    [InlineData(RawVersion.V500)]
    public async Task MQTT_3_1_4_3_Will_of_a_connection_taken_over_is_published_once(RawVersion version)
    {
        await using var broker = await BrokerInstance.StartAsync();
        var (subscriber, messages) = await SubscriberAsync(broker, V500, "will/#");
        using var _ = subscriber;
        await using var old = await RawConnectedAsync(broker, version, "device-7", will: Will());
        var replacementWill = new WillMessage { Topic = "will/replacement", Payload = "replacement gone"u8.ToArray() };
        await using var replacement = await RawConnectedAsync(broker, version, "device-7", will: replacementWill);
        await old.ReadUntilClosedAsync(version, LogWait);
        // The old connection ended without DISCONNECT: its will (no delay) goes out [MQTT-3.1.2-8], once; the
        // new connection's will stays armed.
        var will = await messages.NextAsync();
        Assert.Equal(("will/t", "gone"), (will.Topic, will.ConvertPayloadToString()));
        await messages.AssertNothingBeforeMarkerAsync(subscriber, "will/marker");
        await replacement.DisposeAsync();
        Assert.Equal("will/replacement", (await messages.NextAsync()).Topic);
    }

    [Fact]
    public async Task MQTT_3_1_3_9_Takeover_within_the_Will_Delay_Interval_publishes_no_will()
    {
        await using var broker = await BrokerInstance.StartAsync();
        var (subscriber, messages) = await SubscriberAsync(broker, V500, "will/#");
        using var _ = subscriber;
        var session = new MqttProperties { SessionExpiryInterval = 60 };
        await using var old = await RawConnectedAsync(broker, RawVersion.V500, "device-8", cleanStart: false, properties: session, will: Will(delaySeconds: 30));
        await using var replacement = await RawConnectedAsync(broker, RawVersion.V500, "device-8", cleanStart: false, properties: session);
        await old.ReadUntilClosedAsync(RawVersion.V500, LogWait);
        await broker.Logs.WaitForAsync(ClientDisconnectedEvent, "Client device-8 disconnected", LogWait);
        await messages.AssertNothingBeforeMarkerAsync(subscriber, "will/marker");
    }
}
