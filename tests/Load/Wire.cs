using System.Buffers;
using Broker.Protocol;

namespace Broker.Load;

/// <summary>
/// The load tool's MQTT, encoded and decoded by the project's codec (src/Broker.Protocol), shaped so
/// that the per-packet paths do not allocate: constant packets (PINGREQ, DISCONNECT) are encoded once
/// per process and each client's CONNECT once per client; PINGRESP is recognised from its fixed header;
/// PUBLISH is decoded as a view over the receive buffer and written into a reused buffer. Client side
/// only: the tool writes CONNECT, PINGREQ, SUBSCRIBE, PUBLISH, PUBACK, DISCONNECT and reads CONNACK,
/// PINGRESP, SUBACK, PUBLISH, PUBACK, DISCONNECT.
/// </summary>
internal static class Wire
{
    public const byte Mqtt311 = (byte)MqttProtocolVersion.V311;
    public const byte Mqtt5 = (byte)MqttProtocolVersion.V500;

    private static readonly byte[] s_pingReq = EncodePingReq();
    private static readonly byte[] s_disconnect311 = Encode(new DisconnectPacket(), MqttProtocolVersion.V311);
    private static readonly byte[] s_disconnect5 = Encode(new DisconnectPacket { ReasonCode = ReasonCode.NormalDisconnection }, MqttProtocolVersion.V500);

    [ThreadStatic]
    private static PubAckScratch? t_pubAck;

    public static ReadOnlySpan<byte> PingReq => s_pingReq;

    public static MqttProtocolVersion Version(byte protocolLevel) => (MqttProtocolVersion)protocolLevel;

    /// <summary>CONNECT; without Clean Start, a 5.0 session is kept for an hour (3.1.1: as long as the broker keeps Clean Session 0 sessions).</summary>
    public static byte[] Connect(byte version, string clientId, ushort keepAliveSeconds, bool cleanStart) =>
        Encode(new ConnectPacket
        {
            ProtocolVersion = Version(version),
            ClientId = clientId,
            KeepAliveSeconds = keepAliveSeconds,
            CleanStart = cleanStart,
            Properties = !cleanStart && version == Mqtt5 ? new MqttProperties { SessionExpiryInterval = 3600 } : null,
        }, Version(version));

    public static ReadOnlySpan<byte> Disconnect(byte version) => version == Mqtt5 ? s_disconnect5 : s_disconnect311;

    public static byte[] Subscribe(byte version, ushort packetId, string topicFilter, int qos) =>
        Encode(new SubscribePacket
        {
            PacketId = packetId,
            Subscriptions = [new TopicSubscription(topicFilter, (QualityOfService)qos)],
        }, Version(version));

    /// <summary>The largest PUBLISH <see cref="WritePublish"/> can produce for these sizes (QoS 1, no properties).</summary>
    public static int PublishLength(byte version, int topicLength, int payloadLength) =>
        MqttPacketWriter.GetPublishSize(Version(version), topicLength, QualityOfService.AtLeastOnce, null, payloadLength);

    /// <summary>Writes one PUBLISH into <paramref name="output"/> after clearing it; the caller sends its written span.</summary>
    public static ReadOnlySpan<byte> WritePublish(ArrayBufferWriter<byte> output, byte version, ReadOnlySpan<byte> topic, int qos, ushort packetId, byte[] payload)
    {
        output.ResetWrittenCount();
        MqttPacketWriter.WritePublish(output, Version(version), topic, (QualityOfService)qos, retain: false, dup: false,
            packetId, properties: null, new ReadOnlySequence<byte>(payload));
        return output.WrittenSpan;
    }

    /// <summary>PUBACK for a received QoS 1 PUBLISH, encoded into a per-thread buffer (receive threads answer concurrently).</summary>
    public static ReadOnlySpan<byte> PubAck(byte version, ushort packetId)
    {
        PubAckScratch scratch = t_pubAck ??= new PubAckScratch();
        scratch.Output.ResetWrittenCount();
        scratch.Packet.PacketId = packetId;
        MqttPacketWriter.Write(scratch.Output, scratch.Packet, Version(version));
        return scratch.Output.WrittenSpan;
    }

    /// <summary>
    /// One frame at the start of <paramref name="buffer"/>; "need more data" is a status, not an error.
    /// Frames over <paramref name="maxPacketSize"/> are refused from their fixed header.
    /// </summary>
    public static ReadStatus TryReadFrame(in ReadOnlySequence<byte> buffer, int maxPacketSize, out MqttFrame frame, out MqttDecodeError error) =>
        MqttFrameReader.TryReadFrame(buffer, maxPacketSize, out frame, out error);

    /// <summary>CONNACK: the 3.1.1 return code or the 5.0 reason code; 0 means accepted.</summary>
    public static bool TryReadConnack(in MqttFrame frame, byte version, out byte reasonCode)
    {
        reasonCode = 0;
        if (!MqttPacketDecoder.TryDecode(frame, Version(version), out MqttPacket packet, out _) || packet is not ConnAckPacket connack)
        {
            return false;
        }

        reasonCode = connack.ReasonCode;
        return true;
    }

    /// <summary>PUBLISH as a view over the receive buffer: no copy, valid until the buffer is compacted.</summary>
    public static bool TryReadPublish(in MqttFrame frame, byte version, out PublishPacketView publish) =>
        MqttPacketDecoder.TryDecodePublish(frame, Version(version), out publish, out _);

    public static bool TryReadPubAck(in MqttFrame frame, byte version, out ushort packetId, out byte reasonCode)
    {
        packetId = 0;
        reasonCode = 0;
        if (!MqttPacketDecoder.TryDecode(frame, Version(version), out MqttPacket packet, out _) || packet is not PubAckPacket ack)
        {
            return false;
        }

        packetId = ack.PacketId;
        reasonCode = (byte)ack.ReasonCode;
        return true;
    }

    /// <summary>SUBACK: the first granted QoS / reason code; 0x80 and above is a failure.</summary>
    public static bool TryReadSubAck(in MqttFrame frame, byte version, out ushort packetId, out byte firstReasonCode)
    {
        packetId = 0;
        firstReasonCode = 0x80;
        if (!MqttPacketDecoder.TryDecode(frame, Version(version), out MqttPacket packet, out _) || packet is not SubAckPacket { ReasonCodes.Length: > 0 } subAck)
        {
            return false;
        }

        packetId = subAck.PacketId;
        firstReasonCode = subAck.ReasonCodes[0];
        return true;
    }

    /// <summary>The reason code of a broker's 5.0 DISCONNECT; -1 when it does not decode.</summary>
    public static int ReadDisconnectReason(in MqttFrame frame, byte version) =>
        MqttPacketDecoder.TryDecode(frame, Version(version), out MqttPacket packet, out _) && packet is DisconnectPacket disconnect
            ? (int)disconnect.ReasonCode
            : -1;

    private static byte[] Encode(MqttPacket packet, MqttProtocolVersion version)
    {
        var output = new ArrayBufferWriter<byte>(MqttPacketWriter.GetSize(packet, version));
        MqttPacketWriter.Write(output, packet, version);
        return output.WrittenSpan.ToArray();
    }

    private static byte[] EncodePingReq()
    {
        var output = new ArrayBufferWriter<byte>(2);
        MqttPacketWriter.WritePingReq(output);
        return output.WrittenSpan.ToArray();
    }

    private sealed class PubAckScratch
    {
        public readonly ArrayBufferWriter<byte> Output = new(16);
        public readonly PubAckPacket Packet = new() { ReasonCode = ReasonCode.Success };
    }
}
