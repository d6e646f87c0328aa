using System.Buffers;
using BenchmarkDotNet.Attributes;
using Broker.Protocol;

namespace Broker.Benchmarks;

/// <summary>
/// The codec's hot paths: framing and decoding what a connection receives most (PINGREQ, QoS 0 PUBLISH),
/// the CONNECT decode, and writing a PUBLISH into a reused buffer as the forwarding path does.
/// </summary>
[MemoryDiagnoser]
public class ProtocolBenchmarks
{
    private const int MaxPacketSize = 1024 * 1024;

    private ReadOnlySequence<byte> _pingReq;
    private ReadOnlySequence<byte> _publishV311;
    private ReadOnlySequence<byte> _publishV500;
    private ReadOnlySequence<byte> _connectV500;
    private ReadOnlySequence<byte> _payload;
    private ArrayBufferWriter<byte> _output = null!;

    [GlobalSetup]
    public void Setup()
    {
        _pingReq = new ReadOnlySequence<byte>([0xC0, 0x00]);
        var payload = new byte[64];
        Random.Shared.NextBytes(payload);
        _payload = new ReadOnlySequence<byte>(payload);
        _publishV311 = Encode(new PublishPacket { Topic = "sensors/building-1/floor-2/temperature", Payload = payload }, MqttProtocolVersion.V311);
        _publishV500 = Encode(new PublishPacket { Topic = "sensors/building-1/floor-2/temperature", Payload = payload }, MqttProtocolVersion.V500);
        _connectV500 = Encode(new ConnectPacket
        {
            ProtocolVersion = MqttProtocolVersion.V500,
            CleanStart = true,
            KeepAliveSeconds = 60,
            ClientId = "benchmark-client-0001",
            UserName = "user",
            Password = "secret"u8.ToArray(),
            Properties = new MqttProperties
            {
                SessionExpiryInterval = 3600,
                ReceiveMaximum = 100,
                MaximumPacketSize = 65_536,
                TopicAliasMaximum = 10,
                UserProperties = [new("app", "bench")],
            },
        }, MqttProtocolVersion.V500);
        _output = new ArrayBufferWriter<byte>(4096);
    }

    private static ReadOnlySequence<byte> Encode(MqttPacket packet, MqttProtocolVersion version)
    {
        var output = new ArrayBufferWriter<byte>();
        MqttPacketWriter.Write(output, packet, version);
        return new ReadOnlySequence<byte>(output.WrittenMemory.ToArray());
    }

    [Benchmark]
    public bool ParsePingReq()
    {
        MqttFrameReader.TryReadFrame(_pingReq, MaxPacketSize, out var frame, out _);
        return MqttPacketDecoder.TryDecode(frame, MqttProtocolVersion.V500, out _, out _);
    }

    [Benchmark]
    public long ParsePublishQoS0V311()
    {
        MqttFrameReader.TryReadFrame(_publishV311, MaxPacketSize, out var frame, out _);
        MqttPacketDecoder.TryDecodePublish(frame, MqttProtocolVersion.V311, out var view, out _);
        return view.Payload.Length;
    }

    [Benchmark]
    public long ParsePublishQoS0V500()
    {
        MqttFrameReader.TryReadFrame(_publishV500, MaxPacketSize, out var frame, out _);
        MqttPacketDecoder.TryDecodePublish(frame, MqttProtocolVersion.V500, out var view, out _);
        return view.Payload.Length;
    }

    [Benchmark]
    public ConnectPacket ParseConnectV500WithProperties()
    {
        MqttFrameReader.TryReadFrame(_connectV500, MaxPacketSize, out var frame, out _);
        MqttPacketDecoder.TryDecodeConnect(frame, out var connect, out _, out _);
        return connect;
    }

    [Benchmark]
    public int WritePublishQoS0()
    {
        _output.ResetWrittenCount();
        return MqttPacketWriter.WritePublish(_output, MqttProtocolVersion.V500, "sensors/building-1/floor-2/temperature"u8,
            QualityOfService.AtMostOnce, retain: false, dup: false, packetId: 0, properties: null, _payload);
    }
}
