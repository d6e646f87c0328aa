using System.Buffers;

namespace Broker.Protocol.Tests;

/// <summary>
/// Every sample packet read whole, from every prefix, split at every offset, one byte per segment and
/// inside a larger buffer: the answer must not depend on how the input was cut.
/// </summary>
public sealed class SegmentationTests
{
    public static TheoryData<int> Corpus()
    {
        var data = new TheoryData<int>();
        int count = SamplePackets.Encoded().Count();
        for (int i = 0; i < count; i++)
        {
            data.Add(i);
        }
        return data;
    }

    private static (MqttProtocolVersion Version, MqttPacket Packet, byte[] Bytes) Sample(int index) => SamplePackets.Encoded().ElementAt(index);

    [Theory]
    [MemberData(nameof(Corpus))]
    public void Every_prefix_needs_more_data_and_consumes_nothing(int index)
    {
        var (version, _, bytes) = Sample(index);
        for (int length = 0; length < bytes.Length; length++)
        {
            var prefix = TestBuffers.Single(bytes[..length]);
            // With no limit, and with the limit exactly at the packet's size: neither may refuse a prefix.
            foreach (int max in new[] { Codec.NoLimit, bytes.Length })
            {
                var status = MqttPacketReader.TryRead(prefix, version, max, out _, out var consumed, out var error);
                Assert.True(status == ReadStatus.NeedMoreData, $"prefix of {length} bytes, max {max}: {status} {error}");
                Assert.Equal(prefix.Start, consumed);
                Assert.Equal(ReadStatus.NeedMoreData, MqttFrameReader.TryReadFrame(prefix, max, out _, out _));
            }
        }
    }

    [Theory]
    [MemberData(nameof(Corpus))]
    public void Split_at_every_offset_reads_the_same(int index)
    {
        var (version, expected, bytes) = Sample(index);
        for (int at = 0; at <= bytes.Length; at++)
        {
            PacketAssert.Equal(expected, Codec.Decode(TestBuffers.SplitAt(bytes, at), version));
        }
    }

    [Theory]
    [MemberData(nameof(Corpus))]
    public void One_byte_per_segment_reads_the_same(int index)
    {
        var (version, expected, bytes) = Sample(index);
        PacketAssert.Equal(expected, Codec.Decode(TestBuffers.OneBytePerSegment(bytes), version));
    }

    [Theory]
    [MemberData(nameof(Corpus))]
    public void Empty_segments_anywhere_read_the_same(int index)
    {
        var (version, expected, bytes) = Sample(index);
        int half = bytes.Length / 2;
        PacketAssert.Equal(expected, Codec.Decode(TestBuffers.Segmented(bytes, 0, half, 0, 0, bytes.Length - half, 0), version));
    }

    [Theory]
    [MemberData(nameof(Corpus))]
    public void Packet_followed_by_another_reports_where_the_next_starts(int index)
    {
        var (version, expected, bytes) = Sample(index);
        byte[] next = [0xC0, 0x00, 0xD0]; // a PINGREQ and the first byte of a PINGRESP
        byte[] data = [.. bytes, .. next];

        foreach (var buffer in new[] { TestBuffers.Single(data), TestBuffers.SplitAt(data, bytes.Length / 2), TestBuffers.OneBytePerSegment(data) })
        {
            var status = MqttPacketReader.TryRead(buffer, version, Codec.NoLimit, out var packet, out var consumed, out var error);
            Assert.True(status == ReadStatus.Complete, $"{status} {error}");
            PacketAssert.Equal(expected, packet);
            Assert.Equal(bytes.Length, buffer.Slice(0, consumed).Length);

            var rest = buffer.Slice(consumed);
            Assert.Equal(ReadStatus.Complete, MqttPacketReader.TryRead(rest, version, Codec.NoLimit, out var ping, out consumed, out _));
            Assert.IsType<PingReqPacket>(ping);
            var last = rest.Slice(consumed);
            Assert.Equal(1, last.Length);
            Assert.Equal(ReadStatus.NeedMoreData, MqttPacketReader.TryRead(last, version, Codec.NoLimit, out _, out consumed, out _));
            Assert.Equal(last.Start, consumed);
        }
    }

    [Fact]
    public void Frame_reports_header_length_body_and_end()
    {
        var bytes = MalformedPacketTests.Packet("30 | 00 01 'a' " + string.Join(' ', Enumerable.Repeat("AB", 200))); // remaining 203: 2-byte VBI
        byte[] data = [.. bytes, 0xC0, 0x00];
        var buffer = TestBuffers.SplitAt(data, 100);

        Assert.Equal(ReadStatus.Complete, MqttFrameReader.TryReadFrame(buffer, Codec.NoLimit, out var frame, out _));

        Assert.Equal(PacketType.Publish, frame.Type);
        Assert.Equal(0, frame.Flags);
        Assert.Equal(3, frame.HeaderLength);
        Assert.Equal(203, frame.RemainingLength);
        Assert.Equal(206, frame.TotalLength);
        Assert.Equal(bytes[3..], frame.Body.ToArray());
        Assert.Equal(206, buffer.Slice(0, frame.End).Length);
    }

    [Fact]
    public void Publish_view_over_segments_slices_topic_and_payload_from_the_input()
    {
        var bytes = Codec.Encode(new PublishPacket { Topic = "a/b/c", Payload = "0123456789"u8.ToArray(), QoS = QualityOfService.AtLeastOnce, PacketId = 9 },
            MqttProtocolVersion.V500);
        for (int at = 0; at <= bytes.Length; at++)
        {
            var buffer = TestBuffers.SplitAt(bytes, at);
            Assert.Equal(ReadStatus.Complete, MqttFrameReader.TryReadFrame(buffer, Codec.NoLimit, out var frame, out _));

            Assert.True(MqttPacketDecoder.TryDecodePublish(frame, MqttProtocolVersion.V500, out var view, out var error), error.ToString());

            Assert.Equal("a/b/c"u8.ToArray(), view.Topic.ToArray());
            Assert.Equal("0123456789"u8.ToArray(), view.Payload.ToArray());
            Assert.Equal(9, view.PacketId);
            Assert.Equal(QualityOfService.AtLeastOnce, view.QoS);
            Assert.Null(view.Properties);
        }
    }

    [Fact]
    public void Oversized_packet_is_refused_as_soon_as_its_remaining_length_is_known_in_any_segmentation()
    {
        var bytes = TestBuffers.Hex("30 FF FF FF 7F");
        foreach (var buffer in new[] { TestBuffers.OneBytePerSegment(bytes), TestBuffers.SplitAt(bytes, 2), TestBuffers.Segmented(bytes, 0, 5) })
        {
            Assert.Equal(ReadStatus.Error, MqttFrameReader.TryReadFrame(buffer, 1024, out _, out var error));
            Assert.Equal(ReasonCode.PacketTooLarge, error.Code);
        }
    }
}
