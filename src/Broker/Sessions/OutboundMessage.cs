using Broker.Protocol;
using Broker.Routing;

namespace Broker.Sessions;

/// <summary>A message queued for one session: the shared message plus what this subscriber gets (QoS, retain flag, subscription ids).</summary>
internal readonly record struct OutboundMessage(ApplicationMessage Message, QualityOfService QoS, bool Retain, int[]? SubscriptionIdentifiers);

/// <summary>A QoS 1/2 message sent to the client and not yet completed.</summary>
internal sealed class InflightMessage
{
    public required OutboundMessage Outbound { get; init; }
    public required ushort PacketId { get; init; }
    /// <summary>QoS 2: PUBREC received, PUBREL sent, waiting for PUBCOMP.</summary>
    public bool Released { get; set; }
}
