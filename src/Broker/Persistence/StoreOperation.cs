using System.Runtime.InteropServices;
using Broker.Protocol;

namespace Broker.Persistence;

internal enum StoreOperationKind : byte
{
    None,
    /// <summary>Creates or updates a persistent session: expiry interval and disconnect time (null while connected).</summary>
    UpsertSession,
    /// <summary>Removes a session with its subscriptions, queue, in-flight messages and inbound QoS 2 ids (not its will).</summary>
    DeleteSession,
    UpsertSubscription,
    DeleteSubscription,
    /// <summary>Adds a message to a session's queue; the message itself is stored once however many queues hold it.</summary>
    Enqueue,
    /// <summary>The queued message was sent with a packet id: it is now in flight.</summary>
    MarkInflight,
    /// <summary>QoS 2: PUBREC received; from now on only PUBREL is resent.</summary>
    MarkReleased,
    /// <summary>The message is done (PUBACK, PUBCOMP, failed PUBREC) or dropped from the queue (expired).</summary>
    RemoveOutbound,
    AddInboundQoS2,
    RemoveInboundQoS2,
    SetRetained,
    ClearRetained,
    SaveWill,
    DeleteWill,
    /// <summary>Writes nothing: commits the current batch without waiting for the flush interval.</summary>
    Flush,
    /// <summary>Writes nothing and forces nothing: its completion says that everything appended before it is durable.</summary>
    Barrier,
}

/// <summary>
/// One change to the durable state, appended to a pooled batch by value: building one allocates nothing (the
/// message, strings and arrays are the caller's and are only referenced). Build with the static methods.
/// </summary>
[StructLayout(LayoutKind.Auto)]
internal readonly struct StoreOperation
{
    public StoreOperationKind Kind { get; private init; }
    public string? ClientId { get; private init; }

    /// <summary>Topic filter of a subscription, or topic of a retained message to clear.</summary>
    public string? Topic { get; private init; }

    /// <summary>
    /// The owner of an upserted session. It shares the Topic field (a session has no topic), so that the owner does not
    /// make every queued operation larger.
    /// </summary>
    public string? OwnerUserName => Kind == StoreOperationKind.UpsertSession ? Topic : null;
    public PersistedMessage? Message { get; private init; }

    /// <summary>Position of a message in its session's queue, assigned by the session (increasing, unique per session).</summary>
    public long Sequence { get; private init; }

    /// <summary>Wall time in Unix milliseconds: disconnect time of a session (null while connected), due time of a will.</summary>
    public long? WallTimeMs { get; private init; }
    public uint SessionExpirySeconds { get; private init; }
    public int? SubscriptionIdentifier { get; private init; }
    public int[]? SubscriptionIdentifiers { get; private init; }
    public ushort PacketId { get; private init; }
    public QualityOfService QoS { get; private init; }
    public bool Retain { get; private init; }

    /// <summary>3.8.3.1 subscription options: QoS bits 0-1, No Local bit 2, Retain As Published bit 3, Retain Handling bits 4-5.</summary>
    public byte SubscriptionOptions { get; private init; }

    /// <summary>A persistent session appeared (CONNECT) or changed: <paramref name="disconnectedAt"/> null while its client is connected.</summary>
    public static StoreOperation UpsertSession(string clientId, uint expiryIntervalSeconds, DateTimeOffset? disconnectedAt, string? ownerUserName = null) => new()
    {
        Kind = StoreOperationKind.UpsertSession,
        ClientId = clientId,
        Topic = ownerUserName,
        SessionExpirySeconds = expiryIntervalSeconds,
        WallTimeMs = disconnectedAt?.ToUnixTimeMilliseconds(),
    };

    public static StoreOperation DeleteSession(string clientId) => new() { Kind = StoreOperationKind.DeleteSession, ClientId = clientId };

    public static StoreOperation UpsertSubscription(string clientId, string filter, QualityOfService qos, bool noLocal, bool retainAsPublished,
        RetainHandling retainHandling, int? subscriptionIdentifier) => new()
    {
        Kind = StoreOperationKind.UpsertSubscription,
        ClientId = clientId,
        Topic = filter,
        SubscriptionOptions = EncodeOptions(qos, noLocal, retainAsPublished, retainHandling),
        SubscriptionIdentifier = subscriptionIdentifier,
    };

    public static StoreOperation DeleteSubscription(string clientId, string filter) => new()
    {
        Kind = StoreOperationKind.DeleteSubscription,
        ClientId = clientId,
        Topic = filter,
    };

    /// <summary>
    /// Adds <paramref name="message"/> to the queue of <paramref name="clientId"/> at <paramref name="sequence"/>,
    /// delivered with <paramref name="qos"/> and <paramref name="retain"/>. The message row is written by the first
    /// Enqueue that names its id and shared by the others.
    /// </summary>
    public static StoreOperation Enqueue(string clientId, long sequence, PersistedMessage message, QualityOfService qos, bool retain,
        int[]? subscriptionIdentifiers) => new()
    {
        Kind = StoreOperationKind.Enqueue,
        ClientId = clientId,
        Sequence = sequence,
        Message = message,
        QoS = qos,
        Retain = retain,
        SubscriptionIdentifiers = subscriptionIdentifiers,
    };

    public static StoreOperation MarkInflight(string clientId, long sequence, ushort packetId) => new()
    {
        Kind = StoreOperationKind.MarkInflight,
        ClientId = clientId,
        Sequence = sequence,
        PacketId = packetId,
    };

    public static StoreOperation MarkReleased(string clientId, long sequence) => new()
    {
        Kind = StoreOperationKind.MarkReleased,
        ClientId = clientId,
        Sequence = sequence,
    };

    /// <summary>The message at <paramref name="sequence"/> left the session (completed or dropped); its message row goes when no queue holds it.</summary>
    public static StoreOperation RemoveOutbound(string clientId, long sequence) => new()
    {
        Kind = StoreOperationKind.RemoveOutbound,
        ClientId = clientId,
        Sequence = sequence,
    };

    public static StoreOperation AddInboundQoS2(string clientId, ushort packetId) => new()
    {
        Kind = StoreOperationKind.AddInboundQoS2,
        ClientId = clientId,
        PacketId = packetId,
    };

    public static StoreOperation RemoveInboundQoS2(string clientId, ushort packetId) => new()
    {
        Kind = StoreOperationKind.RemoveInboundQoS2,
        ClientId = clientId,
        PacketId = packetId,
    };

    /// <summary>Stores or replaces the retained message of <c>message.Topic</c> (its own copy, apart from queued messages).</summary>
    public static StoreOperation SetRetained(PersistedMessage message) => new() { Kind = StoreOperationKind.SetRetained, Message = message };

    public static StoreOperation ClearRetained(string topic) => new() { Kind = StoreOperationKind.ClearRetained, Topic = topic };

    /// <summary>A will whose delay is running: to be published at <paramref name="dueAt"/> unless deleted before.</summary>
    public static StoreOperation SaveWill(string clientId, PersistedMessage will, DateTimeOffset dueAt) => new()
    {
        Kind = StoreOperationKind.SaveWill,
        ClientId = clientId,
        Message = will,
        WallTimeMs = dueAt.ToUnixTimeMilliseconds(),
    };

    public static StoreOperation DeleteWill(string clientId) => new() { Kind = StoreOperationKind.DeleteWill, ClientId = clientId };

    /// <summary>Commits what is pending without waiting for the flush interval (shutdown, DISCONNECT, tests).</summary>
    public static StoreOperation Flush() => new() { Kind = StoreOperationKind.Flush };

    /// <summary>
    /// A point to attach a completion to after several operations (a publish fanned out to many sessions): it
    /// completes with the batch, after everything appended before it, without shortening the flush interval.
    /// </summary>
    public static StoreOperation Barrier() => new() { Kind = StoreOperationKind.Barrier };

    internal static byte EncodeOptions(QualityOfService qos, bool noLocal, bool retainAsPublished, RetainHandling retainHandling)
        => (byte)((byte)qos | (noLocal ? 0x04 : 0) | (retainAsPublished ? 0x08 : 0) | ((byte)retainHandling << 4));

    internal static PersistedSubscription DecodeSubscription(string filter, byte options, int? subscriptionIdentifier)
        => new(filter, (QualityOfService)(options & 0x03), (options & 0x04) != 0, (options & 0x08) != 0,
            (RetainHandling)((options >> 4) & 0x03), subscriptionIdentifier);
}
