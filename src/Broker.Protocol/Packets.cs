namespace Broker.Protocol;

/// <summary>A decoded (or to-be-encoded) control packet. PUBLISH on the hot path uses <see cref="PublishPacketView"/> instead.</summary>
public abstract class MqttPacket
{
    public abstract PacketType Type { get; }
}

public sealed class ConnectPacket : MqttPacket
{
    public override PacketType Type => PacketType.Connect;
    public string ProtocolName { get; set; } = "MQTT";
    public MqttProtocolVersion ProtocolVersion { get; set; } = MqttProtocolVersion.V500;
    /// <summary>Clean Session in 3.1.1, Clean Start in 5.0.</summary>
    public bool CleanStart { get; set; }
    /// <summary>Keep Alive in seconds, an unsigned 16-bit value (3.1.2.10): 0 to 65535.</summary>
    public ushort KeepAliveSeconds { get; set; }
    public string ClientId { get; set; } = string.Empty;
    public WillMessage? Will { get; set; }
    public string? UserName { get; set; }
    public byte[]? Password { get; set; }
    public MqttProperties? Properties { get; set; }
}

public sealed class WillMessage
{
    public string Topic { get; set; } = string.Empty;
    public byte[] Payload { get; set; } = [];
    public QualityOfService QoS { get; set; }
    public bool Retain { get; set; }
    public MqttProperties? Properties { get; set; }
}

public sealed class ConnAckPacket : MqttPacket
{
    public override PacketType Type => PacketType.ConnAck;
    public bool SessionPresent { get; set; }
    /// <summary>The 5.0 reason code, or the 3.1.1 return code (<see cref="ConnectReturnCode"/>) as a byte.</summary>
    public byte ReasonCode { get; set; }
    public MqttProperties? Properties { get; set; }
}

/// <summary>A PUBLISH that owns its topic and payload (for writing, and for tests).</summary>
public sealed class PublishPacket : MqttPacket
{
    public override PacketType Type => PacketType.Publish;
    public string Topic { get; set; } = string.Empty;
    public ReadOnlyMemory<byte> Payload { get; set; }
    public QualityOfService QoS { get; set; }
    public bool Retain { get; set; }
    public bool Dup { get; set; }
    public ushort PacketId { get; set; }
    public MqttProperties? Properties { get; set; }
}

/// <summary>PUBACK, PUBREC, PUBREL and PUBCOMP share one layout (3.4 to 3.7).</summary>
public abstract class PublishResponsePacket : MqttPacket
{
    public ushort PacketId { get; set; }
    public ReasonCode ReasonCode { get; set; }
    public MqttProperties? Properties { get; set; }
}

public sealed class PubAckPacket : PublishResponsePacket
{
    public override PacketType Type => PacketType.PubAck;
}

public sealed class PubRecPacket : PublishResponsePacket
{
    public override PacketType Type => PacketType.PubRec;
}

public sealed class PubRelPacket : PublishResponsePacket
{
    public override PacketType Type => PacketType.PubRel;
}

public sealed class PubCompPacket : PublishResponsePacket
{
    public override PacketType Type => PacketType.PubComp;
}

public sealed record TopicSubscription(
    string TopicFilter,
    QualityOfService QoS,
    bool NoLocal = false,
    bool RetainAsPublished = false,
    RetainHandling RetainHandling = RetainHandling.SendAtSubscribe);

public sealed class SubscribePacket : MqttPacket
{
    public override PacketType Type => PacketType.Subscribe;
    public ushort PacketId { get; set; }
    public List<TopicSubscription> Subscriptions { get; set; } = [];
    public MqttProperties? Properties { get; set; }
}

public sealed class SubAckPacket : MqttPacket
{
    public override PacketType Type => PacketType.SubAck;
    public ushort PacketId { get; set; }
    /// <summary>One per requested filter: granted QoS, or 0x80 (3.1.1) / a 5.0 failure reason code.</summary>
    public byte[] ReasonCodes { get; set; } = [];
    public MqttProperties? Properties { get; set; }
}

public sealed class UnsubscribePacket : MqttPacket
{
    public override PacketType Type => PacketType.Unsubscribe;
    public ushort PacketId { get; set; }
    public List<string> TopicFilters { get; set; } = [];
    public MqttProperties? Properties { get; set; }
}

public sealed class UnsubAckPacket : MqttPacket
{
    public override PacketType Type => PacketType.UnsubAck;
    public ushort PacketId { get; set; }
    /// <summary>5.0 only: one per filter. Empty in 3.1.1, whose UNSUBACK has no payload.</summary>
    public byte[] ReasonCodes { get; set; } = [];
    public MqttProperties? Properties { get; set; }
}

public sealed class PingReqPacket : MqttPacket
{
    public static readonly PingReqPacket Instance = new();
    public override PacketType Type => PacketType.PingReq;
}

public sealed class PingRespPacket : MqttPacket
{
    public static readonly PingRespPacket Instance = new();
    public override PacketType Type => PacketType.PingResp;
}

public sealed class DisconnectPacket : MqttPacket
{
    public override PacketType Type => PacketType.Disconnect;
    public ReasonCode ReasonCode { get; set; }
    public MqttProperties? Properties { get; set; }
}

public sealed class AuthPacket : MqttPacket
{
    public override PacketType Type => PacketType.Auth;
    public ReasonCode ReasonCode { get; set; }
    public MqttProperties? Properties { get; set; }
}
