using Broker.Protocol;
using Conformance.Infrastructure;
using MQTTnet;
using Xunit;
using static Conformance.Infrastructure.TestClients;
using NetVersion = MQTTnet.Formatter.MqttProtocolVersion;

namespace Conformance;

/// <summary>CONNECT / CONNACK: section 3.1 and 3.2 of both specifications.</summary>
public sealed class ConnectTests
{
    private static readonly TimeSpan CloseWait = TimeSpan.FromSeconds(5);

    /// <summary>A CONNECT built byte by byte so that level and flags can be anything.</summary>
    private static byte[] ConnectBytes(byte level, byte flags, string clientId = "x")
    {
        var body = new List<byte>
        {
            0x00, 0x04, (byte)'M', (byte)'Q', (byte)'T', (byte)'T', // protocol name
            level,
            flags,
            0x00, 0x3C,                                              // keep alive 60 s
        };
        if (level == 5)
        {
            body.Add(0x00);                                          // properties length
        }
        body.Add(0x00);
        body.Add((byte)clientId.Length);
        body.AddRange(System.Text.Encoding.UTF8.GetBytes(clientId));
        return [0x10, (byte)body.Count, .. body];
    }

    [Theory]
    [InlineData(Broker.Protocol.MqttProtocolVersion.V311)]
    [InlineData(Broker.Protocol.MqttProtocolVersion.V500)]
    public async Task MQTT_3_1_0_1_First_packet_must_be_CONNECT(Broker.Protocol.MqttProtocolVersion version)
    {
        await using var broker = await BrokerInstance.StartAsync();
        await using var raw = await RawClient.ConnectAsync(broker);
        await raw.SendAsync(new PublishPacket { Topic = "a", Payload = "x"u8.ToArray() }, version);
        var answers = await raw.ReadUntilClosedAsync(version, CloseWait);
        Assert.Empty(answers);
    }

    [Fact]
    public async Task MQTT_3_1_0_2_Second_CONNECT_closes_the_connection_V311()
    {
        await using var broker = await BrokerInstance.StartAsync();
        await using var raw = await RawConnectedAsync(broker, Broker.Protocol.MqttProtocolVersion.V311, "twice");
        await raw.SendAsync(new ConnectPacket { ProtocolVersion = Broker.Protocol.MqttProtocolVersion.V311, ClientId = "twice", KeepAliveSeconds = 60, CleanStart = true },
            Broker.Protocol.MqttProtocolVersion.V311);
        var answers = await raw.ReadUntilClosedAsync(Broker.Protocol.MqttProtocolVersion.V311, CloseWait);
        Assert.Empty(answers);
    }

    [Fact]
    public async Task MQTT_3_1_0_2_Second_CONNECT_gets_DISCONNECT_protocol_error_V500()
    {
        var v5 = Broker.Protocol.MqttProtocolVersion.V500;
        await using var broker = await BrokerInstance.StartAsync();
        await using var raw = await RawConnectedAsync(broker, v5, "twice");
        await raw.SendAsync(new ConnectPacket { ProtocolVersion = v5, ClientId = "twice", KeepAliveSeconds = 60, CleanStart = true }, v5);
        var answers = await raw.ReadUntilClosedAsync(v5, CloseWait);
        var disconnect = Assert.IsType<DisconnectPacket>(Assert.Single(answers));
        Assert.Equal(ReasonCode.ProtocolError, disconnect.ReasonCode);
    }

    [Theory]
    [InlineData(3, Broker.Protocol.MqttProtocolVersion.V311, 0x01)]
    [InlineData(6, Broker.Protocol.MqttProtocolVersion.V500, 0x84)]
    public async Task MQTT_3_1_2_2_Unsupported_protocol_level_is_refused_then_closed(byte level, Broker.Protocol.MqttProtocolVersion answerFormat, byte code)
    {
        await using var broker = await BrokerInstance.StartAsync();
        await using var raw = await RawClient.ConnectAsync(broker);
        await raw.SendAsync(ConnectBytes(level, 0x02));
        var answers = await raw.ReadUntilClosedAsync(answerFormat, CloseWait);
        var ack = Assert.IsType<ConnAckPacket>(Assert.Single(answers));
        Assert.Equal(code, ack.ReasonCode);
    }

    [Theory]
    [InlineData(4)]
    [InlineData(5)]
    public async Task MQTT_3_1_2_3_Reserved_connect_flag_set_closes_the_connection(byte level)
    {
        await using var broker = await BrokerInstance.StartAsync();
        await using var raw = await RawClient.ConnectAsync(broker);
        await raw.SendAsync(ConnectBytes(level, 0x03));
        var answers = await raw.ReadUntilClosedAsync((Broker.Protocol.MqttProtocolVersion)level, CloseWait);
        // 3.1.1: closed without CONNACK. 5.0 may explain with a CONNACK reason code >= 0x80 [MQTT-3.2.2-7].
        foreach (var answer in answers)
        {
            var ack = Assert.IsType<ConnAckPacket>(answer);
            Assert.Equal(5, level);
            Assert.True(ack.ReasonCode >= 0x80, $"reason 0x{ack.ReasonCode:X2}");
        }
    }

    [Fact]
    public async Task MQTT_3_1_3_8_Empty_client_id_with_clean_session_0_gets_CONNACK_0x02()
    {
        var v3 = Broker.Protocol.MqttProtocolVersion.V311;
        await using var broker = await BrokerInstance.StartAsync();
        await using var raw = await RawClient.ConnectAsync(broker);
        var ack = await raw.HandshakeAsync(v3, "", 60, cleanStart: false);
        Assert.Equal(0x02, ack.ReasonCode);
        Assert.Empty(await raw.ReadUntilClosedAsync(v3, CloseWait));
    }

    [Fact]
    public async Task MQTT_3_1_3_6_Empty_client_id_with_clean_session_1_is_accepted_V311()
    {
        await using var broker = await BrokerInstance.StartAsync();
        await using var raw = await RawClient.ConnectAsync(broker);
        var ack = await raw.HandshakeAsync(Broker.Protocol.MqttProtocolVersion.V311, "", 60, cleanStart: true);
        Assert.Equal(0x00, ack.ReasonCode);
    }

    [Fact]
    public async Task MQTT_3_2_2_16_Empty_client_id_gets_an_Assigned_Client_Identifier()
    {
        await using var broker = await BrokerInstance.StartAsync();
        await using var raw = await RawClient.ConnectAsync(broker);
        var ack = await raw.HandshakeAsync(Broker.Protocol.MqttProtocolVersion.V500, "", 60, cleanStart: true);
        Assert.Equal(0x00, ack.ReasonCode);
        Assert.False(string.IsNullOrEmpty(ack.Properties?.AssignedClientIdentifier));
    }

    [Theory]
    [InlineData(NetVersion.V311)]
    [InlineData(NetVersion.V500)]
    public async Task MQTT_3_2_2_2_Session_present_is_0_with_clean_start(NetVersion version)
    {
        await using var broker = await BrokerInstance.StartAsync();
        var first = await MqttClients.ConnectAsync(broker, version, "sp", o => o.WithCleanSession(false).WithSessionExpiryInterval(60));
        await first.DisconnectAsync();
        using var client = MqttClients.Factory.CreateMqttClient();
        var result = await client.ConnectAsync(MqttClients.Options(broker, version, "sp").WithCleanSession(true).Build());
        Assert.False(result.IsSessionPresent);
    }

    [Theory]
    [InlineData(NetVersion.V311)]
    [InlineData(NetVersion.V500)]
    public async Task MQTT_3_2_2_3_Session_present_is_1_when_a_session_is_resumed(NetVersion version)
    {
        await using var broker = await BrokerInstance.StartAsync();
        using var fresh = MqttClients.Factory.CreateMqttClient();
        var firstResult = await fresh.ConnectAsync(MqttClients.Options(broker, version, "sp").WithCleanSession(false).WithSessionExpiryInterval(60).Build());
        // [MQTT-3.2.2-4 (5.0) / 3.2.2-3 (3.1.1)] no session stored yet: Session Present 0.
        Assert.False(firstResult.IsSessionPresent);
        await fresh.DisconnectAsync();
        using var client = MqttClients.Factory.CreateMqttClient();
        var result = await client.ConnectAsync(MqttClients.Options(broker, version, "sp").WithCleanSession(false).WithSessionExpiryInterval(60).Build());
        Assert.True(result.IsSessionPresent);
    }

    [Theory]
    [InlineData(NetVersion.V311)]
    [InlineData(NetVersion.V500)]
    public async Task MQTT_3_1_4_3_Takeover_closes_the_existing_connection(NetVersion version)
    {
        await using var broker = await BrokerInstance.StartAsync();
        using var first = await MqttClients.ConnectAsync(broker, version, "same");
        var disconnected = new TaskCompletionSource<MqttClientDisconnectedEventArgs>(TaskCreationOptions.RunContinuationsAsynchronously);
        first.DisconnectedAsync += e =>
        {
            disconnected.TrySetResult(e);
            return Task.CompletedTask;
        };
        using var second = await MqttClients.ConnectAsync(broker, version, "same");
        var e = await disconnected.Task.WaitAsync(TimeSpan.FromSeconds(5));
        if (version == NetVersion.V500)
        {
            Assert.Equal(MqttClientDisconnectReason.SessionTakenOver, e.Reason);
        }
        Assert.True(second.IsConnected);
    }

    [Fact]
    public async Task MQTT_3_1_4_3_Takeover_sends_DISCONNECT_0x8E_to_the_old_connection_V500()
    {
        var v5 = Broker.Protocol.MqttProtocolVersion.V500;
        await using var broker = await BrokerInstance.StartAsync();
        await using var old = await RawConnectedAsync(broker, v5, "same");
        await using var replacement = await RawConnectedAsync(broker, v5, "same");
        var answers = await old.ReadUntilClosedAsync(v5, CloseWait);
        var disconnect = Assert.IsType<DisconnectPacket>(Assert.Single(answers));
        Assert.Equal(ReasonCode.SessionTakenOver, disconnect.ReasonCode);
    }
}
