using Broker.Protocol;

namespace Broker.Persistence;

/// <summary>
/// An application message as the store keeps it: written once and shared by every session queue that holds it,
/// so a fan-out to N offline sessions stores the payload once. Times are wall-clock (the memory side keeps
/// monotonic timestamps, which mean nothing after a restart).
/// </summary>
internal sealed class PersistedMessage
{
    /// <summary>From <see cref="IBrokerStateStore.NewMessageId"/>; ignored for retained messages and wills, which are keyed by topic and client.</summary>
    public required long Id { get; init; }
    public required string Topic { get; init; }
    public required ReadOnlyMemory<byte> Payload { get; init; }
    public required QualityOfService QoS { get; init; }
    public bool Retain { get; init; }

    /// <summary>5.0 properties passed to subscribers, encoded by <see cref="PersistedProperties.Encode"/>; null when none.</summary>
    public byte[]? Properties { get; init; }

    /// <summary>Message Expiry Interval in seconds as received, or null when the message does not expire.</summary>
    public uint? ExpiryIntervalSeconds { get; init; }

    /// <summary>When the broker received it: the start of the expiry countdown.</summary>
    public required DateTimeOffset ReceivedAt { get; init; }

    /// <summary>Whole seconds left at <paramref name="now"/>; null if it never expires; 0 or less means expired.</summary>
    public long? RemainingExpirySeconds(DateTimeOffset now)
    {
        if (ExpiryIntervalSeconds is not { } interval)
        {
            return null;
        }
        // A clock set back while the broker was down does not make a message older than zero.
        long elapsed = Math.Max(0, (long)(now - ReceivedAt).TotalSeconds);
        return interval - elapsed;
    }

    public bool IsExpired(DateTimeOffset now) => RemainingExpirySeconds(now) is <= 0;
}

/// <summary>One subscription of a persistent session (3.8.3.1 options as separate fields).</summary>
internal sealed record PersistedSubscription(
    string Filter,
    QualityOfService QoS,
    bool NoLocal,
    bool RetainAsPublished,
    RetainHandling RetainHandling,
    int? SubscriptionIdentifier);

/// <summary>
/// One message for one session: queued (no packet id yet) or in flight (sent with <see cref="PacketId"/>;
/// <see cref="Released"/> once a QoS 2 PUBREC arrived, so only PUBREL is resent).
/// </summary>
internal sealed record PersistedOutbound(
    long Sequence,
    PersistedMessage Message,
    QualityOfService QoS,
    bool Retain,
    int[]? SubscriptionIdentifiers,
    ushort? PacketId,
    bool Released);

/// <summary>A persistent session as restored.</summary>
internal sealed class PersistedSession
{
    public required string ClientId { get; init; }

    /// <summary>Seconds the session survives its connection; uint.MaxValue = never expires.</summary>
    public required uint ExpiryIntervalSeconds { get; init; }

    /// <summary>
    /// When its connection ended. For a session whose client was connected when the broker stopped without
    /// recording the disconnect (a crash), the time of the restore: its expiry counts from the restart.
    /// </summary>
    public required DateTimeOffset DisconnectedAt { get; init; }

    /// <summary>True when the store had no disconnect time: the client was connected when the broker died.</summary>
    public bool WasConnected { get; init; }

    /// <summary>User name of the client that owned the session (null: anonymous): takeover and ACL after a restart.</summary>
    public string? OwnerUserName { get; init; }

    /// <summary>Restored from a store that did not record owners: whoever resumes the session first owns it.</summary>
    public bool OwnerUnknown { get; init; }

    /// <summary>
    /// The owner written for a session whose owner is not known (restored from a version 1 store and not resumed
    /// since). A user name cannot hold U+0000 [MQTT-1.5.4-2], so this never matches a real one.
    /// </summary>
    public const string UnknownOwner = "\0unknown";

    public List<PersistedSubscription> Subscriptions { get; } = [];

    /// <summary>Messages sent and not completed, in the order they were sent (resent first [MQTT-4.4.0-1]).</summary>
    public List<PersistedOutbound> Inflight { get; } = [];

    /// <summary>Messages not sent yet, in queue order.</summary>
    public List<PersistedOutbound> Queued { get; } = [];

    /// <summary>QoS 2 packet ids received from the client and not yet released by PUBREL [MQTT-4.3.3-10].</summary>
    public List<ushort> InboundQoS2 { get; } = [];

    /// <summary>Highest queue sequence restored (0 when none): the session's next sequence must be above it.</summary>
    public long LastSequence { get; internal set; }
}

/// <summary>A will waiting for its delay (or the end of its session) to pass; due at <see cref="DueAt"/>, possibly already past.</summary>
internal sealed record PersistedWill(string ClientId, PersistedMessage Message, DateTimeOffset DueAt);

/// <summary>Everything loaded at start-up, and what was dropped on the way.</summary>
internal sealed class RestoredState
{
    public required IReadOnlyList<PersistedSession> Sessions { get; init; }
    public required IReadOnlyList<PersistedMessage> Retained { get; init; }
    public required IReadOnlyList<PersistedWill> Wills { get; init; }
    public required RestoreReport Report { get; init; }
}

/// <summary>Counts of a restore, for the start-up log line and tests.</summary>
internal sealed record RestoreReport
{
    public required string DatabasePath { get; init; }

    /// <summary>No store existed: a new, empty one was created.</summary>
    public bool Created { get; init; }
    public int Sessions { get; init; }
    public int Subscriptions { get; init; }
    public int QueuedMessages { get; init; }
    public int InflightMessages { get; init; }
    public int InboundQoS2 { get; init; }

    /// <summary>Distinct messages referenced by the queues, and their payload bytes.</summary>
    public int Messages { get; init; }
    public long MessageBytes { get; init; }
    public int RetainedMessages { get; init; }
    public long RetainedBytes { get; init; }
    public int Wills { get; init; }

    /// <summary>Sessions whose expiry interval passed while the broker was down.</summary>
    public int ExpiredSessions { get; init; }

    /// <summary>Queued (not in-flight) messages whose Message Expiry Interval passed while the broker was down [MQTT-3.3.2-5].</summary>
    public int ExpiredQueuedMessages { get; init; }
    public int ExpiredRetainedMessages { get; init; }
    public TimeSpan Elapsed { get; init; }
}
