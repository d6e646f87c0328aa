using System.Buffers;

namespace Broker.Protocol.Tests;

/// <summary>The broker's per-packet read path (frame, then PINGREQ or a QoS 0 PUBLISH view) allocates nothing.</summary>
public sealed class AllocationTests
{
    [Fact]
    public void Framing_and_decoding_pingreq_and_qos0_publish_allocates_nothing()
    {
        var ping = new ReadOnlySequence<byte>([0xC0, 0x00]);
        var payload = new byte[64];
        var publish311 = new ReadOnlySequence<byte>(Codec.Encode(new PublishPacket { Topic = "sensors/1/t", Payload = payload }, MqttProtocolVersion.V311));
        var publish500 = new ReadOnlySequence<byte>(Codec.Encode(new PublishPacket { Topic = "sensors/1/t", Payload = payload }, MqttProtocolVersion.V500));

        long checksum = 0;
        for (int i = 0; i < 2_000; i++)
        {
            checksum += ParseAll(ping, publish311, publish500); // warm up: JIT, tiering, statics
        }
        // Best of three runs: a one-off allocation by the runtime (tiered re-JIT, OSR) can land in one run, while a
        // real per-packet allocation shows in every run (at least 10,000 objects).
        long allocated = long.MaxValue;
        for (int attempt = 0; attempt < 3 && allocated != 0; attempt++)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            for (int i = 0; i < 10_000; i++)
            {
                checksum += ParseAll(ping, publish311, publish500);
            }
            allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        }

        Assert.Equal(0, checksum % (64 + 64 + 11 + 11));
        Assert.Equal(0, allocated);
    }

    private static long ParseAll(in ReadOnlySequence<byte> ping, in ReadOnlySequence<byte> publish311, in ReadOnlySequence<byte> publish500)
    {
        long sum = 0;
        Assert.True(MqttFrameReader.TryReadFrame(ping, 1024, out var frame, out _) == ReadStatus.Complete);
        Assert.True(MqttPacketDecoder.TryDecode(frame, MqttProtocolVersion.V311, out var packet, out _));
        Assert.True(packet.Type == PacketType.PingReq);

        Assert.True(MqttFrameReader.TryReadFrame(publish311, 1024, out frame, out _) == ReadStatus.Complete);
        Assert.True(MqttPacketDecoder.TryDecodePublish(frame, MqttProtocolVersion.V311, out var view, out _));
        sum += view.Payload.Length + view.Topic.Length;

        Assert.True(MqttFrameReader.TryReadFrame(publish500, 1024, out frame, out _) == ReadStatus.Complete);
        Assert.True(MqttPacketDecoder.TryDecodePublish(frame, MqttProtocolVersion.V500, out view, out _));
        sum += view.Payload.Length + view.Topic.Length;
        return sum;
    }
}
