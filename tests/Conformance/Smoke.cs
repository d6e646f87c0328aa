using Broker.Protocol;
using Conformance.Infrastructure;
using MQTTnet;
using Xunit;

namespace Conformance;

/// <summary>The broker starts, accepts both protocol versions and routes a message end to end.</summary>
public sealed class Smoke
{
    [Theory]
    [InlineData(MQTTnet.Formatter.MqttProtocolVersion.V311)]
    [InlineData(MQTTnet.Formatter.MqttProtocolVersion.V500)]
    public async Task Publish_and_subscribe_round_trip(MQTTnet.Formatter.MqttProtocolVersion version)
    {
        await using var broker = await BrokerInstance.StartAsync();
        using var subscriber = await MqttClients.ConnectAsync(broker, version);
        var received = new TaskCompletionSource<MqttApplicationMessage>(TaskCreationOptions.RunContinuationsAsynchronously);
        subscriber.ApplicationMessageReceivedAsync += e =>
        {
            received.TrySetResult(e.ApplicationMessage);
            return Task.CompletedTask;
        };
        await subscriber.SubscribeAsync("smoke/+", MQTTnet.Protocol.MqttQualityOfServiceLevel.AtLeastOnce);
        using var publisher = await MqttClients.ConnectAsync(broker, version);
        await publisher.PublishStringAsync("smoke/a", "hello", MQTTnet.Protocol.MqttQualityOfServiceLevel.AtLeastOnce);
        var message = await received.Task.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal("smoke/a", message.Topic);
        Assert.Equal("hello", message.ConvertPayloadToString());
    }

    [Fact]
    public async Task Raw_client_gets_pingresp()
    {
        await using var broker = await BrokerInstance.StartAsync();
        await using var raw = await RawClient.ConnectAsync(broker);
        var ack = await raw.HandshakeAsync(MqttProtocolVersion.V311, "raw1", 30);
        Assert.Equal(0, ack.ReasonCode);
        await raw.SendAsync([0xC0, 0x00]);
        var reply = await raw.ReceiveAsync(MqttProtocolVersion.V311, TimeSpan.FromSeconds(5));
        Assert.IsType<PingRespPacket>(reply);
    }
}
