using Broker.Protocol;
using Broker.Routing;

namespace Broker.Sessions;

/// <summary>
/// A message queued for one session: the shared message plus what this subscriber gets (QoS, retain flag, subscription
/// ids). <paramref name="Sequence"/> is its position in the persistent store's copy of the queue (0 when not stored:
/// QoS 0, or a session that is not persistent), assigned by the session.
/// </summary>
internal readonly record struct OutboundMessage(ApplicationMessage Message, QualityOfService QoS, bool Retain, int[]? SubscriptionIdentifiers,
    long Sequence = 0);

/// <summary>A QoS 1/2 message sent to the client and not yet completed.</summary>
internal sealed class InflightMessage
{
    // Settable: a session that becomes persistent gives its in-flight messages their store sequence.
    public required OutboundMessage Outbound { get; set; }
    public required ushort PacketId { get; init; }
    /// <summary>QoS 2: PUBREC received, PUBREL sent, waiting for PUBCOMP.</summary>
    public bool Released { get; set; }
}
