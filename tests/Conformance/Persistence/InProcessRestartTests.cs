using System.Text;
using Broker.Protocol;
using Conformance.Infrastructure;
using Xunit;
using static Conformance.Persistence.PersistenceRestartTests;

namespace Conformance.Persistence;

/// <summary>
/// Restarts of the in-process broker on one store directory (faster than a child process): what comes back is the
/// message as it was published (5.0 properties, subscription options and identifiers), within the current limits.
/// </summary>
public sealed class InProcessRestartTests : IDisposable
{
    private static readonly MqttProtocolVersion V500 = MqttProtocolVersion.V500;
    private readonly string _store = BrokerInstance.NewStoreDirectory();

    public void Dispose() => BrokerInstance.DeleteStoreDirectory(_store);

    private Task<BrokerInstance> StartAsync(params (string Key, string Value)[] settings)
    {
        var all = new Dictionary<string, string?> { ["Broker:Persistence:Path"] = _store };
        foreach (var (key, value) in settings)
        {
            all[key] = value;
        }
        return BrokerInstance.StartAsync(all);
    }

    [Fact]
    public async Task Queued_messages_keep_their_properties_and_subscription_identifiers_across_a_restart()
    {
        var session = new MqttProperties { SessionExpiryInterval = 600 };
        await using (var broker = await StartAsync())
        {
            await using var sub = await ConnectAsync(broker.EndPoint, V500, "props-sub", cleanStart: true, expectPresent: false, session);
            await sub.SendAsync(new SubscribePacket
            {
                PacketId = 1,
                Subscriptions = [new TopicSubscription("props/#", QualityOfService.ExactlyOnce, NoLocal: true, RetainAsPublished: true)],
                Properties = new MqttProperties { SubscriptionIdentifiers = [42] },
            }, V500);
            await sub.ExpectAsync<SubAckPacket>(V500);
            await sub.SendAsync(new DisconnectPacket(), V500);

            await using var pub = await ConnectAsync(broker.EndPoint, V500, "props-pub", cleanStart: true, expectPresent: false);
            var publish = Publish("props/a", "with properties", QualityOfService.AtLeastOnce, 1);
            publish.Properties = new MqttProperties
            {
                ContentType = "text/plain",
                UserProperties = [new("k", "v")],
                MessageExpiryInterval = 3600,
            };
            await pub.SendAsync(publish, V500);
            await pub.ExpectAsync<PubAckPacket>(V500);
        }

        await using (var broker = await StartAsync())
        {
            await using var sub = await ConnectAsync(broker.EndPoint, V500, "props-sub", cleanStart: false, expectPresent: true, session);
            var delivered = await sub.ExpectAsync<PublishPacket>(V500);
            Assert.Equal("with properties", Encoding.UTF8.GetString(delivered.Payload.Span));
            Assert.Equal(QualityOfService.AtLeastOnce, delivered.QoS);
            Assert.Equal("text/plain", delivered.Properties?.ContentType);
            Assert.Equal([new KeyValuePair<string, string>("k", "v")], delivered.Properties?.UserProperties);
            Assert.Equal([42], delivered.Properties?.SubscriptionIdentifiers);
            Assert.InRange(delivered.Properties?.MessageExpiryInterval ?? 0, 3000u, 3600u);
            await sub.SendAsync(new PubAckPacket { PacketId = delivered.PacketId }, V500);

            // The subscription itself came back with its options: No Local still holds for the subscriber's own publish.
            await sub.SendAsync(Publish("props/own", "mine", QualityOfService.AtLeastOnce, 2), V500);
            await sub.ExpectAsync<PubAckPacket>(V500);
            await sub.AssertNothingBeforePingRespAsync(V500);
        }
    }

    [Fact]
    public async Task Retained_messages_beyond_lowered_limits_are_dropped_from_the_store_at_start_up()
    {
        await using (var broker = await StartAsync())
        {
            await using var pub = await ConnectAsync(broker.EndPoint, V500, "ret-pub", cleanStart: true, expectPresent: false);
            for (ushort i = 1; i <= 3; i++)
            {
                await pub.SendAsync(Publish($"ret/{i}", $"value {i}", QualityOfService.AtLeastOnce, i, retain: true), V500);
                await pub.ExpectAsync<PubAckPacket>(V500);
            }
        }

        await using (var broker = await StartAsync(("Broker:Limits:MaxRetainedMessages", "2")))
        {
            await broker.Logs.WaitForAsync(47, "1 retained messages over the current limits", TimeSpan.FromSeconds(5));
        }

        // What memory refused is gone from the store too, even with the limit raised again.
        await using (var broker = await StartAsync())
        {
            await broker.Logs.WaitForAsync(47, "2 retained messages,", TimeSpan.FromSeconds(5));
        }
    }
}
