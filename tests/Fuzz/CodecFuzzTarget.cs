using System.Buffers;
using Broker.Protocol;

namespace Broker.Fuzz;

/// <summary>
/// One fuzz input through the whole codec: every frame of the input is read and decoded as 3.1.1 and as
/// 5.0, by the generic decoder and by the packet-specific ones, whole and split in two segments; whatever
/// decodes is written back and must read back to the same bytes. Any broken expectation throws
/// <see cref="FuzzFindingException"/>, which the fuzzer records as a crash; so does any exception the
/// codec lets out, since its contract is to answer every input with a <see cref="ReadStatus"/>.
/// </summary>
/// <remarks>
/// Compiled into the fuzz program (tests/Fuzz) and into Broker.Protocol.Tests, which replays the
/// committed corpus through it on every test run.
/// </remarks>
internal static class CodecFuzzTarget
{
    // Frames looked at per input: a fuzz input is small, but a run of 2-byte PINGREQs must not make one
    // execution slow.
    private const int MaxFramesPerInput = 256;

    // A decode may allocate strings (2 bytes per UTF-8 byte), lists and a re-encoding; anything beyond
    // this per input byte means the codec sized something from a length field it had not checked.
    private const int AllowedBytesPerInputByte = 256;
    private const int AllowedFixedBytes = 256 * 1024;

    private const int NoLimit = VariableByteInteger.MaxValue + 5;

    public static void Run(ReadOnlySpan<byte> data)
    {
        byte[] input = data.ToArray();
        long before = GC.GetAllocatedBytesForCurrentThread();
        foreach (var version in (ReadOnlySpan<MqttProtocolVersion>)[MqttProtocolVersion.V311, MqttProtocolVersion.V500])
        {
            ReadAll(input, version);
        }

        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Check(allocated <= AllowedFixedBytes + (long)AllowedBytesPerInputByte * input.Length,
            $"allocated {allocated} bytes for {input.Length} bytes of input");
    }

    private static void ReadAll(byte[] input, MqttProtocolVersion version)
    {
        var whole = new ReadOnlySequence<byte>(input);
        var split = Split(input, input.Length * 7 / 13);
        int offset = 0;
        for (int frames = 0; frames < MaxFramesPerInput && offset < input.Length; frames++)
        {
            var status = MqttFrameReader.TryReadFrame(whole.Slice(offset), NoLimit, out var frame, out var frameError);
            var splitStatus = MqttFrameReader.TryReadFrame(split.Slice(offset), NoLimit, out var splitFrame, out var splitError);
            Check(status == splitStatus && frameError == splitError, $"frame at {offset}: {status} {frameError} whole, {splitStatus} {splitError} split");
            if (status != ReadStatus.Complete)
            {
                Check(status == ReadStatus.NeedMoreData || frameError.Message is not null, "an Error without a message");
                return;
            }

            Check(frame.TotalLength == splitFrame.TotalLength && frame.Type == splitFrame.Type, "whole and split frames differ");
            Check(frame.Body.Length == frame.RemainingLength, "body length is not the remaining length");
            Check(offset + frame.TotalLength <= input.Length, "frame runs past the input");

            bool decoded = DecodeFrame(frame, version, out var packet);
            bool splitDecoded = DecodeFrame(splitFrame, version, out var splitPacket);
            Check(decoded == splitDecoded, $"frame at {offset}: decoded {decoded} whole, {splitDecoded} split");
            if (decoded)
            {
                var effective = packet is ConnectPacket connect ? connect.ProtocolVersion : version;
                var rewritten = Write(packet, effective);
                Check(rewritten.AsSpan().SequenceEqual(Write(splitPacket, effective)), "whole and split decodes write differently");
                var reread = Read(rewritten, effective);
                Check(rewritten.AsSpan().SequenceEqual(Write(reread, effective)), $"{packet.Type} does not survive write, read, write");
            }

            offset += frame.TotalLength;
        }
    }

    // The generic decoder, and the specific one the broker uses for this type: both must agree.
    private static bool DecodeFrame(in MqttFrame frame, MqttProtocolVersion version, out MqttPacket packet)
    {
        bool decoded = MqttPacketDecoder.TryDecode(frame, version, out packet, out var error);
        Check(decoded || error.Message is not null, "a failed decode without a message");
        Check(decoded || error.Code != ReasonCode.Success, "a failed decode with reason code Success");
        switch (frame.Type)
        {
            case PacketType.Publish:
                bool viewDecoded = MqttPacketDecoder.TryDecodePublish(frame, version, out var view, out var viewError);
                Check(viewDecoded == decoded && viewError == error, $"TryDecodePublish says {viewDecoded} {viewError}, TryDecode {decoded} {error}");
                if (viewDecoded)
                {
                    Check(view.Topic.Length + view.Payload.Length <= frame.RemainingLength, "PUBLISH view slices past the body");
                }

                break;
            case PacketType.Connect:
                bool connectDecoded = MqttPacketDecoder.TryDecodeConnect(frame, out _, out _, out var connectError);
                Check(connectDecoded == decoded && connectError == error, $"TryDecodeConnect says {connectDecoded} {connectError}, TryDecode {decoded} {error}");
                break;
            case PacketType.PubAck or PacketType.PubRec or PacketType.PubRel or PacketType.PubComp:
                if (MqttPacketDecoder.TryDecodePublishResponse(frame, version, out ushort packetId, out _, out _) && decoded)
                {
                    Check(packetId == ((PublishResponsePacket)packet).PacketId, "publish response fast path reads another packet id");
                }

                break;
        }

        return decoded;
    }

    private static byte[] Write(MqttPacket packet, MqttProtocolVersion version)
    {
        var output = new ArrayBufferWriter<byte>();
        int written = MqttPacketWriter.Write(output, packet, version);
        Check(written == output.WrittenCount, "Write returned another length than it wrote");
        Check(written == MqttPacketWriter.GetSize(packet, version), $"GetSize disagrees with Write for {packet.Type}");
        return output.WrittenSpan.ToArray();
    }

    private static MqttPacket Read(byte[] bytes, MqttProtocolVersion version)
    {
        var buffer = new ReadOnlySequence<byte>(bytes);
        var status = MqttPacketReader.TryRead(buffer, version, NoLimit, out var packet, out var consumed, out var error);
        Check(status == ReadStatus.Complete, $"a written packet reads back as {status} {error}");
        Check(buffer.Slice(0, consumed).Length == bytes.Length, "a written packet reads back shorter");
        return packet;
    }

    private static ReadOnlySequence<byte> Split(byte[] input, int at)
    {
        var first = new Segment(input.AsMemory(0, at), 0);
        var second = first.Append(input.AsMemory(at));
        return new ReadOnlySequence<byte>(first, 0, second, second.Memory.Length);
    }

    private static void Check(bool condition, string message)
    {
        if (!condition)
        {
            throw new FuzzFindingException(message);
        }
    }

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(ReadOnlyMemory<byte> memory, long runningIndex)
        {
            Memory = memory;
            RunningIndex = runningIndex;
        }

        public Segment Append(ReadOnlyMemory<byte> memory)
        {
            var next = new Segment(memory, RunningIndex + Memory.Length);
            Next = next;
            return next;
        }
    }
}

/// <summary>An input broke an expectation of the codec's contract (not an exception of the codec itself).</summary>
internal sealed class FuzzFindingException(string message) : Exception(message);
