using System.Threading.Channels;
using MQTTnet;
using Xunit;

namespace Conformance.Infrastructure;

/// <summary>
/// Collects the application messages an MQTTnet client receives. Every wait is bounded; proving that
/// something did not arrive is a short bounded wait that must time out.
/// </summary>
internal sealed class MessageCollector
{
    public static readonly TimeSpan Arrival = TimeSpan.FromSeconds(5);
    public static readonly TimeSpan Absence = TimeSpan.FromMilliseconds(300);

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

    /// <summary>Fails if a message arrives within <see cref="Absence"/>.</summary>
    public async Task AssertNothingAsync()
    {
        using var cts = new CancellationTokenSource(Absence);
        try
        {
            var unexpected = await _messages.Reader.ReadAsync(cts.Token);
            Assert.Fail($"unexpected message on '{unexpected.Topic}': {unexpected.ConvertPayloadToString()}");
        }
        catch (OperationCanceledException)
        {
            // Nothing arrived: as expected.
        }
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
        string? clientId = null, Action<MqttClientOptionsBuilder>? configure = null)
    {
        var client = await MqttClients.ConnectAsync(broker, version, clientId, configure);
        var messages = new MessageCollector(client);
        await client.SubscribeAsync(filter, qos);
        return (client, messages);
    }

    public static async Task<T> ExpectAsync<T>(this RawClient raw, Broker.Protocol.MqttProtocolVersion version, TimeSpan? timeout = null)
        where T : Broker.Protocol.MqttPacket
    {
        var packet = await raw.ReceiveAsync(version, timeout ?? TimeSpan.FromSeconds(5));
        return packet as T ?? throw new Xunit.Sdk.XunitException($"expected {typeof(T).Name}, got {packet?.Type.ToString() ?? "connection closed"}");
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
