using Broker.Protocol;

namespace Broker.Routing;

/// <summary>
/// A message as the broker keeps it once someone wants it: topic and payload copied out of the
/// connection's input buffer exactly once, shared (immutable) by every subscriber's queue.
/// </summary>
internal sealed class ApplicationMessage
{
    public required string Topic { get; init; }
    public required byte[] TopicUtf8 { get; init; }
    public required ReadOnlyMemory<byte> Payload { get; init; }
    public required QualityOfService QoS { get; init; }
    public bool Retain { get; init; }
    /// <summary>Properties passed through to subscribers (5.0), without Topic Alias and Subscription Identifiers.</summary>
    public MqttProperties? Properties { get; init; }
    /// <summary>Client that published it (null for wills published after the session ended are still attributed).</summary>
    public string? PublisherClientId { get; init; }
    /// <summary>Message Expiry Interval in seconds as received, or null when the message does not expire.</summary>
    public uint? ExpiryIntervalSeconds { get; init; }
    /// <summary>TimeProvider timestamp when the broker received it; the base for the expiry countdown.</summary>
    public long ReceivedTimestamp { get; init; }

    // What the message costs a session queue: topic, payload and properties as received, plus the broker's own
    // per-message objects (this message is shared by every queue, but each queue counts it: the limit is per session).
    private const int PerMessageOverhead = 64;
    private int _queuedSize;

    /// <summary>Bytes a queue counts for this message (computed once).</summary>
    public int QueuedSize
    {
        get
        {
            int size = _queuedSize;
            if (size == 0)
            {
                size = PerMessageOverhead + TopicUtf8.Length + Payload.Length + MqttPropertiesCodec.GetContentLength(Properties);
                _queuedSize = size;
            }
            return size;
        }
    }

    /// <summary>Seconds left before expiry at <paramref name="now"/>; null if it never expires; 0 or less means expired.</summary>
    public long? RemainingExpirySeconds(long now, long timestampFrequency)
    {
        if (ExpiryIntervalSeconds is not { } interval)
        {
            return null;
        }
        long elapsed = (now - ReceivedTimestamp) / timestampFrequency;
        return interval - elapsed;
    }
}
