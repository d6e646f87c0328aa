namespace Broker.Persistence;

/// <summary>
/// The broker's durable state: sessions, subscriptions, messages queued and in flight, inbound QoS 2 packet ids,
/// retained messages and pending wills. Implemented by the embedded SQLite store; a server-backed store can
/// implement it too.
/// </summary>
/// <remarks>
/// Contract, which every implementation keeps:
/// <list type="bullet">
/// <item><see cref="Open"/> once, before anything else; it loads everything and starts the writer.</item>
/// <item><see cref="Append(in StoreOperation)"/> never blocks on the disk: it adds the operation to the batch being
/// filled and returns. Operations are applied in the order they were appended.</item>
/// <item>A completion reports <see cref="StoreOutcome.Durable"/> only when its operation, and every operation
/// appended before it, is on disk and survives a crash of the process or of the machine. Completions are called in
/// append order, on the store's writer thread: they must be short and must not block (queue a packet, set a
/// flag), and must not append with a completion and then wait for it. Once the store is stopping, an append's
/// completion is called at once, on the appending thread, with <see cref="StoreOutcome.Failed"/>.</item>
/// <item>Operations that depend on each other must be appended in the order their effects happened in memory:
/// append while holding the lock under which the memory state changed (the session's lock for its queue), so that
/// an Enqueue is never appended after the RemoveOutbound of the same message.</item>
/// <item>A completion reports <see cref="StoreOutcome.Failed"/> when its operations are not durable and will not be
/// reported otherwise: a commit failed (disk full, I/O error; the completions of that batch and of everything
/// appended until a commit succeeds again), or the store stopped with operations it could not write. After a failed
/// commit the store keeps retrying the same operations in order, so what is in memory reaches the disk once it
/// recovers; only the callers have been told not to count on it.</item>
/// </list>
/// </remarks>
internal interface IBrokerStateStore : IDisposable
{
    /// <summary>
    /// Opens the store, drops what expired while the broker was down, loads everything and starts the writer.
    /// Throws <see cref="StoreUnreadableException"/> when the store exists but cannot be used: the broker must not
    /// start then, because starting empty would silently discard every persisted session and message.
    /// </summary>
    RestoredState Open();

    /// <summary>An identifier for a new <see cref="PersistedMessage"/>, above every identifier in the store.</summary>
    long NewMessageId();

    /// <summary>Adds an operation to the current batch; nobody is told when it is durable.</summary>
    void Append(in StoreOperation operation);

    /// <summary>
    /// Adds an operation to the current batch; <paramref name="completion"/> is called with
    /// <paramref name="token"/> once it (and everything appended before it) is durable.
    /// </summary>
    void Append(in StoreOperation operation, IStoreCompletion completion, long token);

    /// <summary>Operations appended and not yet committed (including the batch being committed).</summary>
    int PendingOperations { get; }

    /// <summary>
    /// More than <see cref="PersistenceOptions.MaxPendingOperations"/> are pending: the disk does not keep up (or
    /// fails). Callers should stop taking new work, e.g. stop reading from publishers, until
    /// <see cref="WhenCaughtUp"/> completes. Appends still succeed: what was taken must be finished.
    /// </summary>
    bool IsBehind { get; }

    /// <summary>Completes when the store is no longer behind (at once when it is not).</summary>
    Task WhenCaughtUp();

    /// <summary>Whether the last commit succeeded; for health checks and the log.</summary>
    StoreHealth Health { get; }

    /// <summary>Counts and bytes of what the store holds, read from the store itself (not for hot paths).</summary>
    StoreMeasurement Measure();
}

/// <summary>Told when appended operations are durable; one implementation per caller (a connection), no closure per message.</summary>
internal interface IStoreCompletion
{
    /// <summary>Called on the store's writer thread; keep it short and non-blocking.</summary>
    void OnStoreCompleted(long token, StoreOutcome outcome);
}

internal enum StoreOutcome : byte
{
    /// <summary>On disk: it survives a crash. Now the broker may acknowledge (PUBACK, PUBREC, PUBCOMP...).</summary>
    Durable,

    /// <summary>
    /// Not durable: a commit failed (it is retried and may still succeed later) or the store stopped before it could
    /// write the operation. It must not be acknowledged as durable.
    /// </summary>
    Failed,
}

internal enum StoreHealth : byte
{
    /// <summary>Not opened yet.</summary>
    Closed,
    Healthy,

    /// <summary>The last commit failed (disk full, I/O error); the batch is retried and completions wait.</summary>
    Retrying,

    /// <summary>Disposed.</summary>
    Stopped,
}

/// <summary>What the store holds, for limits and the operator.</summary>
internal readonly record struct StoreMeasurement(
    long Sessions,
    long Subscriptions,
    long QueuedMessages,
    long InflightMessages,
    long InboundQoS2,
    long Messages,
    long MessageBytes,
    long RetainedMessages,
    long RetainedBytes,
    long Wills,
    long FileBytes);
