using System.Buffers;
using Broker.Protocol;

namespace Broker.Protocol.Tests;

/// <summary>The allocation-free PUBACK/PUBREC/PUBREL/PUBCOMP writer and reader agree with the general codec.</summary>
public sealed class PublishResponseFastPathTests
{
    public static TheoryData<PacketType, ReasonCode, MqttProtocolVersion> Cases()
    {
        var data = new TheoryData<PacketType, ReasonCode, MqttProtocolVersion>();
        foreach (var type in new[] { PacketType.PubAck, PacketType.PubRec, PacketType.PubRel, PacketType.PubComp })
        {
            data.Add(type, ReasonCode.Success, MqttProtocolVersion.V311);
            data.Add(type, ReasonCode.Success, MqttProtocolVersion.V500);
            var failure = type is PacketType.PubAck or PacketType.PubRec ? ReasonCode.NoMatchingSubscribers : ReasonCode.PacketIdentifierNotFound;
            data.Add(type, failure, MqttProtocolVersion.V500);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Fast_writer_matches_the_packet_writer_byte_for_byte(PacketType type, ReasonCode code, MqttProtocolVersion version)
    {
        PublishResponsePacket packet = type switch
        {
            PacketType.PubAck => new PubAckPacket(),
            PacketType.PubRec => new PubRecPacket(),
            PacketType.PubRel => new PubRelPacket(),
            _ => new PubCompPacket(),
        };
        packet.PacketId = 0x1234;
        packet.ReasonCode = code;
        var general = new ArrayBufferWriter<byte>();
        MqttPacketWriter.Write(general, packet, version);
        var fast = new ArrayBufferWriter<byte>();
        MqttPacketWriter.WritePublishResponse(fast, type, 0x1234, code, version);
        Assert.Equal(general.WrittenSpan.ToArray(), fast.WrittenSpan.ToArray());
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Fast_reader_reads_what_the_writer_wrote(PacketType type, ReasonCode code, MqttProtocolVersion version)
    {
        var bytes = new ArrayBufferWriter<byte>();
        MqttPacketWriter.WritePublishResponse(bytes, type, 0xBEEF, code, version);
        Assert.Equal(ReadStatus.Complete, MqttFrameReader.TryReadFrame(new ReadOnlySequence<byte>(bytes.WrittenMemory), 1024, out var frame, out _));
        Assert.True(MqttPacketDecoder.TryDecodePublishResponse(frame, version, out ushort id, out var read, out var error), error.ToString());
        Assert.Equal(0xBEEF, id);
        Assert.Equal(version == MqttProtocolVersion.V500 ? code : ReasonCode.Success, read);
    }

    [Fact]
    public void Fast_reader_validates_like_the_general_decoder()
    {
        // PUBACK, remaining length 2, packet id 0 [MQTT-2.2.1-3]
        var zeroId = TestBuffers.Hex("40 02 00 00");
        MqttFrameReader.TryReadFrame(new ReadOnlySequence<byte>(zeroId), 1024, out var frame, out _);
        Assert.False(MqttPacketDecoder.TryDecodePublishResponse(frame, MqttProtocolVersion.V500, out _, out _, out var error));
        Assert.Equal(ReasonCode.ProtocolError, error.Code);

        // PUBCOMP 5.0 with reason 0x10, which only PUBACK/PUBREC may carry
        var badCode = TestBuffers.Hex("70 03 00 01 10");
        MqttFrameReader.TryReadFrame(new ReadOnlySequence<byte>(badCode), 1024, out frame, out _);
        Assert.False(MqttPacketDecoder.TryDecodePublishResponse(frame, MqttProtocolVersion.V500, out _, out _, out error));
        Assert.Equal(ReasonCode.MalformedPacket, error.Code);

        // 3.1.1 PUBACK with a third byte: trailing bytes
        var trailing = TestBuffers.Hex("40 03 00 01 00");
        MqttFrameReader.TryReadFrame(new ReadOnlySequence<byte>(trailing), 1024, out frame, out _);
        Assert.False(MqttPacketDecoder.TryDecodePublishResponse(frame, MqttProtocolVersion.V311, out _, out _, out error));
        Assert.Equal(ReasonCode.MalformedPacket, error.Code);
    }

    [Fact]
    public void Fast_paths_do_not_allocate()
    {
        var output = new ArrayBufferWriter<byte>(64);
        var ack = new ReadOnlySequence<byte>(TestBuffers.Hex("40 02 00 07"));
        MqttFrameReader.TryReadFrame(ack, 1024, out var frame, out _);
        for (int i = 0; i < 100; i++)
        {
            output.ResetWrittenCount();
            MqttPacketWriter.WritePublishResponse(output, PacketType.PubAck, 7, ReasonCode.Success, MqttProtocolVersion.V500);
            MqttPacketDecoder.TryDecodePublishResponse(frame, MqttProtocolVersion.V500, out _, out _, out _);
        }
        // Best of three: see AllocationTests for why a single run can see a runtime allocation.
        long allocated = long.MaxValue;
        for (int attempt = 0; attempt < 3 && allocated != 0; attempt++)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            for (int i = 0; i < 1000; i++)
            {
                output.ResetWrittenCount();
                MqttPacketWriter.WritePublishResponse(output, PacketType.PubAck, 7, ReasonCode.Success, MqttProtocolVersion.V500);
                MqttPacketDecoder.TryDecodePublishResponse(frame, MqttProtocolVersion.V500, out _, out _, out _);
            }
            allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        }
        Assert.Equal(0, allocated);
    }
}
