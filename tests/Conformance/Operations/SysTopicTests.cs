using Conformance.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using MQTTnet;
using MQTTnet.Protocol;
using Xunit;
using static Conformance.Infrastructure.TestClients;

namespace Conformance.Operations;

/// <summary>$SYS/broker/... in Mosquitto's names, retained, republished on the interval when changed, read-only for clients.</summary>
public sealed class SysTopicTests
{
    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(10);

    private static Task<BrokerInstance> StartAsync(FakeTimeProvider time, int intervalSeconds = 10)
        => BrokerInstance.StartAsync(
            new Dictionary<string, string?> { ["Broker:Sys:IntervalSeconds"] = intervalSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture) },
            s => s.AddSingleton<TimeProvider>(time));

    /// <summary>Reads the retained messages a new $SYS subscriber gets: as many as the broker holds (all of them $SYS here).</summary>
    private static async Task<Dictionary<string, MqttApplicationMessage>> ReadRetainedAsync(BrokerInstance broker, MessageCollector messages)
    {
        int count = broker.Services.GetRequiredService<Broker.Routing.Router>().RetainedCount;
        var read = new Dictionary<string, MqttApplicationMessage>(StringComparer.Ordinal);
        while (read.Count < count)
        {
            var m = await messages.NextAsync();
            read[m.Topic] = m;
        }
        return read;
    }

    /// <summary>Reads messages until one on <paramref name="topic"/> with <paramref name="payload"/> arrives; returns all read.</summary>
    private static async Task<List<MqttApplicationMessage>> ReadUntilAsync(MessageCollector messages, string topic, string payload)
    {
        var read = new List<MqttApplicationMessage>();
        while (true)
        {
            var m = await messages.NextAsync();
            read.Add(m);
            if (m.Topic == topic && m.ConvertPayloadToString() == payload)
            {
                return read;
            }
        }
    }

    [Fact]
    public async Task A_late_subscriber_reads_the_retained_values_at_once_under_mosquittos_names()
    {
        var time = new FakeTimeProvider();
        await using var broker = await StartAsync(time);
        var (client, messages) = await SubscriberAsync(broker, V500, "$SYS/broker/#", MqttQualityOfServiceLevel.AtMostOnce);
        using var _ = client;

        // Published at start-up, before this client connected: so it comes from the retained store.
        var retained = await ReadRetainedAsync(broker, messages);
        var topics = retained.ToDictionary(p => p.Key, p => p.Value.ConvertPayloadToString());
        Assert.All(retained.Values, m => Assert.True(m.Retain, $"{m.Topic} should carry the retain flag"));
        Assert.Equal("0", topics["$SYS/broker/clients/connected"]);
        Assert.StartsWith("mqtt-broker version ", topics["$SYS/broker/version"]);
        Assert.Equal("0 seconds", topics["$SYS/broker/uptime"]);
        foreach (var name in new[] { "clients/total", "messages/received", "messages/sent", "publish/messages/received", "bytes/received",
            "load/messages/received/1min", "keepalive/expired", "disconnects/keep_alive_timeout" })
        {
            Assert.True(topics.ContainsKey("$SYS/broker/" + name), $"$SYS/broker/{name} missing; got {string.Join(", ", topics.Keys)}");
        }
        Assert.Empty(broker.Logs.Errors);
    }

    [Fact]
    public async Task Each_interval_republishes_what_changed_and_only_that()
    {
        var time = new FakeTimeProvider();
        await using var broker = await StartAsync(time);
        var (client, messages) = await SubscriberAsync(broker, V500, "$SYS/broker/#", MqttQualityOfServiceLevel.AtMostOnce);
        using var _ = client;
        await ReadRetainedAsync(broker, messages);

        time.Advance(Interval);
        // The subscriber is now a connected client with one subscription; uptime moved on; the version did not change.
        var read = await ReadUntilAsync(messages, "$SYS/broker/subscriptions/count", "1");
        var topics = read.Select(m => m.Topic).ToList();
        Assert.Contains("$SYS/broker/uptime", topics);
        Assert.Contains(read, m => m.Topic == "$SYS/broker/clients/connected" && m.ConvertPayloadToString() == "1");
        Assert.DoesNotContain("$SYS/broker/version", topics);
        Assert.DoesNotContain("$SYS/broker/keepalive/expired", topics);
    }

    [Fact]
    public async Task Interval_0_publishes_nothing()
    {
        var time = new FakeTimeProvider();
        await using var broker = await StartAsync(time, intervalSeconds: 0);
        var (client, messages) = await SubscriberAsync(broker, V500, "$SYS/#", MqttQualityOfServiceLevel.AtMostOnce);
        using var _ = client;
        await client.SubscribeAsync("marker");
        time.Advance(Interval);
        await client.PublishAsync("marker", "m");
        // Any retained $SYS message would have been sent at the first SUBSCRIBE, before the marker.
        Assert.Equal("marker", (await messages.NextAsync()).Topic);
    }

    [Fact]
    public async Task A_client_cannot_publish_into_SYS_5_0_learns_not_authorized_3_1_1_is_acknowledged_and_dropped()
    {
        var time = new FakeTimeProvider();
        await using var broker = await StartAsync(time);
        var (watcher, messages) = await SubscriberAsync(broker, V500, "$SYS/test/#", MqttQualityOfServiceLevel.AtLeastOnce);
        using var _ = watcher;
        await watcher.SubscribeAsync("marker", MqttQualityOfServiceLevel.AtLeastOnce);

        using var v5 = await MqttClients.ConnectAsync(broker, V500);
        var refused = await v5.PublishAsync("$SYS/test/forged", "1", MqttQualityOfServiceLevel.AtLeastOnce);
        Assert.Equal(MqttClientPublishReasonCode.NotAuthorized, refused.ReasonCode);

        using var v3 = await MqttClients.ConnectAsync(broker, V311);
        var acknowledged = await v3.PublishAsync("$SYS/test/forged", "2", MqttQualityOfServiceLevel.AtLeastOnce);
        Assert.True(acknowledged.IsSuccess);
        await v3.PublishAsync("$SYS/test/forged", "3", MqttQualityOfServiceLevel.ExactlyOnce);
        await v3.PublishAsync("marker", "after", MqttQualityOfServiceLevel.AtLeastOnce);

        // Same connection, so in order: had a forged message been routed it would have come first.
        Assert.Equal("marker", (await messages.NextAsync()).Topic);
        using var scraper = new MetricsScraper(broker);
        await scraper.WaitUntilAsync(s => MetricsScraper.Value(s, "mqtt_messages_dropped_total", ("reason", "not_authorized")) == 3,
            "three publishes into $SYS dropped as not_authorized");
    }
}
