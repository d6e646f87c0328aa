using Broker.Persistence;
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

    // The persistent store's copy, made by the first persistent queue (or the retained store) that writes this message
    // and shared by the others: one message row however many sessions queue it.
    private PersistedMessage? _persisted;

    /// <summary>The store's copy, once a persistent queue or the retained store wrote this message; null otherwise.</summary>
    public PersistedMessage? Persisted => Volatile.Read(ref _persisted);

    /// <summary>The store's copy of this message, made on first use (its wall-clock receive time from the monotonic one).</summary>
    public PersistedMessage ToPersisted(IBrokerStateStore store, TimeProvider time)
    {
        if (Volatile.Read(ref _persisted) is { } existing)
        {
            return existing;
        }
        var created = new PersistedMessage
        {
            Id = store.NewMessageId(),
            Topic = Topic,
            Payload = Payload,
            QoS = QoS,
            Retain = Retain,
            Properties = PersistedProperties.Encode(Properties),
            ExpiryIntervalSeconds = ExpiryIntervalSeconds,
            ReceivedAt = time.GetUtcNow() - time.GetElapsedTime(ReceivedTimestamp),
        };
        // Two threads may race (a retained message replayed into two sessions at once): one copy wins, the other's id
        // is never used.
        return Interlocked.CompareExchange(ref _persisted, created, null) ?? created;
    }

    /// <summary>
    /// A message read back from the store at start-up: the same object for every queue that holds it, and its store
    /// copy kept (<paramref name="keepStoreCopy"/>) when it is a queued message whose row exists already. Retained
    /// messages and wills are keyed by topic or client and have no message row: they get one when first queued.
    /// </summary>
    public static ApplicationMessage FromPersisted(PersistedMessage stored, TimeProvider time, bool keepStoreCopy, string? publisherClientId = null)
    {
        var age = time.GetUtcNow() - stored.ReceivedAt;
        var message = new ApplicationMessage
        {
            Topic = stored.Topic,
            TopicUtf8 = System.Text.Encoding.UTF8.GetBytes(stored.Topic),
            Payload = stored.Payload,
            QoS = stored.QoS,
            Retain = stored.Retain,
            Properties = PersistedProperties.Decode(stored.Properties, PropertyContext.Publish),
            ExpiryIntervalSeconds = stored.ExpiryIntervalSeconds,
            PublisherClientId = publisherClientId,
            // A clock set back while the broker was down makes nothing younger than now.
            ReceivedTimestamp = time.GetTimestamp() - (long)(Math.Max(0, age.TotalSeconds) * time.TimestampFrequency),
        };
        if (keepStoreCopy)
        {
            message._persisted = stored;
        }
        return message;
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
