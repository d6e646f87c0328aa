using System.Threading.Channels;
using MQTTnet;
using Xunit;

namespace Conformance.Infrastructure;

/// <summary>
/// Collects the application messages an MQTTnet client receives. Every wait is bounded. Absence is never
/// shown by waiting: a marker message is published after the thing that must not arrive, and the marker
/// must be the next message (the broker keeps one ordered queue per session, so anything routed to the
/// session before the marker would come first).
/// </summary>
internal sealed class MessageCollector
{
    public static readonly TimeSpan Arrival = TimeSpan.FromSeconds(5);

    private readonly Channel<MqttApplicationMessage> _messages = Channel.CreateUnbounded<MqttApplicationMessage>();

    public MessageCollector(IMqttClient client)
    {
        client.ApplicationMessageReceivedAsync += e =>
        {
            _messages.Writer.TryWrite(e.ApplicationMessage);
            return Task.CompletedTask;
        };
    }

    public async Task<MqttApplicationMessage> NextAsync(TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? Arrival);
        try
        {
            return await _messages.Reader.ReadAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"no message within {timeout ?? Arrival}");
        }
    }

    /// <summary>
    /// Proves that nothing arrived (or is still to arrive from what happened before this call): publishes a marker
    /// with <paramref name="publisher"/> on <paramref name="markerTopic"/>, which the collecting client must be
    /// subscribed to, and fails unless the next message received is that marker.
    /// </summary>
    public async Task AssertNothingBeforeMarkerAsync(IMqttClient publisher, string markerTopic)
    {
        string marker = "marker-" + Guid.NewGuid().ToString("N");
        await publisher.PublishAsync(new MqttApplicationMessageBuilder().WithTopic(markerTopic).WithPayload(marker)
            .WithQualityOfServiceLevel(MQTTnet.Protocol.MqttQualityOfServiceLevel.AtLeastOnce).Build());
        var next = await NextAsync();
        Assert.True(next.Topic == markerTopic && next.ConvertPayloadToString() == marker,
            $"unexpected message on '{next.Topic}' before the marker: {next.ConvertPayloadToString()}");
    }
}

/// <summary>Test-side shortcuts over MQTTnet and <see cref="RawClient"/>.</summary>
internal static class TestClients
{
    public static readonly MQTTnet.Formatter.MqttProtocolVersion V311 = MQTTnet.Formatter.MqttProtocolVersion.V311;
    public static readonly MQTTnet.Formatter.MqttProtocolVersion V500 = MQTTnet.Formatter.MqttProtocolVersion.V500;

    /// <summary>A connected MQTTnet client subscribed to <paramref name="filter"/>, with a collector attached before the subscription.</summary>
    public static async Task<(IMqttClient Client, MessageCollector Messages)> SubscriberAsync(BrokerInstance broker,
        MQTTnet.Formatter.MqttProtocolVersion version, string filter,
        MQTTnet.Protocol.MqttQualityOfServiceLevel qos = MQTTnet.Protocol.MqttQualityOfServiceLevel.ExactlyOnce,
        string? clientId = null, Action<MqttClientOptionsBuilder>? configure = null, bool retainAsPublished = false)
    {
        var client = await MqttClients.ConnectAsync(broker, version, clientId, configure);
        var messages = new MessageCollector(client);
        await client.SubscribeAsync(MqttClients.Factory.CreateSubscribeOptionsBuilder()
            .WithTopicFilter(f => f.WithTopic(filter).WithQualityOfServiceLevel(qos).WithRetainAsPublished(retainAsPublished)).Build());
        return (client, messages);
    }

    public static async Task<T> ExpectAsync<T>(this RawClient raw, Broker.Protocol.MqttProtocolVersion version, TimeSpan? timeout = null)
        where T : Broker.Protocol.MqttPacket
    {
        var packet = await raw.ReceiveAsync(version, timeout ?? TimeSpan.FromSeconds(5));
        return packet as T ?? throw new Xunit.Sdk.XunitException($"expected {typeof(T).Name}, got {packet?.Type.ToString() ?? "connection closed"}");
    }

    /// <summary>SUBSCRIBE to one filter (packet id 1) and the SUBACK that must answer it.</summary>
    public static async Task<Broker.Protocol.SubAckPacket> SubscribeAsync(this RawClient raw, string filter, Broker.Protocol.QualityOfService qos,
        Broker.Protocol.MqttProtocolVersion version, TimeSpan? timeout = null)
    {
        await raw.SendAsync(new Broker.Protocol.SubscribePacket { PacketId = 1, Subscriptions = [new Broker.Protocol.TopicSubscription(filter, qos)] }, version);
        return await raw.ExpectAsync<Broker.Protocol.SubAckPacket>(version, timeout);
    }

    /// <summary>
    /// The raw client's marker: PINGREQ, and PINGRESP must be the next packet. The broker answers a PINGREQ after
    /// everything it received before it, and writes queued messages before it flushes the PINGRESP, so a PUBLISH
    /// that was due (queued before the PINGREQ was sent) would come first.
    /// </summary>
    public static async Task AssertNothingBeforePingRespAsync(this RawClient raw, Broker.Protocol.MqttProtocolVersion version)
    {
        await raw.SendAsync([0xC0, 0x00]);
        var next = await raw.ReceiveAsync(version, TimeSpan.FromSeconds(5));
        Assert.True(next is Broker.Protocol.PingRespPacket, $"expected PINGRESP, got {next?.Type.ToString() ?? "connection closed"}"
            + (next is Broker.Protocol.PublishPacket p ? $" on '{p.Topic}'" : ""));
    }

    /// <summary>A raw client that has completed CONNECT/CONNACK.</summary>
    public static async Task<RawClient> RawConnectedAsync(BrokerInstance broker, Broker.Protocol.MqttProtocolVersion version, string clientId,
        bool cleanStart = true, Broker.Protocol.MqttProperties? properties = null, Broker.Protocol.WillMessage? will = null)
    {
        var raw = await RawClient.ConnectAsync(broker);
        var ack = await raw.HandshakeAsync(version, clientId, 60, cleanStart, properties, will);
        Assert.Equal(0, ack.ReasonCode);
        return raw;
    }

    public static Task<MqttClientPublishResult> PublishAsync(this IMqttClient client, string topic, string payload,
        MQTTnet.Protocol.MqttQualityOfServiceLevel qos = MQTTnet.Protocol.MqttQualityOfServiceLevel.AtMostOnce, bool retain = false)
        => client.PublishAsync(new MqttApplicationMessageBuilder().WithTopic(topic).WithPayload(payload)
            .WithQualityOfServiceLevel(qos).WithRetainFlag(retain).Build());
}
