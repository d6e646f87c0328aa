using Conformance.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using MQTTnet;
using MQTTnet.Protocol;
using Xunit;
using static Conformance.Infrastructure.TestClients;
using NetVersion = MQTTnet.Formatter.MqttProtocolVersion;

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
    public async Task MQTT_3_1_2_23_Session_is_kept_for_its_expiry_interval_and_then_discarded()
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
}
