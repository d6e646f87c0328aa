using System.Buffers;
using System.Text;

namespace Broker.Protocol;

/// <summary>
/// A PUBLISH decoded without copying: topic and payload are slices of the input and stay valid only
/// until the caller advances its reader. The broker copies the payload once, and only if someone subscribed.
/// </summary>
public readonly struct PublishPacketView
{
    public PublishPacketView(QualityOfService qos, bool retain, bool dup, ushort packetId,
        ReadOnlySequence<byte> topic, ReadOnlySequence<byte> payload, MqttProperties? properties)
    {
        QoS = qos;
        Retain = retain;
        Dup = dup;
        PacketId = packetId;
        Topic = topic;
        Payload = payload;
        Properties = properties;
    }

    public QualityOfService QoS { get; }
    public bool Retain { get; }
    public bool Dup { get; }
    /// <summary>0 for QoS 0.</summary>
    public ushort PacketId { get; }
    /// <summary>The UTF-8 topic name, validated; empty when a 5.0 Topic Alias stands for it.</summary>
    public ReadOnlySequence<byte> Topic { get; }
    public ReadOnlySequence<byte> Payload { get; }
    /// <summary>Null when the packet carries no properties (always in 3.1.1).</summary>
    public MqttProperties? Properties { get; }

    public PublishPacket ToPacket() => new()
    {
        Topic = Topic.IsEmpty ? string.Empty : Utf8Rules.Strict.GetString(Topic),
        Payload = Payload.ToArray(),
        QoS = QoS,
        Retain = Retain,
        Dup = Dup,
        PacketId = PacketId,
        Properties = Properties,
    };
}
