using System.Buffers;

// SamplePackets.cs (linked from Broker.Protocol.Tests) encodes through the tests' Codec helper, which
// asserts with xunit; this is the same encoding without the test framework.
namespace Broker.Protocol.Tests;

internal static class Codec
{
    public static byte[] Encode(MqttPacket packet, MqttProtocolVersion version)
    {
        var output = new ArrayBufferWriter<byte>();
        MqttPacketWriter.Write(output, packet, version);
        return output.WrittenSpan.ToArray();
    }
}
