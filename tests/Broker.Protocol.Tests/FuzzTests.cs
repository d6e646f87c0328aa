using System.Buffers;

namespace Broker.Protocol.Tests;

/// <summary>
/// Seeded random inputs (random bytes, and mutations of every sample packet) through framing and decoding
/// in both versions. The codec must answer every input with a status, never an exception; a Complete frame
/// must cover exactly header + remaining length and stay inside the buffer; the answer must not depend on
/// how the input is segmented; and whatever decodes must re-encode to bytes that decode to the same packet.
/// </summary>
public sealed class FuzzTests
{
    private const int Iterations = 100_000;
    private const int Seed = 0x4D515454; // "MQTT"

    [Fact]
    public void Random_and_mutated_inputs_never_throw_and_frames_stay_in_bounds()
    {
        var random = new Random(Seed);
        var corpus = SamplePackets.Encoded().Select(e => e.Bytes).ToArray();
        var outcomes = new int[3];

        for (int i = 0; i < Iterations; i++)
        {
            byte[] input = (i % 4) switch
            {
                0 => RandomBytes(random),
                _ => Mutate(random, corpus[random.Next(corpus.Length)]),
            };
            var version = random.Next(2) == 0 ? MqttProtocolVersion.V311 : MqttProtocolVersion.V500;
            int max = random.Next(4) == 0 ? random.Next(2, 400) : Codec.NoLimit;
            try
            {
                outcomes[(int)Check(random, input, version, max)]++;
            }
            catch (Exception e) when (e is not Xunit.Sdk.XunitException)
            {
                Assert.Fail($"iteration {i}, {version}, max {max}, input {Convert.ToHexString(input)}: {e}");
            }
        }

        // The mutations must reach the decoders, not only the framing: each outcome is common.
        Assert.All(outcomes, count => Assert.True(count > Iterations / 20, $"outcomes {string.Join(", ", outcomes)}"));
    }

    private static ReadStatus Check(Random random, byte[] input, MqttProtocolVersion version, int max)
    {
        var whole = TestBuffers.Single(input);
        var status = MqttFrameReader.TryReadFrame(whole, max, out var frame, out var frameError);
        var readerStatus = MqttPacketReader.TryRead(whole, version, max, out var packet, out var consumed, out var readerError);

        var split = input.Length > 0 && random.Next(2) == 0 ? TestBuffers.SplitAt(input, random.Next(input.Length + 1))
            : input.Length <= 64 ? TestBuffers.OneBytePerSegment(input) : TestBuffers.SplitAt(input, input.Length / 3);
        var splitStatus = MqttPacketReader.TryRead(split, version, max, out var splitPacket, out var splitConsumed, out var splitError);
        Assert.Equal(readerStatus, splitStatus);
        Assert.Equal(readerError, splitError);
        Assert.Equal(whole.Slice(0, consumed).Length, split.Slice(0, splitConsumed).Length);

        switch (status)
        {
            case ReadStatus.NeedMoreData:
                Assert.Equal(ReadStatus.NeedMoreData, readerStatus);
                Assert.Equal(whole.Start, consumed);
                return ReadStatus.NeedMoreData;
            case ReadStatus.Error:
                Assert.Equal(ReadStatus.Error, readerStatus);
                Assert.Equal(frameError, readerError);
                Assert.Equal(whole.Start, consumed);
                Assert.NotNull(frameError.Message);
                return ReadStatus.Error;
        }

        // A Complete frame: exactly header + remaining length, inside the buffer and the limit.
        long frameLength = whole.Slice(0, frame.End).Length;
        Assert.Equal(frame.HeaderLength + frame.RemainingLength, frameLength);
        Assert.Equal(frame.TotalLength, frameLength);
        Assert.True(frameLength <= input.Length);
        Assert.True(frameLength <= max);
        Assert.Equal(frame.RemainingLength, frame.Body.Length);

        bool decoded = MqttPacketDecoder.TryDecode(frame, version, out var direct, out var decodeError);
        Assert.Equal(decoded ? ReadStatus.Complete : ReadStatus.Error, readerStatus);
        if (frame.Type == PacketType.Publish)
        {
            Assert.Equal(decoded, MqttPacketDecoder.TryDecodePublish(frame, version, out var view, out var viewError));
            Assert.Equal(decodeError, viewError);
            if (decoded)
            {
                Assert.True(view.Payload.Length <= frame.RemainingLength);
            }
        }
        if (frame.Type == PacketType.Connect)
        {
            Assert.Equal(decoded, MqttPacketDecoder.TryDecodeConnect(frame, out _, out _, out var connectError));
            Assert.Equal(decodeError, connectError);
        }
        if (!decoded)
        {
            Assert.Equal(decodeError, readerError);
            Assert.Equal(whole.Start, consumed);
            return ReadStatus.Error;
        }

        Assert.Equal(frame.End, consumed);
        PacketAssert.Equal(direct, packet);
        PacketAssert.Equal(packet, splitPacket);

        // What decodes must survive a write and a read (CONNECT carries its own version).
        var effective = packet is ConnectPacket c ? c.ProtocolVersion : version;
        var rewritten = Codec.Encode(packet, effective);
        var reread = Codec.Decode(rewritten, effective);
        PacketAssert.Equal(packet, reread);
        Assert.Equal(rewritten, Codec.Encode(reread, effective));
        return ReadStatus.Complete;
    }

    private static byte[] RandomBytes(Random random)
    {
        var bytes = new byte[random.Next(0, 48)];
        random.NextBytes(bytes);
        if (bytes.Length > 1 && random.Next(2) == 0)
        {
            // Give random bytes a plausible header half of the time, so that they reach the decoders.
            bytes[0] = (byte)(random.Next(1, 16) << 4 | (random.Next(3) == 0 ? random.Next(16) : DefaultFlags(random)));
            bytes[1] = (byte)(bytes.Length - 2 < 128 ? bytes.Length - 2 : random.Next(128));
        }
        return bytes;
    }

    private static int DefaultFlags(Random random) => random.Next(3) switch
    {
        0 => 0,
        1 => 2,
        _ => random.Next(16),
    };

    private static byte[] Mutate(Random random, byte[] packet)
    {
        var bytes = packet.ToList();
        int edits = random.Next(1, 4);
        for (int e = 0; e < edits && bytes.Count > 0; e++)
        {
            int at = random.Next(bytes.Count);
            switch (random.Next(8))
            {
                case 0: bytes[at] ^= (byte)(1 << random.Next(8)); break;          // flip one bit
                case 1: bytes[at] = (byte)random.Next(256); break;                // replace a byte
                case 2: bytes.RemoveRange(at, bytes.Count - at); break;           // truncate
                case 3: bytes.Insert(at, (byte)random.Next(256)); break;          // insert a byte
                case 4: bytes.RemoveAt(at); break;                                // delete a byte
                case 5: bytes[at] = random.Next(2) == 0 ? (byte)0x00 : (byte)0xFF; break;
                case 6 when bytes.Count > 1: bytes[1] = (byte)random.Next(256); break; // change the length
                default:
                    var extra = new byte[random.Next(1, 8)];
                    random.NextBytes(extra);
                    bytes.AddRange(extra);                                        // append garbage
                    break;
            }
        }
        // Half the time, repair the Remaining Length so that the mutated body reaches the body decoders.
        if (random.Next(2) == 0 && bytes.Count > 0)
        {
            return WithRemainingLength(bytes[0], SkipHeader(bytes));
        }
        return [.. bytes];
    }

    private static List<byte> SkipHeader(List<byte> bytes)
    {
        int i = 1;
        while (i < bytes.Count && i < 5 && (bytes[i] & 0x80) != 0)
        {
            i++;
        }
        return bytes.Skip(Math.Min(i + 1, bytes.Count)).ToList();
    }

    private static byte[] WithRemainingLength(byte first, List<byte> body)
    {
        var length = new byte[4];
        int n = VariableByteInteger.Write(length, body.Count);
        return [first, .. length[..n], .. body];
    }
}
