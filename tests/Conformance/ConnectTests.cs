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
    private static byte[] ConnectBytes(byte level, byte flags, string clientId = "x", string protocolName = "MQTT")
    {
        var body = new List<byte>
        {
            0x00, 0x04, (byte)protocolName[0], (byte)protocolName[1], (byte)protocolName[2], (byte)protocolName[3], // protocol name
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

    [Fact]
    public async Task MQTT_4_12_0_1_Unsupported_authentication_method_gets_CONNACK_0x8C_then_close()
    {
        var v5 = Broker.Protocol.MqttProtocolVersion.V500;
        await using var broker = await BrokerInstance.StartAsync();
        await using var raw = await RawClient.ConnectAsync(broker);
        var ack = await raw.HandshakeAsync(v5, "auth", 60, properties: new MqttProperties { AuthenticationMethod = "SCRAM-SHA-1" });
        Assert.Equal((byte)ReasonCode.BadAuthenticationMethod, ack.ReasonCode);
        // [MQTT-3.2.2-6 (5.0)] Session Present 0 with a refusal.
        Assert.False(ack.SessionPresent);
        Assert.Empty(await raw.ReadUntilClosedAsync(v5, CloseWait));
    }

    [Fact]
    public async Task MQTT_3_1_3_9_Client_id_longer_than_the_limit_gets_CONNACK_0x02_V311()
    {
        var v3 = Broker.Protocol.MqttProtocolVersion.V311;
        await using var broker = await BrokerInstance.StartAsync(new Dictionary<string, string?> { ["Broker:Limits:MaxClientIdLength"] = "23" });
        await using var raw = await RawClient.ConnectAsync(broker);
        var ack = await raw.HandshakeAsync(v3, new string('a', 24), 60);
        Assert.Equal(0x02, ack.ReasonCode);
        Assert.False(ack.SessionPresent);
        Assert.Empty(await raw.ReadUntilClosedAsync(v3, CloseWait));
    }
    [Theory]
    [InlineData(4)]
    [InlineData(5)]
    public async Task MQTT_3_1_2_1_Wrong_protocol_name_is_refused_then_closed(byte level)
    {
        var version = (Broker.Protocol.MqttProtocolVersion)level;
        await using var broker = await BrokerInstance.StartAsync();
        await using var raw = await RawClient.ConnectAsync(broker);
        await raw.SendAsync(ConnectBytes(level, 0x02, protocolName: "MQTX"));
        var ack = Assert.IsType<ConnAckPacket>(await raw.ReceiveAsync(version, CloseWait));
        // CONNACK: type 2, flags 0, Session Present 0, then 0x01 (3.1.1) or 0x84 (5.0, with properties).
        Assert.Equal(level == 4 ? [0x20, 0x02, 0x00, 0x01] : new byte[] { 0x20, raw.LastPacketBytes[1], 0x00, 0x84 }, raw.LastPacketBytes[..4]);
        Assert.Equal(level == 4 ? 0x01 : 0x84, ack.ReasonCode);
        Assert.Empty(await raw.ReadUntilClosedAsync(version, CloseWait));
    }

    [Theory]
    [InlineData(Broker.Protocol.MqttProtocolVersion.V311)]
    [InlineData(Broker.Protocol.MqttProtocolVersion.V500)]
    public async Task MQTT_3_2_2_1_Accepted_CONNACK_is_laid_out_as_specified(Broker.Protocol.MqttProtocolVersion version)
    {
        await using var broker = await BrokerInstance.StartAsync();
        await using var raw = await RawClient.ConnectAsync(broker);
        await raw.HandshakeAsync(version, "layout", 60);
        byte[] bytes = raw.LastPacketBytes;
        if (version == Broker.Protocol.MqttProtocolVersion.V311)
        {
            // 3.2: type 2 flags 0, remaining length 2, acknowledge flags 0 (bits 7-1 reserved), return code 0.
            Assert.Equal([0x20, 0x02, 0x00, 0x00], bytes);
            return;
        }
        // 5.0: same fixed header and first two bytes, then the properties (the broker's limits), nothing after them.
        Assert.Equal(0x20, bytes[0]);
        Assert.Equal(bytes.Length - 2, bytes[1]);
        Assert.Equal([0x00, 0x00], bytes[2..4]);
        Assert.Equal(bytes.Length - 5, bytes[4]);
    }

    [Fact]
    public async Task MQTT_3_2_2_4_V311_Refused_CONNECT_with_a_stored_session_gets_Session_Present_0()
    {
        var v3 = Broker.Protocol.MqttProtocolVersion.V311;
        await using var broker = await BrokerInstance.StartAsync(new Dictionary<string, string?> { ["Broker:KeepAlive:MaxSeconds"] = "100" });
        await using (var first = await RawConnectedAsync(broker, v3, "stored", cleanStart: false))
        {
            await first.SubscribeAsync("s", QualityOfService.AtLeastOnce, v3);
            await first.SendAsync(new DisconnectPacket(), v3);
            await first.ReadUntilClosedAsync(v3, CloseWait);
        }
        await using (var refused = await RawClient.ConnectAsync(broker))
        {
            // A session is stored and Clean Session is 0, so only the refusal can make Session Present 0.
            var ack = await refused.HandshakeAsync(v3, "stored", keepAlive: 200, cleanStart: false);
            Assert.Equal([0x20, 0x02, 0x00, 0x02], refused.LastPacketBytes);
            Assert.False(ack.SessionPresent);
            Assert.Empty(await refused.ReadUntilClosedAsync(v3, CloseWait));
        }
        // The refusal did not touch the stored session.
        await using var again = await RawClient.ConnectAsync(broker);
        Assert.True((await again.HandshakeAsync(v3, "stored", 60, cleanStart: false)).SessionPresent);
    }

    [Fact]
    public async Task MQTT_3_2_2_6_V500_Refused_CONNECT_with_a_stored_session_gets_Session_Present_0()
    {
        var v5 = Broker.Protocol.MqttProtocolVersion.V500;
        var persistent = new MqttProperties { SessionExpiryInterval = 300 };
        await using var broker = await BrokerInstance.StartAsync();
        await using (var first = await RawConnectedAsync(broker, v5, "stored", cleanStart: false, properties: persistent))
        {
            await first.SendAsync(new DisconnectPacket(), v5);
            await first.ReadUntilClosedAsync(v5, CloseWait);
        }
        await using (var refused = await RawClient.ConnectAsync(broker))
        {
            var ack = await refused.HandshakeAsync(v5, "stored", 60, cleanStart: false,
                properties: new MqttProperties { SessionExpiryInterval = 300, AuthenticationMethod = "SCRAM-SHA-1" });
            Assert.Equal((byte)ReasonCode.BadAuthenticationMethod, ack.ReasonCode);
            Assert.Equal([0x20, refused.LastPacketBytes[1], 0x00, 0x8C], refused.LastPacketBytes[..4]);
            Assert.False(ack.SessionPresent);
            Assert.Empty(await refused.ReadUntilClosedAsync(v5, CloseWait));
        }
        await using var again = await RawClient.ConnectAsync(broker);
        Assert.True((await again.HandshakeAsync(v5, "stored", 60, cleanStart: false, properties: persistent)).SessionPresent);
    }

    [Theory]
    [InlineData(Broker.Protocol.MqttProtocolVersion.V311)]
    [InlineData(Broker.Protocol.MqttProtocolVersion.V500)]
    public async Task MQTT_3_1_4_5_Nothing_after_a_refused_CONNECT_is_processed(Broker.Protocol.MqttProtocolVersion version)
    {
        await using var broker = await BrokerInstance.StartAsync(new Dictionary<string, string?> { ["Broker:Limits:MaxClientIdLength"] = "23" });
        var (subscriber, messages) = await SubscriberAsync(broker, V500, "after/#");
        using var _ = subscriber;
        await using (var raw = await RawClient.ConnectAsync(broker))
        {
            // The refused CONNECT and a PUBLISH behind it arrive in one segment: the broker must stop at the CONNECT.
            var writer = new System.Buffers.ArrayBufferWriter<byte>();
            MqttPacketWriter.Write(writer, new ConnectPacket { ProtocolVersion = version, ClientId = new string('a', 24), KeepAliveSeconds = 60, CleanStart = true }, version);
            MqttPacketWriter.Write(writer, new PublishPacket { Topic = "after/refusal", Payload = "must not route"u8.ToArray() }, version);
            await raw.SendAsync(writer.WrittenSpan.ToArray());
            var answers = await raw.ReadUntilClosedAsync(version, CloseWait);
            var ack = Assert.IsType<ConnAckPacket>(Assert.Single(answers));
            Assert.NotEqual(0, ack.ReasonCode);
        }
        using var publisher = await MqttClients.ConnectAsync(broker, V500);
        await messages.AssertNothingBeforeMarkerAsync(publisher, "after/marker");
    }

    [Theory]
    [InlineData(Broker.Protocol.MqttProtocolVersion.V311)]
    [InlineData(Broker.Protocol.MqttProtocolVersion.V500)]
    public async Task MQTT_3_1_3_6_Assigned_client_identifiers_are_unique(Broker.Protocol.MqttProtocolVersion version)
    {
        await using var broker = await BrokerInstance.StartAsync();
        await using var first = await RawClient.ConnectAsync(broker);
        var firstAck = await first.HandshakeAsync(version, "", 60, cleanStart: true);
        await using var second = await RawClient.ConnectAsync(broker);
        var secondAck = await second.HandshakeAsync(version, "", 60, cleanStart: true);
        Assert.Equal((0, 0), (firstAck.ReasonCode, secondAck.ReasonCode));
        if (version == Broker.Protocol.MqttProtocolVersion.V500)
        {
            Assert.NotEqual(firstAck.Properties?.AssignedClientIdentifier, secondAck.Properties?.AssignedClientIdentifier);
        }
        var connected = broker.Logs.Messages(2).Where(m => m.StartsWith("Client auto-", StringComparison.Ordinal)).Select(m => m.Split(' ')[1]).ToList();
        Assert.Equal(2, connected.Distinct().Count());
        // Same id would have been a takeover: the first connection would be closed. It still answers.
        await first.AssertNothingBeforePingRespAsync(version);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task MQTT_3_1_2_29_DISCONNECT_and_refusal_CONNACK_carry_a_Reason_String_unless_Request_Problem_Information_is_0(bool problemInformation)
    {
        var v5 = Broker.Protocol.MqttProtocolVersion.V500;
        MqttProperties? props = problemInformation ? null : new MqttProperties { RequestProblemInformation = 0 };
        await using var broker = await BrokerInstance.StartAsync();
        await using var old = await RawConnectedAsync(broker, v5, "kicked", properties: props);
        await using var replacement = await RawConnectedAsync(broker, v5, "kicked");
        var disconnect = Assert.IsType<DisconnectPacket>(await old.ReceiveAsync(v5, CloseWait));
        if (problemInformation)
        {
            Assert.Equal("another connection with the same client id", disconnect.Properties?.ReasonString);
            // DISCONNECT: type 14, remaining length, 0x8E, property length, 0x1F Reason String, UTF-8 length, text.
            var text = System.Text.Encoding.UTF8.GetBytes(disconnect.Properties!.ReasonString!);
            Assert.Equal([0xE0, (byte)(text.Length + 5), 0x8E, (byte)(text.Length + 3), 0x1F, 0x00, (byte)text.Length, .. text], old.LastPacketBytes);
        }
        else
        {
            Assert.Equal([0xE0, 0x01, 0x8E], old.LastPacketBytes);
        }

        await using var refused = await RawClient.ConnectAsync(broker);
        var refusalProps = new MqttProperties { AuthenticationMethod = "SCRAM-SHA-1", RequestProblemInformation = problemInformation ? null : (byte)0 };
        var ack = await refused.HandshakeAsync(v5, "refused", 60, properties: refusalProps);
        Assert.Equal((byte)ReasonCode.BadAuthenticationMethod, ack.ReasonCode);
        if (problemInformation)
        {
            Assert.Equal("authentication method 'SCRAM-SHA-1' is not supported", ack.Properties?.ReasonString);
        }
        else
        {
            Assert.Equal([0x20, 0x03, 0x00, 0x8C, 0x00], refused.LastPacketBytes);
        }
    }

    [Fact]
    public async Task MQTT_3_1_3_8_V500_Rejected_client_identifier_gets_CONNACK_0x85_then_close()
    {
        var v5 = Broker.Protocol.MqttProtocolVersion.V500;
        await using var broker = await BrokerInstance.StartAsync(new Dictionary<string, string?> { ["Broker:Limits:MaxClientIdLength"] = "23" });
        await using var raw = await RawClient.ConnectAsync(broker);
        var ack = await raw.HandshakeAsync(v5, new string('a', 24), 60);
        Assert.Equal((byte)ReasonCode.ClientIdentifierNotValid, ack.ReasonCode);
        Assert.False(ack.SessionPresent);
        Assert.Empty(await raw.ReadUntilClosedAsync(v5, CloseWait));
    }
    [Fact]
    public async Task MQTT_3_2_2_19_and_3_14_2_3_Reason_String_is_left_out_where_it_would_exceed_the_client_Maximum_Packet_Size()
    {
        var v5 = Broker.Protocol.MqttProtocolVersion.V500;
        await using var broker = await BrokerInstance.StartAsync();
        // 16 bytes: room for the bare CONNACK and DISCONNECT, none for a Reason String.
        await using var old = await RawConnectedAsync(broker, v5, "small", properties: new MqttProperties { MaximumPacketSize = 16 });
        await using var replacement = await RawConnectedAsync(broker, v5, "small");
        Assert.IsType<DisconnectPacket>(await old.ReceiveAsync(v5, CloseWait));
        Assert.Equal([0xE0, 0x01, 0x8E], old.LastPacketBytes);

        await using var refused = await RawClient.ConnectAsync(broker);
        await refused.HandshakeAsync(v5, "refused", 60, properties: new MqttProperties { AuthenticationMethod = "SCRAM-SHA-1", MaximumPacketSize = 16 });
        Assert.Equal([0x20, 0x03, 0x00, 0x8C, 0x00], refused.LastPacketBytes);
    }
}
