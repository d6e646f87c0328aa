namespace Broker.Protocol.Tests;

/// <summary>Byte-exact packets taken from the examples and tables of the 3.1.1 and 5.0 specifications.</summary>
public sealed class SpecVectorTests
{
    private const MqttProtocolVersion V311 = MqttProtocolVersion.V311;
    private const MqttProtocolVersion V500 = MqttProtocolVersion.V500;

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public void PingReq_is_C0_00(MqttProtocolVersion version)
    {
        byte[] bytes = [0xC0, 0x00]; // type 12, flags 0; remaining length 0 (3.12)

        Assert.Equal(bytes, Codec.Encode(PingReqPacket.Instance, version));
        Assert.IsType<PingReqPacket>(Codec.Decode(bytes, version));
        var output = new System.Buffers.ArrayBufferWriter<byte>();
        MqttPacketWriter.WritePingReq(output);
        Assert.Equal(bytes, output.WrittenSpan.ToArray());
    }

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public void PingResp_is_D0_00(MqttProtocolVersion version)
    {
        byte[] bytes = [0xD0, 0x00]; // type 13, flags 0; remaining length 0 (3.13)

        Assert.Equal(bytes, Codec.Encode(PingRespPacket.Instance, version));
        Assert.IsType<PingRespPacket>(Codec.Decode(bytes, version));
        var output = new System.Buffers.ArrayBufferWriter<byte>();
        MqttPacketWriter.WritePingResp(output);
        Assert.Equal(bytes, output.WrittenSpan.ToArray());
    }

    /// <summary>3.1.1 figure 3.6 (CONNECT variable header example) with a payload of every field.</summary>
    [Fact]
    public void Connect_v311_spec_example()
    {
        var bytes = TestBuffers.Hex("""
            10 1D                      
            00 04 'M' 'Q' 'T' 'T'      
            04                         
            CE                         
            00 0A                      
            00 02 'c' '1'              
            00 03 'a' '/' 'b'          
            00 02 'h' 'i'              
            00 01 'u'                  
            00 01 'p'                  
            """);
        // 10 1D            CONNECT, remaining length 29
        // 00 04 M Q T T    protocol name
        // 04               protocol level 4 (3.1.1)
        // CE               1100 1110: user name, password, will retain 0, will QoS 01, will flag, clean session, reserved 0
        // 00 0A            keep alive 10 s
        // payload: client id "c1", will topic "a/b", will message "hi", user name "u", password "p"
        var packet = Assert.IsType<ConnectPacket>(Codec.Decode(bytes, V311));

        Assert.Equal(MqttProtocolVersion.V311, packet.ProtocolVersion);
        Assert.Equal("MQTT", packet.ProtocolName);
        Assert.True(packet.CleanStart);
        Assert.Equal(10, packet.KeepAliveSeconds);
        Assert.Equal("c1", packet.ClientId);
        Assert.NotNull(packet.Will);
        Assert.Equal("a/b", packet.Will.Topic);
        Assert.Equal("hi"u8.ToArray(), packet.Will.Payload);
        Assert.Equal(QualityOfService.AtLeastOnce, packet.Will.QoS);
        Assert.False(packet.Will.Retain);
        Assert.Null(packet.Will.Properties);
        Assert.Equal("u", packet.UserName);
        Assert.Equal("p"u8.ToArray(), packet.Password);
        Assert.Null(packet.Properties);
        Assert.Equal(bytes, Codec.Encode(packet, V311));
    }

    /// <summary>5.0 figure 3-8 (CONNECT variable header example), Session Expiry Interval 10 as its property.</summary>
    [Fact]
    public void Connect_v500_spec_example()
    {
        var bytes = TestBuffers.Hex("""
            10 1A
            00 04 'M' 'Q' 'T' 'T'
            05
            C2
            00 0A
            05 11 00 00 00 0A
            00 02 'c' '1'
            00 01 'u'
            00 01 'p'
            """);
        // 10 1A              CONNECT, remaining length 26
        // 00 04 M Q T T      protocol name
        // 05                 protocol version 5
        // C2                 1100 0010: user name, password, no will, clean start
        // 00 0A              keep alive 10 s
        // 05                 property length 5
        // 11 00 00 00 0A     Session Expiry Interval (0x11) = 10
        // payload: client id "c1", user name "u", password "p"
        var packet = Assert.IsType<ConnectPacket>(Codec.Decode(bytes, V500));

        Assert.Equal(MqttProtocolVersion.V500, packet.ProtocolVersion);
        Assert.True(packet.CleanStart);
        Assert.Equal(10, packet.KeepAliveSeconds);
        Assert.NotNull(packet.Properties);
        Assert.Equal(10u, packet.Properties.SessionExpiryInterval);
        Assert.Equal("c1", packet.ClientId);
        Assert.Null(packet.Will);
        Assert.Equal("u", packet.UserName);
        Assert.Equal("p"u8.ToArray(), packet.Password);
        Assert.Equal(bytes, Codec.Encode(packet, V500));
    }

    [Fact]
    public void Connect_is_decoded_by_its_own_level_whatever_the_connection_version()
    {
        var v5 = TestBuffers.Hex("10 0D 00 04 'M' 'Q' 'T' 'T' 05 02 00 3C 00 00 00");
        // ... 05 level 5, 02 clean start, 00 3C keep alive 60, 00 no properties, 00 00 empty client id

        var packet = Assert.IsType<ConnectPacket>(Codec.Decode(v5, V311));
        var frameStatus = MqttFrameReader.TryReadFrame(TestBuffers.Single(v5), Codec.NoLimit, out var frame, out _);
        Assert.Equal(ReadStatus.Complete, frameStatus);
        Assert.True(MqttPacketDecoder.TryDecodeConnect(frame, out var connect, out byte level, out _));

        Assert.Equal(MqttProtocolVersion.V500, packet.ProtocolVersion);
        Assert.Equal(60, packet.KeepAliveSeconds);
        Assert.Equal(string.Empty, packet.ClientId);
        Assert.Equal(5, level);
        Assert.Equal(MqttProtocolVersion.V500, connect.ProtocolVersion);
    }

    [Fact]
    public void ConnAck_v311_session_present_accepted()
    {
        var bytes = TestBuffers.Hex("20 02 01 00");
        // 20 CONNACK, 02 remaining length; 01 session present; 00 connection accepted (3.2.2.3)
        var packet = Assert.IsType<ConnAckPacket>(Codec.Decode(bytes, V311));

        Assert.True(packet.SessionPresent);
        Assert.Equal((byte)ConnectReturnCode.Accepted, packet.ReasonCode);
        Assert.Equal(bytes, Codec.Encode(packet, V311));
    }

    [Fact]
    public void ConnAck_v311_refusal_identifier_rejected()
    {
        var bytes = TestBuffers.Hex("20 02 00 02"); // no session; 02 identifier rejected
        var packet = Assert.IsType<ConnAckPacket>(Codec.Decode(bytes, V311));

        Assert.False(packet.SessionPresent);
        Assert.Equal((byte)ConnectReturnCode.IdentifierRejected, packet.ReasonCode);
    }

    [Fact]
    public void ConnAck_v500_with_receive_maximum()
    {
        var bytes = TestBuffers.Hex("20 06 01 00 03 21 00 0A");
        // 20 06 CONNACK, remaining 6; 01 session present; 00 success;
        // 03 property length; 21 00 0A Receive Maximum (0x21) = 10
        var packet = Assert.IsType<ConnAckPacket>(Codec.Decode(bytes, V500));

        Assert.True(packet.SessionPresent);
        Assert.Equal((byte)ReasonCode.Success, packet.ReasonCode);
        Assert.Equal((ushort)10, packet.Properties?.ReceiveMaximum);
        Assert.Equal(bytes, Codec.Encode(packet, V500));
    }

    [Fact]
    public void ConnAck_v500_refusal_without_properties()
    {
        var bytes = TestBuffers.Hex("20 03 00 87 00"); // no session; 0x87 not authorized; property length 0
        var packet = Assert.IsType<ConnAckPacket>(Codec.Decode(bytes, V500));

        Assert.Equal((byte)ReasonCode.NotAuthorized, packet.ReasonCode);
        Assert.Null(packet.Properties);
        Assert.Equal(bytes, Codec.Encode(packet, V500));
    }

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public void Disconnect_normal_is_E0_00(MqttProtocolVersion version)
    {
        byte[] bytes = [0xE0, 0x00]; // 5.0 3.14.2.1: no reason code means 0x00 normal disconnection
        var packet = Assert.IsType<DisconnectPacket>(Codec.Decode(bytes, version));

        Assert.Equal(ReasonCode.NormalDisconnection, packet.ReasonCode);
        Assert.Equal(bytes, Codec.Encode(new DisconnectPacket(), version));
    }

    [Fact]
    public void Disconnect_v500_with_will_message()
    {
        var bytes = TestBuffers.Hex("E0 01 04"); // remaining 1; 0x04 disconnect with will message, properties omitted
        var packet = Assert.IsType<DisconnectPacket>(Codec.Decode(bytes, V500));

        Assert.Equal(ReasonCode.DisconnectWithWillMessage, packet.ReasonCode);
        Assert.Null(packet.Properties);
        Assert.Equal(bytes, Codec.Encode(packet, V500));
    }

    [Fact]
    public void Disconnect_v500_with_session_expiry()
    {
        var bytes = TestBuffers.Hex("E0 07 00 05 11 00 00 0E 10");
        // remaining 7; 00 normal; 05 property length; 11 00 00 0E 10 Session Expiry Interval = 3600
        var packet = Assert.IsType<DisconnectPacket>(Codec.Decode(bytes, V500));

        Assert.Equal(ReasonCode.NormalDisconnection, packet.ReasonCode);
        Assert.Equal(3600u, packet.Properties?.SessionExpiryInterval);
        Assert.Equal(bytes, Codec.Encode(packet, V500));
    }

    /// <summary>3.1.1 3.8.3 payload example: "a/b" at QoS 1 and "c/d" at QoS 2, packet identifier 10.</summary>
    [Fact]
    public void Subscribe_v311_spec_example()
    {
        var bytes = TestBuffers.Hex("""
            82 0E
            00 0A
            00 03 'a' '/' 'b' 01
            00 03 'c' '/' 'd' 02
            """);
        // 82 SUBSCRIBE with the required flags 0010; remaining 14; packet identifier 10;
        // each filter followed by its requested QoS byte
        var packet = Assert.IsType<SubscribePacket>(Codec.Decode(bytes, V311));

        Assert.Equal(10, packet.PacketId);
        Assert.Equal(
            [new TopicSubscription("a/b", QualityOfService.AtLeastOnce), new TopicSubscription("c/d", QualityOfService.ExactlyOnce)],
            packet.Subscriptions);
        Assert.Equal(bytes, Codec.Encode(packet, V311));
    }

    [Fact]
    public void Subscribe_v500_options_byte()
    {
        var bytes = TestBuffers.Hex("82 09 00 0A 00 00 03 'a' '/' 'b' 2E");
        // 82 09 SUBSCRIBE, remaining 9; 00 0A packet identifier 10; 00 no properties; filter "a/b";
        // 2E = 0010 1110: reserved 00, retain handling 2, retain as published 1, no local 1, QoS 2 (3.8.3.1)
        var packet = Assert.IsType<SubscribePacket>(Codec.Decode(bytes, V500));

        var sub = Assert.Single(packet.Subscriptions);
        Assert.Equal("a/b", sub.TopicFilter);
        Assert.Equal(QualityOfService.ExactlyOnce, sub.QoS);
        Assert.True(sub.NoLocal);
        Assert.True(sub.RetainAsPublished);
        Assert.Equal(RetainHandling.DoNotSend, sub.RetainHandling);
        Assert.Equal(bytes, Codec.Encode(packet, V500));
    }

    [Fact]
    public void SubAck_v311_spec_example()
    {
        var bytes = TestBuffers.Hex("90 05 00 0A 00 02 80");
        // 3.9.3 example: packet identifier 10; granted QoS 0, QoS 2, failure 0x80
        var packet = Assert.IsType<SubAckPacket>(Codec.Decode(bytes, V311));

        Assert.Equal(10, packet.PacketId);
        Assert.Equal([0x00, 0x02, 0x80], packet.ReasonCodes);
        Assert.Equal(bytes, Codec.Encode(packet, V311));
    }

    [Fact]
    public void Publish_v311_qos1()
    {
        var bytes = TestBuffers.Hex("33 0A 00 03 'a' '/' 'b' 00 0A 'h' 'i' '!'");
        // 33 = PUBLISH, DUP 0, QoS 1, retain 1; remaining 10; topic "a/b"; packet identifier 10; payload "hi!"
        var packet = Assert.IsType<PublishPacket>(Codec.Decode(bytes, V311));

        Assert.Equal("a/b", packet.Topic);
        Assert.Equal(QualityOfService.AtLeastOnce, packet.QoS);
        Assert.True(packet.Retain);
        Assert.False(packet.Dup);
        Assert.Equal(10, packet.PacketId);
        Assert.Equal("hi!"u8.ToArray(), packet.Payload.ToArray());
        Assert.Equal(bytes, Codec.Encode(packet, V311));
    }

    [Fact]
    public void Publish_v500_topic_alias_with_empty_topic()
    {
        var bytes = TestBuffers.Hex("30 07 00 00 03 23 00 05 'x'");
        // 30 QoS 0; remaining 7; topic length 0; property length 3; 23 00 05 Topic Alias = 5; payload "x"
        var packet = Assert.IsType<PublishPacket>(Codec.Decode(bytes, V500));

        Assert.Equal(string.Empty, packet.Topic);
        Assert.Equal((ushort)5, packet.Properties?.TopicAlias);
        Assert.Equal(bytes, Codec.Encode(packet, V500));
    }

    [Fact]
    public void PubAck_v500_short_form_omits_reason_code()
    {
        var bytes = TestBuffers.Hex("40 02 00 0A"); // 3.4.2.1: reason code 0x00 and no properties may be omitted
        var packet = Assert.IsType<PubAckPacket>(Codec.Decode(bytes, V500));

        Assert.Equal(10, packet.PacketId);
        Assert.Equal(ReasonCode.Success, packet.ReasonCode);
        Assert.Equal(bytes, Codec.Encode(packet, V500));
    }

    [Fact]
    public void PubRec_v500_reason_code_without_properties()
    {
        var bytes = TestBuffers.Hex("50 03 00 0A 10"); // 0x10 no matching subscribers, property length omitted
        var packet = Assert.IsType<PubRecPacket>(Codec.Decode(bytes, V500));

        Assert.Equal(ReasonCode.NoMatchingSubscribers, packet.ReasonCode);
        Assert.Equal(bytes, Codec.Encode(packet, V500));
    }

    [Fact]
    public void PubRel_has_flags_0010()
    {
        var bytes = TestBuffers.Hex("62 02 00 0A");
        Assert.Equal(bytes, Codec.Encode(new PubRelPacket { PacketId = 10 }, V311));
        Assert.Equal(10, Assert.IsType<PubRelPacket>(Codec.Decode(bytes, V311)).PacketId);
    }

    [Fact]
    public void Unsubscribe_and_UnsubAck_v500()
    {
        var unsubscribe = TestBuffers.Hex("A2 08 00 0B 00 00 03 'a' '/' '#'"); // A2 flags 0010; id 11; no properties; "a/#"
        var unsubAck = TestBuffers.Hex("B0 05 00 0B 00 00 11");               // id 11; no properties; 0x00 success, 0x11 no subscription existed

        var u = Assert.IsType<UnsubscribePacket>(Codec.Decode(unsubscribe, V500));
        var a = Assert.IsType<UnsubAckPacket>(Codec.Decode(unsubAck, V500));

        Assert.Equal(["a/#"], u.TopicFilters);
        Assert.Equal([0x00, 0x11], a.ReasonCodes);
        Assert.Equal(unsubscribe, Codec.Encode(u, V500));
        Assert.Equal(unsubAck, Codec.Encode(a, V500));
    }

    [Fact]
    public void Utf8_string_with_a_supplementary_code_point_and_BOM_is_kept_as_is()
    {
        var bytes = TestBuffers.Hex("30 0A 00 08 41 F0 AA 9B 94 EF BB BF");
        // 5.0 figure 1-1: 'A' (41) then U+2A6D4 (F0 AA 9B 94); then U+FEFF (EF BB BF), which
        // [MQTT-1.5.4-3] says must not be skipped or stripped; QoS 0, no payload
        var packet = Assert.IsType<PublishPacket>(Codec.Decode(bytes, V311));

        Assert.Equal("A\U0002A6D4\uFEFF", packet.Topic);
        Assert.Equal(bytes, Codec.Encode(packet, V311));
    }
}
