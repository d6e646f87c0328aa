using System.Buffers;
using Broker.Protocol;
using Xunit;

namespace Broker.Load.Tests;

/// <summary>
/// The load client's framing: the same packets must come out whatever way the socket cut the bytes,
/// and a client's slice of the shared slab must never spill into its neighbours'.
/// </summary>
public sealed class ReceiveBufferTests
{
    private const byte Guard = 0xEE;

    [Fact]
    public void Every_split_point_yields_the_same_frames()
    {
        byte[] stream = Stream(out List<Received> expected);

        for (int split = 0; split <= stream.Length; split++)
        {
            var (buffer, _) = NewBuffer(capacity: 512);
            var handler = new RecordingHandler();
            Assert.Equal(ReceiveOutcome.NeedMoreData, Feed(buffer, handler, stream.AsSpan(0, split)));
            Assert.Equal(ReceiveOutcome.NeedMoreData, Feed(buffer, handler, stream.AsSpan(split)));

            Assert.Equal(expected, handler.Frames);
            Assert.Equal(0, buffer.Buffered);
        }
    }

    [Fact]
    public void One_byte_per_receive_yields_the_same_frames()
    {
        byte[] stream = Stream(out List<Received> expected);
        var (buffer, _) = NewBuffer(capacity: 512);
        var handler = new RecordingHandler();

        for (int i = 0; i < stream.Length; i++)
        {
            Assert.Equal(ReceiveOutcome.NeedMoreData, Feed(buffer, handler, stream.AsSpan(i, 1)));
        }

        Assert.Equal(expected, handler.Frames);
    }

    [Fact]
    public void A_stream_many_times_the_slice_is_framed_across_compactions_without_touching_neighbours()
    {
        // 64-byte slice in the middle of a slab: the stream is ~20 times the slice, so partial frames
        // are moved to the front over and over.
        var output = new ArrayBufferWriter<byte>();
        var expected = new List<Received>();
        for (int i = 0; i < 40; i++)
        {
            Append(output, expected, new PublishPacket { Topic = $"t/{i}", QoS = QualityOfService.AtLeastOnce, PacketId = (ushort)(i + 1), Payload = Filled(i, 20) });
            Append(output, expected, PingRespPacket.Instance);
        }

        byte[] stream = output.WrittenSpan.ToArray();
        var (buffer, slab) = NewBuffer(capacity: 64, before: 64, after: 64);
        var handler = new RecordingHandler();
        int position = 0;
        int chunk = 1;
        while (position < stream.Length)
        {
            // Uneven receive sizes, never more than the free space.
            int n = Math.Min(Math.Min(chunk, buffer.FreeCount), stream.Length - position);
            Assert.Equal(ReceiveOutcome.NeedMoreData, Feed(buffer, handler, stream.AsSpan(position, n)));
            position += n;
            chunk = chunk % 37 + 5;
        }

        Assert.Equal(expected, handler.Frames);
        Assert.All(slab.AsSpan(0, 64).ToArray(), b => Assert.Equal(Guard, b));
        Assert.All(slab.AsSpan(128, 64).ToArray(), b => Assert.Equal(Guard, b));
    }

    [Fact]
    public void The_payload_of_a_decoded_publish_is_a_slice_of_the_slab()
    {
        var output = new ArrayBufferWriter<byte>();
        MqttPacketWriter.Write(output, new PublishPacket { Topic = "a/b", QoS = QualityOfService.AtLeastOnce, PacketId = 9, Payload = Filled(3, 30) }, MqttProtocolVersion.V500);
        var (buffer, _) = NewBuffer(capacity: 128);
        var handler = new PublishHandler(Wire.Mqtt5);

        Assert.Equal(ReceiveOutcome.NeedMoreData, Feed(buffer, handler, output.WrittenSpan));

        Assert.Equal(9, handler.PacketId);
        Assert.Equal(Filled(3, 30).ToArray(), handler.Payload);
    }

    [Fact]
    public void A_refused_frame_stops_and_keeps_no_later_frame()
    {
        var output = new ArrayBufferWriter<byte>();
        MqttPacketWriter.Write(output, PingRespPacket.Instance, MqttProtocolVersion.V311);
        MqttPacketWriter.Write(output, new DisconnectPacket { ReasonCode = ReasonCode.KeepAliveTimeout }, MqttProtocolVersion.V500);
        MqttPacketWriter.Write(output, PingRespPacket.Instance, MqttProtocolVersion.V311);
        var (buffer, _) = NewBuffer(capacity: 64);
        var handler = new RecordingHandler { StopAt = PacketType.Disconnect };

        Assert.Equal(ReceiveOutcome.Stopped, Feed(buffer, handler, output.WrittenSpan));

        Assert.Equal([PacketType.PingResp, PacketType.Disconnect], handler.Frames.Select(f => f.Type));
    }

    [Fact]
    public void Invalid_fixed_header_flags_are_malformed()
    {
        var (buffer, _) = NewBuffer(capacity: 64);

        // [MQTT-2.2.2-2] PINGRESP flags are 0000.
        Assert.Equal(ReceiveOutcome.Malformed, Feed(buffer, new RecordingHandler(), [0xD1, 0x00]));
    }

    [Fact]
    public void A_remaining_length_of_five_bytes_is_malformed()
    {
        var (buffer, _) = NewBuffer(capacity: 64);

        // [MQTT-1.5.5] a variable byte integer has at most four bytes.
        Assert.Equal(ReceiveOutcome.Malformed, Feed(buffer, new RecordingHandler(), [0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]));
    }

    [Fact]
    public void A_frame_larger_than_the_slice_is_refused_from_its_fixed_header()
    {
        var (buffer, _) = NewBuffer(capacity: 64);

        // PUBLISH announcing 300 bytes: known to be too large after 3 bytes, before any body arrives.
        Assert.Equal(ReceiveOutcome.FrameTooLarge, Feed(buffer, new RecordingHandler(), [0x30, 0xAC, 0x02]));
    }

    [Fact]
    public void Reset_drops_a_partial_frame_of_the_previous_connection()
    {
        var (buffer, _) = NewBuffer(capacity: 64);
        var handler = new RecordingHandler();
        Feed(buffer, handler, [0x20, 0x02, 0x00]);
        Assert.Equal(3, buffer.Buffered);

        buffer.Reset();
        Feed(buffer, handler, [0xD0, 0x00]);

        Assert.Equal([PacketType.PingResp], handler.Frames.Select(f => f.Type));
    }

    /// <summary>
    /// CONNACK, SUBACK, PINGRESP, PUBLISH QoS 0 and QoS 1 (one with a two-byte remaining length),
    /// PUBACK and a 5.0 DISCONNECT: everything the load client reads.
    /// </summary>
    private static byte[] Stream(out List<Received> expected)
    {
        var output = new ArrayBufferWriter<byte>();
        expected = [];
        Append(output, expected, new ConnAckPacket { ReasonCode = 0 });
        Append(output, expected, new SubAckPacket { PacketId = 1, ReasonCodes = [1] });
        Append(output, expected, PingRespPacket.Instance);
        Append(output, expected, new PublishPacket { Topic = "load/x/out", QoS = QualityOfService.AtMostOnce, Payload = Filled(1, 20) });
        Append(output, expected, new PublishPacket { Topic = "load/x/pair/7", QoS = QualityOfService.AtLeastOnce, PacketId = 513, Payload = Filled(2, 200) });
        Append(output, expected, new PubAckPacket { PacketId = 65535 });
        Append(output, expected, PingRespPacket.Instance);
        Append(output, expected, new DisconnectPacket { ReasonCode = ReasonCode.KeepAliveTimeout }, MqttProtocolVersion.V500);
        return output.WrittenSpan.ToArray();
    }

    private static void Append(ArrayBufferWriter<byte> output, List<Received> expected, MqttPacket packet, MqttProtocolVersion version = MqttProtocolVersion.V311)
    {
        int start = output.WrittenCount;
        int length = MqttPacketWriter.Write(output, packet, version);
        byte[] bytes = output.WrittenSpan.Slice(start, length).ToArray();
        // The remaining length's last byte is the first without the continuation bit. [MQTT-1.5.5]
        int headerLength = 2;
        while ((bytes[headerLength - 1] & 0x80) != 0)
        {
            headerLength++;
        }

        expected.Add(new Received(packet.Type, (byte)(bytes[0] & 0x0F), Convert.ToHexString(bytes.AsSpan(headerLength))));
    }

    private static ReadOnlyMemory<byte> Filled(int seed, int length) => Enumerable.Range(0, length).Select(i => (byte)(seed * 31 + i)).ToArray();

    private static (ReceiveBuffer Buffer, byte[] Slab) NewBuffer(int capacity, int before = 0, int after = 0)
    {
        byte[] slab = new byte[before + capacity + after];
        slab.AsSpan().Fill(Guard);
        return (new ReceiveBuffer(slab, before, capacity), slab);
    }

    /// <summary>What a socket receive does: copy into the free space, then commit.</summary>
    private static ReceiveOutcome Feed<THandler>(ReceiveBuffer buffer, THandler handler, ReadOnlySpan<byte> bytes) where THandler : IFrameHandler
    {
        Assert.True(bytes.Length <= buffer.FreeCount);
        bytes.CopyTo(buffer.Slab.AsSpan(buffer.FreeOffset));
        return buffer.Commit(bytes.Length, handler);
    }

    private sealed record Received(PacketType Type, byte Flags, string BodyHex);

    private sealed class RecordingHandler : IFrameHandler
    {
        public List<Received> Frames { get; } = [];
        public PacketType? StopAt { get; init; }

        public bool OnFrame(in MqttFrame frame)
        {
            Frames.Add(new Received(frame.Type, frame.Flags, Convert.ToHexString(frame.Body.ToArray())));
            return frame.Type != StopAt;
        }
    }

    private sealed class PublishHandler(byte version) : IFrameHandler
    {
        public ushort PacketId { get; private set; }
        public byte[] Payload { get; private set; } = [];

        public bool OnFrame(in MqttFrame frame)
        {
            Assert.True(Wire.TryReadPublish(frame, version, out PublishPacketView publish));
            Assert.True(publish.Payload.IsSingleSegment);
            PacketId = publish.PacketId;
            Payload = publish.Payload.FirstSpan.ToArray();
            return true;
        }
    }
}
