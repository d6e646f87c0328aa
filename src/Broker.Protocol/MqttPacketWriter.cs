using System.Buffers;
using System.Text;

namespace Broker.Protocol;

/// <summary>
/// Encodes packets into an <see cref="IBufferWriter{T}"/> (a PipeWriter in the broker): each packet's size is
/// computed first, then it is written into one span obtained from the writer and advanced once.
/// Writing invalid packets (a string over 65,535 bytes, a body over 268,435,455 bytes) is a caller bug and throws.
/// </summary>
public static class MqttPacketWriter
{
    private static int StringSize(string s) => 2 + Encoding.UTF8.GetByteCount(s);

    /// <summary>Writes PINGRESP (two constant bytes) without touching any packet object.</summary>
    public static void WritePingResp(IBufferWriter<byte> output)
    {
        var span = output.GetSpan(2);
        span[0] = (byte)PacketType.PingResp << 4;
        span[1] = 0;
        output.Advance(2);
    }

    public static void WritePingReq(IBufferWriter<byte> output)
    {
        var span = output.GetSpan(2);
        span[0] = (byte)PacketType.PingReq << 4;
        span[1] = 0;
        output.Advance(2);
    }

    /// <summary>
    /// PUBACK, PUBREC, PUBREL or PUBCOMP without properties, without a packet object: the broker answers
    /// every QoS 1/2 publish with one, so this path allocates nothing. 5.0 omits a 0x00 reason code (3.4.2.1).
    /// </summary>
    public static int WritePublishResponse(IBufferWriter<byte> output, PacketType type, ushort packetId, ReasonCode reasonCode, MqttProtocolVersion version)
    {
        if (type is not (PacketType.PubAck or PacketType.PubRec or PacketType.PubRel or PacketType.PubComp))
        {
            throw new ArgumentOutOfRangeException(nameof(type), type, "not a publish response");
        }
        bool withCode = version == MqttProtocolVersion.V500 && reasonCode != ReasonCode.Success;
        int total = withCode ? 5 : 4;
        var span = output.GetSpan(total);
        span[0] = (byte)((byte)type << 4 | (type == PacketType.PubRel ? 0b0010 : 0));
        span[1] = (byte)(total - 2);
        span[2] = (byte)(packetId >> 8);
        span[3] = (byte)packetId;
        if (withCode)
        {
            span[4] = (byte)reasonCode;
        }
        output.Advance(total);
        return total;
    }

    /// <summary>The size of the whole PUBLISH, to check against a client's Maximum Packet Size before writing.</summary>
    public static int GetPublishSize(MqttProtocolVersion version, int topicUtf8Length, QualityOfService qos, MqttProperties? properties, long payloadLength)
    {
        long remaining = GetPublishRemainingLength(version, topicUtf8Length, qos, properties, out _, payloadLength);
        if (remaining > VariableByteInteger.MaxValue)
        {
            return int.MaxValue;
        }
        return 1 + VariableByteInteger.GetSize((int)remaining) + (int)remaining;
    }

    private static long GetPublishRemainingLength(MqttProtocolVersion version, int topicLength, QualityOfService qos, MqttProperties? properties, out int propertiesLength, long payloadLength)
    {
        propertiesLength = version == MqttProtocolVersion.V500 ? MqttPropertiesCodec.GetContentLength(properties) : 0;
        long remaining = 2 + topicLength + (qos == QualityOfService.AtMostOnce ? 0 : 2) + payloadLength;
        if (version == MqttProtocolVersion.V500)
        {
            remaining += VariableByteInteger.GetSize(propertiesLength) + propertiesLength;
        }
        return remaining;
    }

    /// <summary>Writes a PUBLISH from a UTF-8 topic and a payload sequence: the broker's forwarding path.</summary>
    public static int WritePublish(IBufferWriter<byte> output, MqttProtocolVersion version, ReadOnlySpan<byte> topicUtf8,
        QualityOfService qos, bool retain, bool dup, ushort packetId, MqttProperties? properties, in ReadOnlySequence<byte> payload)
    {
        long remainingLong = GetPublishRemainingLength(version, topicUtf8.Length, qos, properties, out int propertiesLength, payload.Length);
        if (remainingLong > VariableByteInteger.MaxValue)
        {
            throw new ArgumentException("PUBLISH larger than the maximum remaining length", nameof(payload));
        }
        int remaining = (int)remainingLong;
        int headerSize = 1 + VariableByteInteger.GetSize(remaining);
        int total = headerSize + remaining;
        var span = output.GetSpan(total);
        span[0] = (byte)((byte)PacketType.Publish << 4 | (dup ? 0x08 : 0) | ((int)qos << 1) | (retain ? 0x01 : 0));
        var w = new SpanWriter(span[1..]);
        w.Vbi(remaining);
        w.Utf8(topicUtf8);
        if (qos != QualityOfService.AtMostOnce)
        {
            w.UInt16(packetId);
        }
        if (version == MqttProtocolVersion.V500)
        {
            w.Written += MqttPropertiesCodec.Write(w.Remaining, properties, propertiesLength);
        }
        payload.CopyTo(w.Remaining);
        output.Advance(total);
        return total;
    }

    /// <summary>The encoded size of any packet (fixed header included).</summary>
    public static int GetSize(MqttPacket packet, MqttProtocolVersion version)
    {
        int remaining = GetRemainingLength(packet, version);
        return 1 + VariableByteInteger.GetSize(remaining) + remaining;
    }

    /// <summary>Writes any packet; returns the number of bytes written.</summary>
    public static int Write(IBufferWriter<byte> output, MqttPacket packet, MqttProtocolVersion version)
    {
        if (packet is PublishPacket publish)
        {
            int topicLength = Encoding.UTF8.GetByteCount(publish.Topic);
            Span<byte> topic = topicLength <= 256 ? stackalloc byte[topicLength] : new byte[topicLength];
            Encoding.UTF8.GetBytes(publish.Topic, topic);
            return WritePublish(output, version, topic, publish.QoS, publish.Retain, publish.Dup, publish.PacketId,
                publish.Properties, new ReadOnlySequence<byte>(publish.Payload));
        }
        int remaining = GetRemainingLength(packet, version);
        int total = 1 + VariableByteInteger.GetSize(remaining) + remaining;
        var span = output.GetSpan(total);
        span[0] = FirstByte(packet);
        var w = new SpanWriter(span[1..total]);
        w.Vbi(remaining);
        WriteBody(ref w, packet, version);
        if (w.Written != total - 1)
        {
            throw new InvalidOperationException($"{packet.Type} size mismatch: computed {total - 1}, wrote {w.Written}");
        }
        output.Advance(total);
        return total;
    }

    private static byte FirstByte(MqttPacket packet)
    {
        byte flags = packet.Type is PacketType.PubRel or PacketType.Subscribe or PacketType.Unsubscribe ? (byte)0b0010 : (byte)0;
        return (byte)((byte)packet.Type << 4 | flags);
    }

    private static bool V5(MqttProtocolVersion v) => v == MqttProtocolVersion.V500;

    private static int PropertiesField(MqttProperties? p) => MqttPropertiesCodec.GetFieldSize(p);

    private static int GetRemainingLength(MqttPacket packet, MqttProtocolVersion version)
    {
        bool v5 = V5(version);
        switch (packet)
        {
            case PublishPacket p:
            {
                long n = GetPublishRemainingLength(version, Encoding.UTF8.GetByteCount(p.Topic), p.QoS, p.Properties, out _, p.Payload.Length);
                if (n > VariableByteInteger.MaxValue)
                {
                    throw new ArgumentException("PUBLISH larger than the maximum remaining length", nameof(packet));
                }
                return (int)n;
            }
            case ConnectPacket c:
            {
                bool cv5 = c.ProtocolVersion == MqttProtocolVersion.V500;
                int n = StringSize(c.ProtocolName) + 1 + 1 + 2;
                if (cv5) n += PropertiesField(c.Properties);
                n += StringSize(c.ClientId);
                if (c.Will is { } will)
                {
                    if (cv5) n += PropertiesField(will.Properties);
                    n += StringSize(will.Topic) + 2 + will.Payload.Length;
                }
                if (c.UserName is not null) n += StringSize(c.UserName);
                if (c.Password is not null) n += 2 + c.Password.Length;
                return n;
            }
            case ConnAckPacket a:
                return 2 + (v5 ? PropertiesField(a.Properties) : 0);
            case PublishResponsePacket r:
                if (!v5 || (r.ReasonCode == ReasonCode.Success && r.Properties is null))
                {
                    return 2;
                }
                return r.Properties is null ? 3 : 3 + PropertiesField(r.Properties);
            case SubscribePacket s:
            {
                int n = 2 + (v5 ? PropertiesField(s.Properties) : 0);
                foreach (var sub in s.Subscriptions) n += StringSize(sub.TopicFilter) + 1;
                return n;
            }
            case SubAckPacket s:
                return 2 + (v5 ? PropertiesField(s.Properties) : 0) + s.ReasonCodes.Length;
            case UnsubscribePacket u:
            {
                int n = 2 + (v5 ? PropertiesField(u.Properties) : 0);
                foreach (var f in u.TopicFilters) n += StringSize(f);
                return n;
            }
            case UnsubAckPacket u:
                return v5 ? 2 + PropertiesField(u.Properties) + u.ReasonCodes.Length : 2;
            case PingReqPacket or PingRespPacket:
                return 0;
            case DisconnectPacket d:
                if (!v5 || (d.ReasonCode == ReasonCode.NormalDisconnection && d.Properties is null))
                {
                    return 0;
                }
                return d.Properties is null ? 1 : 1 + PropertiesField(d.Properties);
            case AuthPacket a:
                if (a.ReasonCode == ReasonCode.Success && a.Properties is null)
                {
                    return 0;
                }
                return 1 + PropertiesField(a.Properties);
            default:
                throw new ArgumentException($"cannot write {packet.Type}", nameof(packet));
        }
    }

    private static void WriteProperties(ref SpanWriter w, MqttProperties? p)
    {
        int content = MqttPropertiesCodec.GetContentLength(p);
        w.Written += MqttPropertiesCodec.Write(w.Remaining, p, content);
    }

    private static void WriteBody(ref SpanWriter w, MqttPacket packet, MqttProtocolVersion version)
    {
        bool v5 = V5(version);
        switch (packet)
        {
            case ConnectPacket c:
            {
                bool cv5 = c.ProtocolVersion == MqttProtocolVersion.V500;
                w.String(c.ProtocolName);
                w.Byte((byte)c.ProtocolVersion);
                int flags = (c.CleanStart ? 0x02 : 0);
                if (c.Will is { } will)
                {
                    flags |= 0x04 | ((int)will.QoS << 3) | (will.Retain ? 0x20 : 0);
                }
                if (c.Password is not null) flags |= 0x40;
                if (c.UserName is not null) flags |= 0x80;
                w.Byte((byte)flags);
                w.UInt16(c.KeepAliveSeconds);
                if (cv5) WriteProperties(ref w, c.Properties);
                w.String(c.ClientId);
                if (c.Will is { } will2)
                {
                    if (cv5) WriteProperties(ref w, will2.Properties);
                    w.String(will2.Topic);
                    w.Binary(will2.Payload);
                }
                if (c.UserName is not null) w.String(c.UserName);
                if (c.Password is not null) w.Binary(c.Password);
                break;
            }
            case ConnAckPacket a:
                w.Byte(a.SessionPresent ? (byte)1 : (byte)0);
                w.Byte(a.ReasonCode);
                if (v5) WriteProperties(ref w, a.Properties);
                break;
            case PublishResponsePacket r:
                w.UInt16(r.PacketId);
                if (v5 && (r.ReasonCode != ReasonCode.Success || r.Properties is not null))
                {
                    w.Byte((byte)r.ReasonCode);
                    if (r.Properties is not null) WriteProperties(ref w, r.Properties);
                }
                break;
            case SubscribePacket s:
                w.UInt16(s.PacketId);
                if (v5) WriteProperties(ref w, s.Properties);
                foreach (var sub in s.Subscriptions)
                {
                    w.String(sub.TopicFilter);
                    int options = (int)sub.QoS;
                    if (v5)
                    {
                        options |= (sub.NoLocal ? 0x04 : 0) | (sub.RetainAsPublished ? 0x08 : 0) | ((int)sub.RetainHandling << 4);
                    }
                    w.Byte((byte)options);
                }
                break;
            case SubAckPacket s:
                w.UInt16(s.PacketId);
                if (v5) WriteProperties(ref w, s.Properties);
                w.Raw(s.ReasonCodes);
                break;
            case UnsubscribePacket u:
                w.UInt16(u.PacketId);
                if (v5) WriteProperties(ref w, u.Properties);
                foreach (var f in u.TopicFilters) w.String(f);
                break;
            case UnsubAckPacket u:
                w.UInt16(u.PacketId);
                if (v5)
                {
                    WriteProperties(ref w, u.Properties);
                    w.Raw(u.ReasonCodes);
                }
                break;
            case PingReqPacket or PingRespPacket:
                break;
            case DisconnectPacket d:
                if (v5 && (d.ReasonCode != ReasonCode.NormalDisconnection || d.Properties is not null))
                {
                    w.Byte((byte)d.ReasonCode);
                    if (d.Properties is not null) WriteProperties(ref w, d.Properties);
                }
                break;
            case AuthPacket a:
                if (a.ReasonCode != ReasonCode.Success || a.Properties is not null)
                {
                    w.Byte((byte)a.ReasonCode);
                    WriteProperties(ref w, a.Properties);
                }
                break;
        }
    }
}
