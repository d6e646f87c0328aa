using System.Buffers;
using System.Globalization;

namespace Broker.Protocol.Tests;

/// <summary>Builds input buffers the way a PipeReader may hand them over: whole, split, one byte per segment.</summary>
internal static class TestBuffers
{
    /// <summary>Parses "30 0A 00 03 'a'" style vectors: hex bytes; a quoted character stands for its ASCII byte.</summary>
    public static byte[] Hex(string text)
    {
        var bytes = new List<byte>();
        foreach (string token in text.Split([' ', '\n', '\r', '\t'], StringSplitOptions.RemoveEmptyEntries))
        {
            if (token.Length == 3 && token[0] == '\'' && token[2] == '\'')
            {
                bytes.Add((byte)token[1]);
            }
            else
            {
                bytes.Add(byte.Parse(token, NumberStyles.HexNumber, CultureInfo.InvariantCulture));
            }
        }
        return [.. bytes];
    }

    public static ReadOnlySequence<byte> Single(byte[] data) => new(data);

    /// <summary>The same bytes in segments of the given lengths (a zero length gives an empty segment).</summary>
    public static ReadOnlySequence<byte> Segmented(byte[] data, params int[] lengths)
    {
        TestSegment? first = null;
        TestSegment? last = null;
        int offset = 0;
        foreach (int length in lengths)
        {
            var memory = new ReadOnlyMemory<byte>(data, offset, length);
            offset += length;
            if (first is null)
            {
                first = last = new TestSegment(memory, 0);
            }
            else
            {
                last = last!.Append(memory);
            }
        }
        if (offset != data.Length)
        {
            throw new ArgumentException("segment lengths do not add up to the data length");
        }
        return new ReadOnlySequence<byte>(first!, 0, last!, last!.Memory.Length);
    }

    public static ReadOnlySequence<byte> SplitAt(byte[] data, int at) => Segmented(data, at, data.Length - at);

    public static ReadOnlySequence<byte> OneBytePerSegment(byte[] data)
    {
        if (data.Length == 0)
        {
            return ReadOnlySequence<byte>.Empty;
        }
        return Segmented(data, Enumerable.Repeat(1, data.Length).ToArray());
    }

    private sealed class TestSegment : ReadOnlySequenceSegment<byte>
    {
        public TestSegment(ReadOnlyMemory<byte> memory, long runningIndex)
        {
            Memory = memory;
            RunningIndex = runningIndex;
        }

        public TestSegment Append(ReadOnlyMemory<byte> memory)
        {
            var next = new TestSegment(memory, RunningIndex + Memory.Length);
            Next = next;
            return next;
        }
    }
}

/// <summary>Writing and reading packets through the public codec entry points.</summary>
internal static class Codec
{
    public const int NoLimit = VariableByteInteger.MaxValue + 5;

    public static byte[] Encode(MqttPacket packet, MqttProtocolVersion version)
    {
        var output = new ArrayBufferWriter<byte>();
        int written = MqttPacketWriter.Write(output, packet, version);
        Assert.Equal(output.WrittenCount, written);
        Assert.Equal(MqttPacketWriter.GetSize(packet, version), written);
        return output.WrittenSpan.ToArray();
    }

    public static MqttPacket Decode(byte[] data, MqttProtocolVersion version) => Decode(TestBuffers.Single(data), version);

    public static MqttPacket Decode(ReadOnlySequence<byte> buffer, MqttProtocolVersion version)
    {
        var status = MqttPacketReader.TryRead(buffer, version, NoLimit, out var packet, out var consumed, out var error);
        Assert.True(status == ReadStatus.Complete, $"expected Complete, got {status} {error}");
        Assert.Equal(buffer.End, consumed);
        return packet;
    }

    /// <summary>The error a whole, single-segment packet is rejected with.</summary>
    public static MqttDecodeError DecodeError(byte[] data, MqttProtocolVersion version, int maxPacketSize = NoLimit)
    {
        var buffer = TestBuffers.Single(data);
        var status = MqttPacketReader.TryRead(buffer, version, maxPacketSize, out _, out var consumed, out var error);
        Assert.True(status == ReadStatus.Error, $"expected Error, got {status}");
        Assert.Equal(buffer.Start, consumed);
        return error;
    }
}
