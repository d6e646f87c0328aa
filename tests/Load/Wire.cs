using System.Buffers.Binary;
using System.Text;

namespace Broker.Load;

// Every byte of MQTT the load tool writes or reads goes through this file, so that it can be
// swapped for src/Broker.Protocol once that codec exists. Client side only: the tool writes
// CONNECT, PINGREQ, SUBSCRIBE, PUBLISH, PUBACK, DISCONNECT and reads CONNACK, PINGRESP, SUBACK,
// PUBLISH, PUBACK, DISCONNECT.

internal enum PacketType : byte
{
    Connect = 1,
    Connack = 2,
    Publish = 3,
    PubAck = 4,
    Subscribe = 8,
    SubAck = 9,
    PingReq = 12,
    PingResp = 13,
    Disconnect = 14,
}

internal enum FrameStatus
{
    Complete,
    NeedMoreData,
    Malformed,
}

/// <summary>One complete control packet inside a receive buffer; valid until the buffer is compacted.</summary>
internal readonly ref struct MqttFrame
{
    public MqttFrame(byte header, ReadOnlySpan<byte> body, int totalLength)
    {
        Header = header;
        Body = body;
        TotalLength = totalLength;
    }

    public byte Header { get; }
    public ReadOnlySpan<byte> Body { get; }
    public int TotalLength { get; }
    public PacketType Type => (PacketType)(Header >> 4);
    public int PublishQos => (Header >> 1) & 0x03;
}

internal static class Wire
{
    public const byte Mqtt311 = 4;
    public const byte Mqtt5 = 5;

    // Fixed header (1) + remaining length (up to 4). [MQTT-2.2.3]
    public const int MaxFixedHeaderLength = 5;

    public static ReadOnlySpan<byte> PingReq => [0xC0, 0x00];

    /// <summary>
    /// Finds the first complete frame at the start of <paramref name="buffer"/>. "Need more data"
    /// is a result, not an error: the caller keeps the bytes and appends the next read.
    /// </summary>
    public static FrameStatus TryReadFrame(ReadOnlySpan<byte> buffer, out MqttFrame frame)
    {
        frame = default;
        if (buffer.Length < 2)
        {
            return FrameStatus.NeedMoreData;
        }

        int remaining = 0;
        int shift = 0;
        int index = 1;
        while (true)
        {
            if (index >= buffer.Length)
            {
                return FrameStatus.NeedMoreData;
            }

            byte b = buffer[index++];
            remaining |= (b & 0x7F) << shift;
            if ((b & 0x80) == 0)
            {
                break;
            }

            shift += 7;
            if (shift > 21)
            {
                // [MQTT-1.5.5] a variable byte integer has at most four bytes.
                return FrameStatus.Malformed;
            }
        }

        if (buffer.Length - index < remaining)
        {
            return FrameStatus.NeedMoreData;
        }

        frame = new MqttFrame(buffer[0], buffer.Slice(index, remaining), index + remaining);
        return FrameStatus.Complete;
    }

    public static int RequiredLength(int remainingLength) => 1 + VarIntLength(remainingLength) + remainingLength;

    public static int ConnectLength(byte version, int clientIdLength) =>
        RequiredLength(ConnectRemainingLength(version, clientIdLength));

    public static int WriteConnect(Span<byte> destination, byte version, string clientId, ushort keepAliveSeconds, bool cleanStart)
    {
        int idLength = Encoding.UTF8.GetByteCount(clientId);
        int position = WriteFixedHeader(destination, 0x10, ConnectRemainingLength(version, idLength));
        destination[position++] = 0x00;
        destination[position++] = 0x04;
        destination[position++] = (byte)'M';
        destination[position++] = (byte)'Q';
        destination[position++] = (byte)'T';
        destination[position++] = (byte)'T';
        destination[position++] = version;
        destination[position++] = cleanStart ? (byte)0x02 : (byte)0x00;
        BinaryPrimitives.WriteUInt16BigEndian(destination[position..], keepAliveSeconds);
        position += 2;
        if (version == Mqtt5)
        {
            destination[position++] = 0x00; // no properties
        }

        BinaryPrimitives.WriteUInt16BigEndian(destination[position..], (ushort)idLength);
        position += 2;
        position += Encoding.UTF8.GetBytes(clientId, destination[position..]);
        return position;
    }

    /// <summary>CONNACK: the 3.1.1 return code or the 5.0 reason code; 0 means accepted.</summary>
    public static bool TryReadConnack(ReadOnlySpan<byte> body, out byte reasonCode)
    {
        reasonCode = 0;
        if (body.Length < 2)
        {
            return false;
        }

        reasonCode = body[1];
        return true;
    }

    public static int SubscribeLength(byte version, int topicLength) =>
        RequiredLength(2 + (version == Mqtt5 ? 1 : 0) + 2 + topicLength + 1);

    public static int WriteSubscribe(Span<byte> destination, byte version, ushort packetId, ReadOnlySpan<byte> topicFilter, int qos)
    {
        int remaining = 2 + (version == Mqtt5 ? 1 : 0) + 2 + topicFilter.Length + 1;
        // [MQTT-3.8.1-1] SUBSCRIBE fixed header flags are 0010.
        int position = WriteFixedHeader(destination, 0x82, remaining);
        BinaryPrimitives.WriteUInt16BigEndian(destination[position..], packetId);
        position += 2;
        if (version == Mqtt5)
        {
            destination[position++] = 0x00;
        }

        BinaryPrimitives.WriteUInt16BigEndian(destination[position..], (ushort)topicFilter.Length);
        position += 2;
        topicFilter.CopyTo(destination[position..]);
        position += topicFilter.Length;
        destination[position++] = (byte)qos;
        return position;
    }

    /// <summary>SUBACK: the first granted QoS / reason code; 0x80 and above is a failure.</summary>
    public static bool TryReadSubAck(ReadOnlySpan<byte> body, byte version, out ushort packetId, out byte firstReasonCode)
    {
        packetId = 0;
        firstReasonCode = 0x80;
        if (body.Length < 3)
        {
            return false;
        }

        packetId = BinaryPrimitives.ReadUInt16BigEndian(body);
        int position = 2;
        if (version == Mqtt5 && !TrySkipProperties(body, ref position))
        {
            return false;
        }

        if (position >= body.Length)
        {
            return false;
        }

        firstReasonCode = body[position];
        return true;
    }

    public static int PublishLength(byte version, int topicLength, int qos, int payloadLength) =>
        RequiredLength(PublishRemainingLength(version, topicLength, qos, payloadLength));

    public static int WritePublish(Span<byte> destination, byte version, ReadOnlySpan<byte> topic, int qos, ushort packetId, ReadOnlySpan<byte> payload)
    {
        int position = WriteFixedHeader(destination, (byte)(0x30 | (qos << 1)), PublishRemainingLength(version, topic.Length, qos, payload.Length));
        BinaryPrimitives.WriteUInt16BigEndian(destination[position..], (ushort)topic.Length);
        position += 2;
        topic.CopyTo(destination[position..]);
        position += topic.Length;
        if (qos > 0)
        {
            BinaryPrimitives.WriteUInt16BigEndian(destination[position..], packetId);
            position += 2;
        }

        if (version == Mqtt5)
        {
            destination[position++] = 0x00;
        }

        payload.CopyTo(destination[position..]);
        return position + payload.Length;
    }

    public static bool TryReadPublish(ReadOnlySpan<byte> body, byte version, int qos, out ushort packetId, out ReadOnlySpan<byte> payload)
    {
        packetId = 0;
        payload = default;
        if (body.Length < 2)
        {
            return false;
        }

        int position = 2 + BinaryPrimitives.ReadUInt16BigEndian(body);
        if (qos > 0)
        {
            if (position + 2 > body.Length)
            {
                return false;
            }

            packetId = BinaryPrimitives.ReadUInt16BigEndian(body[position..]);
            position += 2;
        }

        if (version == Mqtt5 && !TrySkipProperties(body, ref position))
        {
            return false;
        }

        if (position > body.Length)
        {
            return false;
        }

        payload = body[position..];
        return true;
    }

    // The two-byte form is valid in 5.0 too: reason code 0 with no properties may be omitted. [MQTT-3.4.2.1]
    public static int WritePubAck(Span<byte> destination, ushort packetId)
    {
        destination[0] = 0x40;
        destination[1] = 0x02;
        BinaryPrimitives.WriteUInt16BigEndian(destination[2..], packetId);
        return 4;
    }

    public static bool TryReadPubAck(ReadOnlySpan<byte> body, out ushort packetId, out byte reasonCode)
    {
        packetId = 0;
        reasonCode = 0;
        if (body.Length < 2)
        {
            return false;
        }

        packetId = BinaryPrimitives.ReadUInt16BigEndian(body);
        reasonCode = body.Length > 2 ? body[2] : (byte)0;
        return true;
    }

    public static int WriteDisconnect(Span<byte> destination, byte version, byte reasonCode)
    {
        destination[0] = 0xE0;
        if (version != Mqtt5)
        {
            destination[1] = 0x00;
            return 2;
        }

        // [MQTT-3.14.2.2] property length may be omitted when the remaining length is 1.
        destination[1] = 0x01;
        destination[2] = reasonCode;
        return 3;
    }

    /// <summary>5.0 DISCONNECT from the broker: an empty body means 0x00 normal disconnection.</summary>
    public static byte ReadDisconnectReason(ReadOnlySpan<byte> body) => body.IsEmpty ? (byte)0 : body[0];

    private static int ConnectRemainingLength(byte version, int clientIdLength) =>
        10 + (version == Mqtt5 ? 1 : 0) + 2 + clientIdLength;

    private static int PublishRemainingLength(byte version, int topicLength, int qos, int payloadLength) =>
        2 + topicLength + (qos > 0 ? 2 : 0) + (version == Mqtt5 ? 1 : 0) + payloadLength;

    private static int WriteFixedHeader(Span<byte> destination, byte first, int remainingLength)
    {
        destination[0] = first;
        int position = 1;
        do
        {
            byte b = (byte)(remainingLength & 0x7F);
            remainingLength >>= 7;
            if (remainingLength > 0)
            {
                b |= 0x80;
            }

            destination[position++] = b;
        }
        while (remainingLength > 0);
        return position;
    }

    private static int VarIntLength(int value) => value < 128 ? 1 : value < 16_384 ? 2 : value < 2_097_152 ? 3 : 4;

    private static bool TrySkipProperties(ReadOnlySpan<byte> body, ref int position)
    {
        int length = 0;
        int shift = 0;
        while (true)
        {
            if (position >= body.Length || shift > 21)
            {
                return false;
            }

            byte b = body[position++];
            length |= (b & 0x7F) << shift;
            if ((b & 0x80) == 0)
            {
                break;
            }

            shift += 7;
        }

        position += length;
        return position <= body.Length;
    }
}
