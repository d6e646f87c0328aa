using System.Buffers;

namespace Broker.Protocol;

/// <summary>One control packet's boundaries within buffered input: the fixed header and a slice holding the body.</summary>
public readonly struct MqttFrame
{
    public MqttFrame(PacketType type, byte flags, int remainingLength, int headerLength, ReadOnlySequence<byte> body, SequencePosition end)
    {
        Type = type;
        Flags = flags;
        RemainingLength = remainingLength;
        HeaderLength = headerLength;
        Body = body;
        End = end;
    }

    public PacketType Type { get; }
    /// <summary>The low nibble of the first byte.</summary>
    public byte Flags { get; }
    public int RemainingLength { get; }
    public int HeaderLength { get; }
    /// <summary>The variable header and payload, still a slice of the caller's buffer.</summary>
    public ReadOnlySequence<byte> Body { get; }
    /// <summary>Where the next packet starts: what the caller passes to <c>PipeReader.AdvanceTo</c>.</summary>
    public SequencePosition End { get; }
    /// <summary>The packet size in the sense of Maximum Packet Size (3.1.2.11.4): all bytes of the packet.</summary>
    public int TotalLength => HeaderLength + RemainingLength;
}

/// <summary>
/// Finds packet boundaries in buffered input without decoding bodies (framing apart from decoding,
/// so that the size limit is applied before a body is ever buffered).
/// </summary>
public static class MqttFrameReader
{
    /// <summary>
    /// Reads one fixed header and, if the whole packet is buffered, returns its frame. "Need more data"
    /// consumes nothing. The maximum packet size is checked as soon as the Remaining Length is known, so an
    /// announced 256 MB packet is refused after its first 5 bytes.
    /// </summary>
    public static ReadStatus TryReadFrame(in ReadOnlySequence<byte> buffer, int maxPacketSize, out MqttFrame frame, out MqttDecodeError error)
    {
        frame = default;
        error = default;
        if (buffer.IsEmpty)
        {
            return ReadStatus.NeedMoreData;
        }
        // A sequence may start with an empty segment (an empty first buffer, or a split at offset 0).
        var head = buffer.FirstSpan;
        byte first = head.Length > 0 ? head[0] : FirstByteOfLaterSegment(buffer);
        var type = (PacketType)(first >> 4);
        byte flags = (byte)(first & 0x0F);
        if (!TryValidateFlags(type, flags, out error))
        {
            return ReadStatus.Error;
        }
        var status = VariableByteInteger.TryRead(buffer.Slice(1), out int remaining, out int vbiLength, out error);
        if (status == ReadStatus.NeedMoreData && MinimumPacketSize(buffer.Slice(1)) > maxPacketSize)
        {
            // The bytes of the Remaining Length seen so far already promise more than the limit.
            error = Errors.PacketTooLarge;
            return ReadStatus.Error;
        }
        if (status != ReadStatus.Complete)
        {
            return status;
        }
        int headerLength = 1 + vbiLength;
        if ((long)headerLength + remaining > maxPacketSize)
        {
            error = Errors.PacketTooLarge;
            return ReadStatus.Error;
        }
        if (buffer.Length < headerLength + remaining)
        {
            return ReadStatus.NeedMoreData;
        }
        var body = buffer.Slice(headerLength, remaining);
        frame = new MqttFrame(type, flags, remaining, headerLength, body, body.End);
        return ReadStatus.Complete;
    }

    /// <summary>
    /// The total length (fixed header included) of the packet that starts <paramref name="buffer"/>, once its
    /// fixed header is complete; false while the Remaining Length is still incomplete or invalid. Lets a reader
    /// that holds a partial packet size its buffer for the whole packet at once.
    /// </summary>
    public static bool TryGetPacketLength(ReadOnlySpan<byte> buffer, out long totalLength)
    {
        totalLength = 0;
        if (buffer.Length < 2)
        {
            return false;
        }
        if (VariableByteInteger.TryRead(buffer[1..], out int remaining, out int vbiLength, out _) != ReadStatus.Complete)
        {
            return false;
        }
        totalLength = 1L + vbiLength + remaining;
        return true;
    }

    private static byte FirstByteOfLaterSegment(in ReadOnlySequence<byte> buffer)
    {
        foreach (var segment in buffer)
        {
            if (!segment.IsEmpty)
            {
                return segment.Span[0];
            }
        }
        throw new InvalidOperationException("a non-empty sequence has a non-empty segment");
    }

    /// <summary>
    /// The smallest packet an incomplete Remaining Length can still describe: every byte seen so far has its
    /// continuation bit set, so at least one more byte follows and contributes at least 1 x 128^n.
    /// </summary>
    private static long MinimumPacketSize(in ReadOnlySequence<byte> partialLength)
    {
        long value = 0;
        long multiplier = 1;
        int count = 0;
        foreach (var segment in partialLength)
        {
            foreach (byte b in segment.Span)
            {
                value += (b & 0x7F) * multiplier;
                multiplier *= 128;
                count++;
            }
        }
        // With no byte seen the packet may still be the 2-byte "type, 00"; after a continuation byte the
        // last byte is non-zero, since a trailing 0x00 would not be minimal [MQTT-1.5.5-1].
        return count == 0 ? 2 : 1 + count + 1 + value + multiplier;
    }

    /// <summary>The fixed header flag rules of 2.1.3 / 2.2.2 and the PUBLISH QoS and DUP rules.</summary>
    public static bool TryValidateFlags(PacketType type, byte flags, out MqttDecodeError error)
    {
        error = default;
        switch (type)
        {
            case PacketType.Reserved:
                error = Errors.ReservedPacketType;
                return false;
            case PacketType.Publish:
                int qos = (flags >> 1) & 0x03;
                if (qos == 3)
                {
                    error = Errors.PublishQoS3;
                    return false;
                }
                if (qos == 0 && (flags & 0x08) != 0)
                {
                    error = Errors.PublishDupWithQoS0;
                    return false;
                }
                return true;
            case PacketType.PubRel:
            case PacketType.Subscribe:
            case PacketType.Unsubscribe:
                if (flags != 0b0010)
                {
                    error = Errors.InvalidFixedHeaderFlags;
                    return false;
                }
                return true;
            default:
                if (flags != 0)
                {
                    error = Errors.InvalidFixedHeaderFlags;
                    return false;
                }
                return true;
        }
    }
}
