using Broker.Protocol;
using Conformance.Infrastructure;
using Xunit;
using static Conformance.KeepAlive.KeepAliveBounds;

namespace Conformance.KeepAlive;

/// <summary>
/// Broker:KeepAlive policy. 5.0 can be told another value with Server Keep Alive, which the client must use
/// [MQTT-3.2.2-21]; 3.1.1 cannot, so a 3.1.1 client outside the policy is refused (CONNACK 0x02) with a log line.
/// </summary>
[Collection(Conformance.Infrastructure.RealTimeCollection.Name)]
public sealed class KeepAliveNegotiationTests
{
    private const int ConnectedEventId = 2;
    private const int RefusedEventId = 5;

    [Fact]
    public async Task MQTT_3_2_2_21_v5_client_above_MaxSeconds_is_given_Server_Keep_Alive_MaxSeconds()
    {
        await using var broker = await BrokerInstance.StartAsync(new Dictionary<string, string?> { ["Broker:KeepAlive:MaxSeconds"] = "10" });

        await using var greedy = await RawClient.ConnectAsync(broker);
        var ack = await greedy.HandshakeAsync(MqttProtocolVersion.V500, "asks-60", 60);
        Assert.Equal(0, ack.ReasonCode);
        Assert.Equal((ushort)10, ack.Properties?.ServerKeepAlive);
        Assert.Contains(broker.Logs.Messages(ConnectedEventId), m => m.Contains("Client asks-60 ") && m.Contains("keep-alive 10s (requested 60s)"));

        // Within the policy: no Server Keep Alive at all, the client's own value stands [MQTT-3.1.2-21].
        await using var modest = await RawClient.ConnectAsync(broker);
        var modestAck = await modest.HandshakeAsync(MqttProtocolVersion.V500, "asks-5", 5);
        Assert.Null(modestAck.Properties?.ServerKeepAlive);
    }

    [Fact]
    public async Task MQTT_3_2_2_21_v5_client_is_held_to_ServerKeepAliveSeconds()
    {
        await using var broker = await BrokerInstance.StartAsync(new Dictionary<string, string?> { ["Broker:KeepAlive:ServerKeepAliveSeconds"] = "1" });
        var (client, clock, ack) = await KeepAliveClients.ConnectAsync(broker, MqttProtocolVersion.V500, "told-1", 60);
        await using var _client = client;
        Assert.Equal((ushort)1, ack.Properties?.ServerKeepAlive);

        var watch = new ConnectionWatch(client, MqttProtocolVersion.V500, clock);
        var closedAt = await watch.WaitClosedAsync(TimeSpan.FromSeconds(5));
        TestContext.Current.SendDiagnosticMessage($"5.0 asked 60, told 1: closed at {closedAt?.TotalSeconds:F3}s");
        AssertClosedInWindow("told-1", closedAt, Grace(1));
        var disconnect = Assert.IsType<DisconnectPacket>(Assert.Single(watch.Packets).Packet);
        Assert.Equal(ReasonCode.KeepAliveTimeout, disconnect.ReasonCode);
    }

    [Fact]
    public async Task AllowZero_false_gives_v5_Server_Keep_Alive_and_refuses_v311()
    {
        await using var broker = await BrokerInstance.StartAsync(new Dictionary<string, string?>
        {
            ["Broker:KeepAlive:AllowZero"] = "false",
            ["Broker:KeepAlive:MaxSeconds"] = "30",
        });

        await using var v5 = await RawClient.ConnectAsync(broker);
        var ack = await v5.HandshakeAsync(MqttProtocolVersion.V500, "v5-zero", 0);
        Assert.Equal(0, ack.ReasonCode);
        Assert.Equal((ushort)30, ack.Properties?.ServerKeepAlive);

        await using var v311 = await RawClient.ConnectAsync(broker);
        var refusal = await v311.HandshakeAsync(MqttProtocolVersion.V311, "v311-zero", 0);
        Assert.Equal((byte)ConnectReturnCode.IdentifierRejected, refusal.ReasonCode);
        Assert.Null(await v311.ReceiveAsync(MqttProtocolVersion.V311, TimeSpan.FromSeconds(5)));
        Assert.Contains(broker.Logs.Messages(RefusedEventId), m => m.Contains("v311-zero") && m.Contains("Broker:KeepAlive:AllowZero=false"));
    }

    [Fact]
    public async Task V311_client_above_MaxSeconds_is_refused_with_0x02_and_a_log_line()
    {
        await using var broker = await BrokerInstance.StartAsync(new Dictionary<string, string?> { ["Broker:KeepAlive:MaxSeconds"] = "10" });

        await using var greedy = await RawClient.ConnectAsync(broker);
        var refusal = await greedy.HandshakeAsync(MqttProtocolVersion.V311, "v311-asks-11", 11);
        Assert.Equal((byte)ConnectReturnCode.IdentifierRejected, refusal.ReasonCode);
        Assert.Null(await greedy.ReceiveAsync(MqttProtocolVersion.V311, TimeSpan.FromSeconds(5)));
        Assert.Contains(broker.Logs.Messages(RefusedEventId),
            m => m.Contains("v311-asks-11") && m.Contains("Keep Alive 11 s exceeds Broker:KeepAlive:MaxSeconds (10 s)"));

        // The limit itself is allowed.
        await using var atLimit = await RawClient.ConnectAsync(broker);
        Assert.Equal(0, (await atLimit.HandshakeAsync(MqttProtocolVersion.V311, "v311-asks-10", 10)).ReasonCode);
    }
}
