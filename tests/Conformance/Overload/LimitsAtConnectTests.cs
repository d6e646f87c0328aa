using System.Buffers;
using System.Net.Sockets;
using Broker.Protocol;
using Conformance.Infrastructure;
using Conformance.Operations;
using Xunit;

namespace Conformance.Overload;

/// <summary>
/// Limits on what a client can make the broker hold (issue #11), each refused cleanly with the spec's reason code and
/// counted in mqtt_limits_refusals_total.
/// </summary>
public sealed class LimitsAtConnectTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task Past_MaxConnections_CONNECT_is_refused_with_0x97_in_5_0_and_0x03_in_3_1_1()
    {
        await using var broker = await BrokerInstance.StartAsync(new Dictionary<string, string?> { ["Broker:Limits:MaxConnections"] = "2" });
        using var scraper = new MetricsScraper(broker);
        await using var first = await RawClient.ConnectAsync(broker);
        Assert.Equal(0, (await first.HandshakeAsync(MqttProtocolVersion.V311, "c1", 60)).ReasonCode);
        await using var second = await RawClient.ConnectAsync(broker);
        Assert.Equal(0, (await second.HandshakeAsync(MqttProtocolVersion.V500, "c2", 60)).ReasonCode);

        await using var over5 = await RawClient.ConnectAsync(broker);
        Assert.Equal((byte)ReasonCode.QuotaExceeded, (await over5.HandshakeAsync(MqttProtocolVersion.V500, "c3", 60)).ReasonCode);
        await using var over3 = await RawClient.ConnectAsync(broker);
        Assert.Equal((byte)ConnectReturnCode.ServerUnavailable, (await over3.HandshakeAsync(MqttProtocolVersion.V311, "c4", 60)).ReasonCode);
        await scraper.WaitUntilAsync(s => MetricsScraper.Value(s, "mqtt_limits_refusals_total", ("limit", "connections")) == 2, "two refusals at MaxConnections");

        // The refused ones are closed by the broker; room again once a client leaves.
        Assert.Empty(await over5.ReadUntilClosedAsync(MqttProtocolVersion.V500, Timeout));
        Assert.Empty(await over3.ReadUntilClosedAsync(MqttProtocolVersion.V311, Timeout));
        await over5.DisposeAsync();
        await over3.DisposeAsync();
        await first.SendAsync(new DisconnectPacket(), MqttProtocolVersion.V311);
        await first.ReadUntilClosedAsync(MqttProtocolVersion.V311, Timeout);
        await WaitForCountAsync(broker, 1);
        await using var again = await RawClient.ConnectAsync(broker);
        Assert.Equal(0, (await again.HandshakeAsync(MqttProtocolVersion.V311, "c5", 60)).ReasonCode);
    }

    [Fact]
    public async Task Past_MaxSessions_a_new_client_is_refused_and_a_known_one_still_comes_back()
    {
        await using var broker = await BrokerInstance.StartAsync(new Dictionary<string, string?> { ["Broker:Limits:MaxSessions"] = "1" });
        await using (var persistent = await RawClient.ConnectAsync(broker))
        {
            await persistent.HandshakeAsync(MqttProtocolVersion.V500, "kept", 60, cleanStart: false, properties: new MqttProperties { SessionExpiryInterval = 600 });
            await persistent.SendAsync(new DisconnectPacket(), MqttProtocolVersion.V500);
            await persistent.ReadUntilClosedAsync(MqttProtocolVersion.V500, Timeout);
        }
        await using var newcomer = await RawClient.ConnectAsync(broker);
        Assert.Equal((byte)ReasonCode.QuotaExceeded, (await newcomer.HandshakeAsync(MqttProtocolVersion.V500, "new", 60)).ReasonCode);
        await using var back = await RawClient.ConnectAsync(broker);
        var ack = await back.HandshakeAsync(MqttProtocolVersion.V500, "kept", 60, cleanStart: false, properties: new MqttProperties { SessionExpiryInterval = 600 });
        Assert.Equal(0, ack.ReasonCode);
        Assert.True(ack.SessionPresent);
    }

    [Theory]
    [InlineData(MqttProtocolVersion.V311, 0x80)]
    [InlineData(MqttProtocolVersion.V500, (int)ReasonCode.QuotaExceeded)]
    public async Task Past_MaxSubscriptionsPerClient_only_the_extra_filter_is_refused(MqttProtocolVersion version, int refusal)
    {
        await using var broker = await BrokerInstance.StartAsync(new Dictionary<string, string?> { ["Broker:Limits:MaxSubscriptionsPerClient"] = "2" });
        await using var client = await RawClient.ConnectAsync(broker);
        await client.HandshakeAsync(version, "subs", 60);
        await client.SendAsync(new SubscribePacket
        {
            PacketId = 1,
            Subscriptions = [new TopicSubscription("a", QualityOfService.AtLeastOnce), new TopicSubscription("b", QualityOfService.AtMostOnce), new TopicSubscription("c", QualityOfService.AtMostOnce)],
        }, version);
        var ack = Assert.IsType<SubAckPacket>(await client.ReceiveAsync(version, Timeout));
        Assert.Equal([1, 0, (byte)refusal], ack.ReasonCodes);
        // Re-subscribing to a filter it has is a replacement, not one more [MQTT-3.8.4-3].
        await client.SendAsync(new SubscribePacket { PacketId = 2, Subscriptions = [new TopicSubscription("a", QualityOfService.AtMostOnce)] }, version);
        Assert.Equal([0], Assert.IsType<SubAckPacket>(await client.ReceiveAsync(version, Timeout)).ReasonCodes);
    }

    [Fact]
    public async Task A_packet_left_half_sent_is_closed_after_PartialPacketTimeoutSeconds_even_with_keep_alive_0()
    {
        await using var broker = await BrokerInstance.StartAsync(new Dictionary<string, string?> { ["Broker:Limits:PartialPacketTimeoutSeconds"] = "1" });
        using var scraper = new MetricsScraper(broker);
        await using var client = await RawClient.ConnectAsync(broker);
        await client.HandshakeAsync(MqttProtocolVersion.V311, "half", keepAlive: 0);
        var publish = new ArrayBufferWriter<byte>();
        MqttPacketWriter.Write(publish, new PublishPacket { Topic = "t", Payload = new byte[100_000] }, MqttProtocolVersion.V311);
        await client.Socket.SendAsync(publish.WrittenMemory[..50_000], SocketFlags.None);

        Assert.Empty(await client.ReadUntilClosedAsync(MqttProtocolVersion.V311, Timeout));
        await broker.Logs.WaitForAsync(3, "Client half disconnected: MQTT 3.1.1, keep-alive 0s, cause partial_packet_timeout", Timeout);
        await scraper.WaitUntilAsync(s => MetricsScraper.Value(s, "mqtt_limits_refusals_total", ("limit", "partial_packet_timeout")) == 1, "one partial packet closed");
    }

    [Fact]
    public async Task A_SUBSCRIBE_repeating_a_filter_replays_the_retained_messages_once_and_within_the_queue_limits()
    {
        await using var broker = await BrokerInstance.StartAsync(new Dictionary<string, string?>
        {
            ["Broker:Limits:MaxQueuedMessages"] = "20",
            ["Broker:Limits:MaxInflightMessages"] = "10",
            ["Broker:Sys:IntervalSeconds"] = "0",
        });
        await using (var publisher = await RawClient.ConnectAsync(broker))
        {
            await publisher.HandshakeAsync(MqttProtocolVersion.V311, "retainer", 60);
            for (ushort i = 1; i <= 100; i++)
            {
                await publisher.SendAsync(new PublishPacket { Topic = $"state/{i}", QoS = QualityOfService.AtLeastOnce, PacketId = i, Retain = true, Payload = new byte[10] }, MqttProtocolVersion.V311);
                Assert.IsType<PubAckPacket>(await publisher.ReceiveAsync(MqttProtocolVersion.V311, Timeout));
            }
        }

        await using var subscriber = await RawClient.ConnectAsync(broker);
        await subscriber.HandshakeAsync(MqttProtocolVersion.V311, "greedy", 60);
        await subscriber.SendAsync(new SubscribePacket
        {
            PacketId = 1,
            Subscriptions = [.. Enumerable.Repeat(new TopicSubscription("#", QualityOfService.AtLeastOnce), 1000)],
        }, MqttProtocolVersion.V311);

        Assert.IsType<SubAckPacket>(await subscriber.ReceiveAsync(MqttProtocolVersion.V311, Timeout));
        // One SUBSCRIBE replays at most what the session's queue may hold: 20 of the 100, never 100,000.
        var received = new List<PublishPacket>();
        while (received.Count < 20)
        {
            var publish = Assert.IsType<PublishPacket>(await subscriber.ReceiveAsync(MqttProtocolVersion.V311, Timeout));
            received.Add(publish);
            await subscriber.SendAsync(new PubAckPacket { PacketId = publish.PacketId }, MqttProtocolVersion.V311);
        }
        await subscriber.AssertNothingBeforePingRespAsync(MqttProtocolVersion.V311);
        Assert.Equal(20, received.Select(p => p.Topic).Distinct().Count());
    }

    [Fact]
    public async Task Past_ConnectRate_accepting_pauses_and_every_client_still_gets_in()
    {
        await using var broker = await BrokerInstance.StartAsync(new Dictionary<string, string?>
        {
            ["Broker:Limits:ConnectRate"] = "20",
            ["Broker:Limits:ConnectBurst"] = "2",
        });
        using var scraper = new MetricsScraper(broker);
        var clients = new List<RawClient>();
        try
        {
            var connects = Enumerable.Range(0, 12).Select(async i =>
            {
                var client = await RawClient.ConnectAsync(broker);
                lock (clients)
                {
                    clients.Add(client);
                }
                return await client.HandshakeAsync(MqttProtocolVersion.V311, $"rate-{i}", 60);
            }).ToArray();
            foreach (var ack in await Task.WhenAll(connects))
            {
                Assert.Equal(0, ack.ReasonCode);
            }
            await scraper.WaitUntilAsync(s => MetricsScraper.Value(s, "mqtt_limits_refusals_total", ("limit", "connect_rate")) >= 1, "accepting paused at least once");
        }
        finally
        {
            foreach (var client in clients)
            {
                await client.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task Client_ids_with_control_characters_cannot_forge_log_lines()
    {
        await using var broker = await BrokerInstance.StartAsync();
        await using var client = await RawClient.ConnectAsync(broker);
        await client.HandshakeAsync(MqttProtocolVersion.V311, "evil\r\nINFO forged line \u001b[31m", 60);
        await client.SendAsync(new DisconnectPacket(), MqttProtocolVersion.V311);
        string line = await broker.Logs.WaitForAsync(3, "forged line", Timeout);
        Assert.DoesNotContain('\r', line);
        Assert.DoesNotContain('\n', line);
        Assert.DoesNotContain('\u001b', line);
        Assert.Contains("evil\\u000d\\u000aINFO forged line \\u001b[31m", line);
    }

    [Fact]
    public async Task A_refused_CONNECT_cannot_forge_log_lines_with_its_client_id_either()
    {
        await using var broker = await BrokerInstance.StartAsync(new Dictionary<string, string?> { ["Broker:Auth:AllowAnonymous"] = "false" });
        await using var client = await RawClient.ConnectAsync(broker);
        var ack = await client.HandshakeAsync(MqttProtocolVersion.V311, "evil\r\nINFO forged refusal \u001b[31m", 60);
        Assert.Equal((byte)ConnectReturnCode.NotAuthorized, ack.ReasonCode);
        // Event 5: the refusal with its reason.
        string line = await broker.Logs.WaitForAsync(5, "forged refusal", Timeout);
        Assert.DoesNotContain('\r', line);
        Assert.DoesNotContain('\n', line);
        Assert.DoesNotContain('\u001b', line);
        Assert.Contains("evil\\u000d\\u000aINFO forged refusal \\u001b[31m", line);
    }

    private static async Task WaitForCountAsync(BrokerInstance broker, int count)
    {
        var registry = Microsoft.Extensions.DependencyInjection.ServiceProviderServiceExtensions.GetRequiredService<Broker.Connections.ConnectionRegistry>(broker.Services);
        await Eventually.TrueAsync(() => registry.Count <= count, Timeout, "the closed connection stayed registered");
    }
}
