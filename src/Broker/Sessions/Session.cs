using Broker.Connections.KeepAlive;
using Broker.Persistence;
using Broker.Protocol;
using Broker.Routing;

namespace Broker.Sessions;

/// <summary>Who is notified when a session has something to send: the connection bound to it, if any.</summary>
internal interface IDeliveryTarget
{
    void NotifyPending();

    /// <summary>
    /// The client stopped reading: output has been waiting and its socket took nothing for a while. Publishers are
    /// not slowed for it (no head-of-line blocking): its QoS 0 messages are dropped and QoS 1/2 queue to the limits.
    /// </summary>
    bool IsStalled { get; }

    /// <summary>
    /// The broker does not read this client right now (it is itself held back): it cannot acknowledge what it is sent,
    /// so nobody is made to wait for its queue (a wait could close a cycle).
    /// </summary>
    bool IsHeldBack { get; }

    /// <summary>Messages meant for this client were dropped (counted by the caller; the client logs at most once per interval).</summary>
    void OnMessagesDropped(Diagnostics.DropReason reason, int count);
}

/// <summary>A publisher that waits, not reading its socket, until a session it fed has drained.</summary>
internal interface IBackPressureWaiter
{
    void ResumeFromBackPressure();
}

internal enum EnqueueResult
{
    Queued,
    /// <summary>Queued, and the queue is past its high watermark while its client reads: the publisher should wait.</summary>
    QueuedAboveHighWatermark,
    /// <summary>QoS 0 dropped: client offline or stalled, or its queue is full.</summary>
    DroppedQoS0,
    /// <summary>Queued after dropping the oldest queued messages: the queue was full (client stalled or offline).</summary>
    QueuedDroppingOldest,
    /// <summary>Not queued: a retained message replayed at SUBSCRIBE did not fit.</summary>
    DroppedRetainedReplay,
}

/// <summary>What a session's queue may hold, and where back-pressure starts and stops.</summary>
/// <param name="MaxMessages">Messages queued at most (not counting the in-flight window).</param>
/// <param name="MaxBytes">Bytes queued at most (topic, payload and properties of each message, plus a fixed overhead).</param>
/// <param name="MaxInflightBytes">Bytes of QoS 1/2 messages sent and not yet acknowledged, counted the same way (0 = no limit):
/// the in-flight window in bytes, beside its count. One message is always allowed, so a large one cannot block the queue.</param>
internal readonly record struct QueueLimits(int MaxMessages, long MaxBytes, long MaxInflightBytes = 0)
{
    // Publishers wait above half the limit and resume below a quarter: a reading subscriber's queue stays well under
    // the limit, so what a publisher had in flight when it was told to wait still fits.
    public int HighMessages => Math.Max(1, MaxMessages / 2);
    public long HighBytes => Math.Max(1, MaxBytes / 2);
    public int LowMessages => MaxMessages / 4;
    public long LowBytes => MaxBytes / 4;

    // A subscriber that reads gets a margin over the limit for QoS 1/2 that publishers had already sent when they
    // were told to wait: those messages were acknowledged and must not be lost.
    public int ReadingMaxMessages => MaxMessages <= int.MaxValue / 2 ? MaxMessages * 2 : int.MaxValue;
    public long ReadingMaxBytes => MaxBytes <= long.MaxValue / 2 ? MaxBytes * 2 : long.MaxValue;
}

/// <summary>
/// The server side session state of [MQTT-4.1]: subscriptions, messages queued and in flight to the client,
/// and QoS 2 packet identifiers received but not yet released. It outlives connections for persistent sessions.
/// All state is guarded by the session's own monitor (an internal object nobody else locks, so no lock object per session); connection threads and the router touch it briefly.
/// </summary>
internal sealed class Session : IKeepAliveTarget
{
    // Told when the expiry deadline of this session, offline, comes due.
    private readonly SessionStore? _store;
    // Created on first use: most devices of a fleet never subscribe or receive, and idle memory per client counts.
    private Dictionary<string, Subscription>? _subscriptions;
    private Queue<OutboundMessage>? _pending;
    private long _pendingBytes;
    // Publishers waiting for this queue to drain (back-pressure); created the first time one waits.
    private List<IBackPressureWaiter>? _waiters;
    private OrderedDictionary<ushort, InflightMessage>? _inflight;
    private long _inflightBytes;
    private HashSet<ushort>? _inboundQoS2;
    private ushort _lastPacketId;
    // Non-null while the session is persistent (expiry above 0, store enabled): each change below is appended to it
    // under this session's lock, so the store sees them in the order memory did (docs/persistence.md).
    private SessionJournal? _journal;
    // Store position of the last QoS 1/2 message queued (see OutboundMessage.Sequence).
    private long _lastSequence;

    public Session(string clientId, SessionStore? store = null)
    {
        ClientId = clientId;
        _store = store;
    }

    /// <summary>The wheel entry that discards this session when it has been offline for its expiry interval; null while online.</summary>
    internal KeepAliveDeadline? ExpiryDeadline { get; set; }

    bool IKeepAliveTarget.HasUnreadInput => false;

    void IKeepAliveTarget.OnDeadlineExpired(in DeadlineExpiry expiry) => _store?.Expire(this);

    public string ClientId { get; }

    /// <summary>Seconds the session survives its connection; uint.MaxValue = never expires.</summary>
    public uint ExpiryIntervalSeconds { get; set; }

    /// <summary>TimeProvider timestamp of the last disconnect, for expiry.</summary>
    public long DisconnectedTimestamp { get; set; }

    // Security (issue #12): who owns the session and what its client may receive. Set under the store's bind lock
    // when a connection attaches; the router reads Permissions without a lock (a reference write is atomic).

    /// <summary>The authenticated user of the connection that last attached (null: anonymous); only that user may take it over.</summary>
    public string? OwnerUserName { get; set; }

    /// <summary>Restored from a store that did not record the owner: the first client that resumes it becomes the owner.</summary>
    public bool OwnerUnknown { get; set; }

    /// <summary>Whether <paramref name="userName"/> may take this session over: always when its owner is unknown.</summary>
    public bool MayBeTakenOverBy(string? userName, Func<string?, string?, bool> mayTakeOver) =>
        OwnerUnknown || mayTakeOver(OwnerUserName, userName);

    private Routing.ITopicPermissions? _permissions;

    /// <summary>The delivery filter of the client's ACL; null when it may receive everything (no ACL), whatever was set.</summary>
    public Routing.ITopicPermissions? Permissions
    {
        get => _permissions;
        set => _permissions = value is { IsUnrestricted: false } ? value : null;
    }

    /// <summary>The connection bound to this session; null while offline.</summary>
    public IDeliveryTarget? Owner { get; private set; }

    public bool IsOnline => Owner is not null;

    /// <summary>Whether this session's state is written to the persistent store.</summary>
    public bool IsPersistent => Volatile.Read(ref _journal) is not null;

    /// <summary>Set by <see cref="SessionStore.Attach"/> when the CONNECT wrote to the store (its CONNACK waits for that).</summary>
    internal bool AttachWroteStore { get; set; }

    /// <summary>
    /// Makes the session persistent (<paramref name="journal"/> set) or not. Becoming persistent writes everything it
    /// holds (a session taken over with an expiry where it had none); staying persistent updates its expiry and
    /// whether its client is connected; ceasing to be removes it from the store. Returns whether anything was written.
    /// </summary>
    internal bool UpdateJournal(SessionJournal? journal, bool connected)
    {
        lock (this)
        {
            var current = _journal;
            if (journal is null)
            {
                if (current is null)
                {
                    return false;
                }
                current.DeleteSession(ClientId);
                Volatile.Write(ref _journal, null);
                return true;
            }
            journal.UpsertSession(ClientId, ExpiryIntervalSeconds, connected, OwnerUnknown ? Persistence.PersistedSession.UnknownOwner : OwnerUserName);
            if (current is null)
            {
                WriteSnapshotLocked(journal);
                Volatile.Write(ref _journal, journal);
            }
            return true;
        }
    }

    private void WriteSnapshotLocked(SessionJournal journal)
    {
        if (_subscriptions is not null)
        {
            foreach (var subscription in _subscriptions.Values)
            {
                journal.UpsertSubscription(subscription);
            }
        }
        if (_inboundQoS2 is not null)
        {
            foreach (ushort packetId in _inboundQoS2)
            {
                journal.AddInboundQoS2(ClientId, packetId);
            }
        }
        if (_inflight is not null)
        {
            foreach (var inflight in _inflight.Values)
            {
                var outbound = inflight.Outbound with { Sequence = ++_lastSequence };
                inflight.Outbound = outbound;
                journal.Enqueue(ClientId, outbound);
                journal.MarkInflight(ClientId, outbound.Sequence, inflight.PacketId);
                if (inflight.Released)
                {
                    journal.MarkReleased(ClientId, outbound.Sequence);
                }
            }
        }
        if (_pending is not null)
        {
            for (int i = _pending.Count; i > 0; i--)
            {
                var queued = _pending.Dequeue();
                if (SessionJournal.IsStored(queued.QoS))
                {
                    queued = queued with { Sequence = ++_lastSequence };
                    journal.Enqueue(ClientId, queued);
                }
                _pending.Enqueue(queued);
            }
        }
    }

    /// <summary>
    /// Start-up: fills this new, offline session with what the store kept (its subscriptions are restored through the
    /// router first), and makes it persistent without writing it again. The queue comes back whole, as memory held it
    /// (a client that was reading may hold more than an offline one may keep): the queue limits apply, as they do in
    /// memory, when the next message arrives. Returns the entries dropped because they cannot be restored.
    /// </summary>
    internal int Restore(PersistedSession stored, Func<PersistedMessage, ApplicationMessage> messageOf, SessionJournal journal)
    {
        int dropped = 0;
        lock (this)
        {
            if (stored.InboundQoS2.Count > 0)
            {
                _inboundQoS2 = [.. stored.InboundQoS2];
            }
            foreach (var entry in stored.Inflight)
            {
                ushort packetId = entry.PacketId!.Value;
                _inflight ??= new OrderedDictionary<ushort, InflightMessage>();
                if (_inflight.ContainsKey(packetId))
                {
                    // Two in-flight entries with one packet id cannot both be resent; keep the first sent.
                    journal.RemoveOutbound(ClientId, entry.Sequence);
                    dropped++;
                    continue;
                }
                var outbound = new OutboundMessage(messageOf(entry.Message), entry.QoS, entry.Retain, entry.SubscriptionIdentifiers, entry.Sequence);
                _inflight.Add(packetId, new InflightMessage { Outbound = outbound, PacketId = packetId, Released = entry.Released });
                _inflightBytes += outbound.Message.QueuedSize;
                _lastPacketId = packetId;
            }
            foreach (var entry in stored.Queued)
            {
                var queued = new OutboundMessage(messageOf(entry.Message), entry.QoS, entry.Retain, entry.SubscriptionIdentifiers, entry.Sequence);
                (_pending ??= new Queue<OutboundMessage>()).Enqueue(queued);
                _pendingBytes += queued.Message.QueuedSize;
            }
            _lastSequence = stored.LastSequence;
            Volatile.Write(ref _journal, journal);
        }
        return dropped;
    }

    // A message leaves the session (done, dropped, expired): so does its store copy.
    private void ForgetLocked(in OutboundMessage message)
    {
        if (message.Sequence != 0)
        {
            _journal?.RemoveOutbound(ClientId, message.Sequence);
        }
    }

    public int SubscriptionCount
    {
        get
        {
            lock (this)
            {
                return _subscriptions?.Count ?? 0;
            }
        }
    }

    public int PendingCount
    {
        get
        {
            lock (this)
            {
                return _pending?.Count ?? 0;
            }
        }
    }

    public int InflightCount
    {
        get
        {
            lock (this)
            {
                return _inflight?.Count ?? 0;
            }
        }
    }

    public void Bind(IDeliveryTarget owner)
    {
        lock (this)
        {
            Owner = owner;
        }
    }

    /// <summary>Unbinds only if <paramref name="owner"/> is still the owner (a takeover may have rebound it).</summary>
    public bool Unbind(IDeliveryTarget owner, long now)
    {
        IBackPressureWaiter[]? waiters;
        lock (this)
        {
            if (!ReferenceEquals(Owner, owner))
            {
                return false;
            }
            Owner = null;
            DisconnectedTimestamp = now;
            // Offline, the queue no longer drains: nobody waits for it.
            waiters = TakeWaiters();
        }
        Resume(waiters);
        return true;
    }

    /// <summary>Read without the lock by the router to decide whether overlapping subscriptions must be merged.</summary>
    public int SubscriptionCountHint => Volatile.Read(ref _subscriptionCountHint);

    private int _subscriptionCountHint;

    public bool AddOrReplaceSubscription(Subscription subscription, out Subscription? replaced)
    {
        lock (this)
        {
            _subscriptions ??= new Dictionary<string, Subscription>(StringComparer.Ordinal);
            _subscriptions.TryGetValue(subscription.Filter, out replaced);
            _subscriptions[subscription.Filter] = subscription;
            Volatile.Write(ref _subscriptionCountHint, _subscriptions.Count);
            _journal?.UpsertSubscription(subscription);
            return replaced is null;
        }
    }

    public bool RemoveSubscription(string filter, out Subscription? removed)
    {
        lock (this)
        {
            removed = null;
            bool found = _subscriptions is not null && _subscriptions.Remove(filter, out removed);
            Volatile.Write(ref _subscriptionCountHint, _subscriptions?.Count ?? 0);
            if (found)
            {
                _journal?.DeleteSubscription(ClientId, filter);
            }
            return found;
        }
    }

    public bool HasSubscription(string filter)
    {
        lock (this)
        {
            return _subscriptions is not null && _subscriptions.ContainsKey(filter);
        }
    }

    public Subscription[] GetSubscriptions()
    {
        lock (this)
        {
            return _subscriptions is null ? [] : [.. _subscriptions.Values];
        }
    }

    /// <summary>Bytes of the in-flight messages (see <see cref="QueueLimits.MaxInflightBytes"/>).</summary>
    public long InflightBytes
    {
        get
        {
            lock (this)
            {
                return _inflightBytes;
            }
        }
    }

    /// <summary>Bytes of the queued messages (see <see cref="QueueLimits.MaxBytes"/>).</summary>
    public long PendingBytes
    {
        get
        {
            lock (this)
            {
                return _pendingBytes;
            }
        }
    }

    /// <summary>
    /// Called by the router for every matching message. The policy (docs/overload.md): a client that reads is never
    /// sent fewer QoS 1/2 messages than were acknowledged to their publishers, and past the high watermark the
    /// publisher is asked to wait; a client that stopped reading (or is offline) keeps at most the limits, QoS 0 is
    /// dropped for it and, when full, the oldest queued messages make room for the newest.
    /// </summary>
    public EnqueueResult Enqueue(in OutboundMessage message, in QueueLimits limits, out int droppedOldest, bool retainedReplay = false)
    {
        IDeliveryTarget? owner;
        EnqueueResult result = EnqueueResult.Queued;
        droppedOldest = 0;
        lock (this)
        {
            owner = Owner;
            int count = _pending?.Count ?? 0;
            long size = message.Message.QueuedSize;
            bool stalled = owner is null || owner.IsStalled;
            if (message.QoS == QualityOfService.AtMostOnce && (owner is null || stalled || count >= limits.MaxMessages || _pendingBytes + size > limits.MaxBytes))
            {
                // QoS 0 is not kept for offline sessions, nor for a client that stopped reading, nor past the limits.
                result = EnqueueResult.DroppedQoS0;
            }
            else if (retainedReplay && (count >= limits.MaxMessages || _pendingBytes + size > limits.MaxBytes))
            {
                // Replays at SUBSCRIBE never push out what was published: they stop at the limit.
                result = EnqueueResult.DroppedRetainedReplay;
            }
            else
            {
                int maxMessages = stalled ? limits.MaxMessages : limits.ReadingMaxMessages;
                long maxBytes = stalled ? limits.MaxBytes : limits.ReadingMaxBytes;
                var pending = _pending ??= new Queue<OutboundMessage>();
                while (pending.Count > 0 && (pending.Count >= maxMessages || _pendingBytes + size > maxBytes))
                {
                    // Full: the oldest message makes room (the newest state of a device is worth more than its oldest).
                    var oldest = pending.Dequeue();
                    _pendingBytes -= oldest.Message.QueuedSize;
                    droppedOldest++;
                    ForgetLocked(oldest);
                }
                if (maxMessages == 0)
                {
                    result = message.QoS == QualityOfService.AtMostOnce ? EnqueueResult.DroppedQoS0 : EnqueueResult.QueuedDroppingOldest;
                    droppedOldest += message.QoS == QualityOfService.AtMostOnce ? 0 : 1;
                }
                else
                {
                    var queued = message;
                    if (_journal is { } journal && SessionJournal.IsStored(message.QoS))
                    {
                        queued = message with { Sequence = ++_lastSequence };
                        journal.Enqueue(ClientId, queued);
                    }
                    pending.Enqueue(queued);
                    _pendingBytes += size;
                    if (droppedOldest > 0)
                    {
                        result = EnqueueResult.QueuedDroppingOldest;
                    }
                    else if (!stalled && !owner!.IsHeldBack && (pending.Count > limits.HighMessages || _pendingBytes > limits.HighBytes))
                    {
                        result = EnqueueResult.QueuedAboveHighWatermark;
                    }
                }
            }
        }
        if (owner is not null && result is not (EnqueueResult.DroppedQoS0 or EnqueueResult.DroppedRetainedReplay))
        {
            owner.NotifyPending();
        }
        return result;
    }

    /// <summary>
    /// The publisher waits for this session to drain below its low watermark. False (no wait) when it already has,
    /// or when its client does not read or is held back itself.
    /// </summary>
    public bool TryAddWaiter(IBackPressureWaiter waiter, in QueueLimits limits)
    {
        lock (this)
        {
            var owner = Owner;
            if (owner is null || owner.IsStalled || owner.IsHeldBack || !AboveLowWatermark(limits))
            {
                return false;
            }
            (_waiters ??= []).Add(waiter);
            return true;
        }
    }

    /// <summary>Lets every waiting publisher go on (the client left, stalled, or is held back itself).</summary>
    public void ReleaseWaiters()
    {
        IBackPressureWaiter[]? waiters;
        lock (this)
        {
            waiters = TakeWaiters();
        }
        Resume(waiters);
    }

    private bool AboveLowWatermark(in QueueLimits limits) => (_pending?.Count ?? 0) > limits.LowMessages || _pendingBytes > limits.LowBytes;

    private IBackPressureWaiter[]? TakeWaiters()
    {
        if (_waiters is not { Count: > 0 } list)
        {
            return null;
        }
        var taken = list.ToArray();
        list.Clear();
        return taken;
    }

    private static void Resume(IBackPressureWaiter[]? waiters)
    {
        if (waiters is null)
        {
            return;
        }
        foreach (var waiter in waiters)
        {
            waiter.ResumeFromBackPressure();
        }
    }

    /// <summary>
    /// Takes the next message to send, if <paramref name="owner"/> still owns the session. QoS 1/2 messages wait while
    /// the in-flight window is full, and with them everything queued behind them, which keeps per-topic order
    /// [MQTT-4.6.0-6]. Publishers waiting on this session go on once it is below its low watermark.
    /// </summary>
    public bool TryTakeNext(IDeliveryTarget owner, int inflightWindow, in QueueLimits limits, out OutboundMessage message, out ushort packetId)
    {
        IBackPressureWaiter[]? drained = null;
        try
        {
            lock (this)
            {
                packetId = 0;
                message = default;
                if (_waiters is { Count: > 0 } && !AboveLowWatermark(limits))
                {
                    drained = TakeWaiters();
                }
                // A connection that was taken over must not take messages meant for its successor.
                if (!ReferenceEquals(Owner, owner) || _pending is null || !_pending.TryPeek(out message))
                {
                    return false;
                }
                if (message.QoS != QualityOfService.AtMostOnce)
                {
                    _inflight ??= new OrderedDictionary<ushort, InflightMessage>();
                    if (_inflight.Count >= inflightWindow
                        || (limits.MaxInflightBytes > 0 && _inflight.Count > 0 && _inflightBytes + message.Message.QueuedSize > limits.MaxInflightBytes))
                    {
                        return false;
                    }
                    packetId = NextPacketId();
                    _inflight.Add(packetId, new InflightMessage { Outbound = message, PacketId = packetId });
                    if (message.Sequence != 0)
                    {
                        _journal?.MarkInflight(ClientId, message.Sequence, packetId);
                    }
                    _inflightBytes += message.Message.QueuedSize;
                }
                _pending.Dequeue();
                _pendingBytes -= message.Message.QueuedSize;
                return true;
            }
        }
        finally
        {
            Resume(drained);
        }
    }

    private ushort NextPacketId()
    {
        // Identifiers in use by in-flight messages are skipped [MQTT-2.2.1-3]; the window is < 65535 so one is free.
        do
        {
            _lastPacketId = _lastPacketId == ushort.MaxValue ? (ushort)1 : (ushort)(_lastPacketId + 1);
        }
        while (_inflight!.ContainsKey(_lastPacketId));
        return _lastPacketId;
    }

    /// <summary>PUBACK (QoS 1) or PUBCOMP (QoS 2): the message is done.</summary>
    public bool Complete(ushort packetId, QualityOfService expected)
    {
        lock (this)
        {
            if (_inflight is not null && _inflight.TryGetValue(packetId, out var inflight) && inflight.Outbound.QoS == expected
                && (expected == QualityOfService.AtLeastOnce || inflight.Released))
            {
                _inflight.Remove(packetId);
                ForgetLocked(inflight.Outbound);
                _inflightBytes -= inflight.Outbound.Message.QueuedSize;
                return true;
            }
            return false;
        }
    }

    /// <summary>PUBREC: the client has the QoS 2 message; from now on only PUBREL is resent [MQTT-4.3.3-5].</summary>
    public bool Release(ushort packetId)
    {
        lock (this)
        {
            if (_inflight is not null && _inflight.TryGetValue(packetId, out var inflight) && inflight.Outbound.QoS == QualityOfService.ExactlyOnce)
            {
                if (!inflight.Released && inflight.Outbound.Sequence != 0)
                {
                    _journal?.MarkReleased(ClientId, inflight.Outbound.Sequence);
                }
                inflight.Released = true;
                return true;
            }
            return false;
        }
    }

    /// <summary>PUBREC with a failure reason code (5.0): the message is done [MQTT-4.3.3-?].</summary>
    public void Drop(ushort packetId)
    {
        lock (this)
        {
            if (_inflight is not null && _inflight.Remove(packetId, out var dropped))
            {
                ForgetLocked(dropped.Outbound);
                _inflightBytes -= dropped.Outbound.Message.QueuedSize;
            }
        }
    }

    /// <summary>In-flight messages in the order they were first sent, for resending after a reconnect [MQTT-4.4.0-1].</summary>
    public InflightMessage[] GetInflight()
    {
        lock (this)
        {
            return _inflight is null ? [] : [.. _inflight.Values];
        }
    }

    /// <summary>Records an incoming QoS 2 packet id; false if it was already there (a resend: do not route again).</summary>
    public bool TryAddInboundQoS2(ushort packetId, int receiveMaximum, out bool exceeded)
    {
        lock (this)
        {
            exceeded = false;
            _inboundQoS2 ??= new HashSet<ushort>();
            if (_inboundQoS2.Contains(packetId))
            {
                return false;
            }
            if (_inboundQoS2.Count >= receiveMaximum)
            {
                exceeded = true;
                return false;
            }
            _inboundQoS2.Add(packetId);
            _journal?.AddInboundQoS2(ClientId, packetId);
            return true;
        }
    }

    public bool RemoveInboundQoS2(ushort packetId)
    {
        lock (this)
        {
            if (_inboundQoS2 is not null && _inboundQoS2.Remove(packetId))
            {
                _journal?.RemoveInboundQoS2(ClientId, packetId);
                return true;
            }
            return false;
        }
    }
}
