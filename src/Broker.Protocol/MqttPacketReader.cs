using System.Buffers;

namespace Broker.Protocol;

/// <summary>Framing and decoding in one call, for clients, tools and tests (the broker frames and decodes in two steps).</summary>
public static class MqttPacketReader
{
    /// <summary>
    /// Reads one packet. On <see cref="ReadStatus.Complete"/> <paramref name="consumed"/> is where the next packet
    /// starts; on <see cref="ReadStatus.NeedMoreData"/> nothing was consumed; on <see cref="ReadStatus.Error"/> the
    /// error carries the reason code. A CONNECT is decoded whatever <paramref name="version"/> says.
    /// </summary>
    public static ReadStatus TryRead(in ReadOnlySequence<byte> buffer, MqttProtocolVersion version, int maxPacketSize,
        out MqttPacket packet, out SequencePosition consumed, out MqttDecodeError error)
    {
        packet = null!;
        consumed = buffer.Start;
        var status = MqttFrameReader.TryReadFrame(buffer, maxPacketSize, out var frame, out error);
        if (status != ReadStatus.Complete)
        {
            return status;
        }
        if (!MqttPacketDecoder.TryDecode(frame, version, out packet, out error))
        {
            return ReadStatus.Error;
        }
        consumed = frame.End;
        return ReadStatus.Complete;
    }
}
