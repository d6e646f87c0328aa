using System.Buffers;
using Broker.Protocol;

namespace Broker.Fuzz;

/// <summary>The seed corpus: the test suite's sample packets (one of every type, every 5.0 property), encoded.</summary>
internal static class Seeds
{
    public static int Write(string directory)
    {
        Directory.CreateDirectory(directory);
        var all = new List<byte>();
        int n = 0;
        foreach (var (version, packet, bytes) in Broker.Protocol.Tests.SamplePackets.Encoded())
        {
            string name = $"{(version == MqttProtocolVersion.V311 ? "v311" : "v500")}-{n++:D3}-{packet.Type}";
            File.WriteAllBytes(Path.Combine(directory, name), bytes);
            if (version == MqttProtocolVersion.V500)
            {
                all.AddRange(bytes);
            }
        }

        // A stream of several packets, so the fuzzer starts from inputs that exercise the frame loop.
        File.WriteAllBytes(Path.Combine(directory, "v500-stream"), [.. all.Take(2048)]);
        Console.WriteLine($"{n + 1} seeds written to {directory}");
        return 0;
    }
}
