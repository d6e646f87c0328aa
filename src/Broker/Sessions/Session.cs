using Broker.Connections.KeepAlive;
using Broker.Protocol;

namespace Broker.Sessions;

/// <summary>Who is notified when a session has something to send: the connection bound to it, if any.</summary>
internal interface IDeliveryTarget
{
    void NotifyPending();
    /// <summary>The session's queue overflowed while the client was connected: it is too slow to keep.</summary>
    void OnQueueOverflow();
}

internal enum EnqueueResult
{
    Queued,
    /// <summary>QoS 0 dropped: client offline, or its queue is full.</summary>
    DroppedQoS0,
    /// <summary>QoS 1/2 dropped because the queue of an offline session is full.</summary>
    DroppedOffline,
    /// <summary>QoS 1/2 did not fit while the client is online: the client is disconnected.</summary>
    Overflow,
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
    private OrderedDictionary<ushort, InflightMessage>? _inflight;
    private HashSet<ushort>? _inboundQoS2;
    private ushort _lastPacketId;

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

    /// <summary>The delivery filter of the client's ACL; null when it may receive everything (no ACL).</summary>
    public Routing.ITopicPermissions? Permissions { get; set; }

    /// <summary>The connection bound to this session; null while offline.</summary>
    public IDeliveryTarget? Owner { get; private set; }

    public bool IsOnline => Owner is not null;

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
        lock (this)
        {
            if (!ReferenceEquals(Owner, owner))
            {
                return false;
            }
            Owner = null;
            DisconnectedTimestamp = now;
            return true;
        }
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
            return found;
        }
    }

    public Subscription[] GetSubscriptions()
    {
        lock (this)
        {
            return _subscriptions is null ? [] : [.. _subscriptions.Values];
        }
    }

    /// <summary>Called by the router for every matching message.</summary>
    public EnqueueResult Enqueue(in OutboundMessage message, int maxQueued)
    {
        IDeliveryTarget? owner;
        lock (this)
        {
            owner = Owner;
            if (message.QoS == QualityOfService.AtMostOnce)
            {
                // QoS 0 is not kept for offline sessions, and is the first thing dropped for a slow client.
                if (owner is null || (_pending?.Count ?? 0) >= maxQueued)
                {
                    return EnqueueResult.DroppedQoS0;
                }
            }
            else if ((_pending?.Count ?? 0) >= maxQueued)
            {
                if (owner is null)
                {
                    return EnqueueResult.DroppedOffline;
                }
                owner.OnQueueOverflow();
                return EnqueueResult.Overflow;
            }
            (_pending ??= new Queue<OutboundMessage>()).Enqueue(message);
        }
        owner?.NotifyPending();
        return EnqueueResult.Queued;
    }

    /// <summary>
    /// Takes the next message to send, if <paramref name="owner"/> still owns the session. QoS 1/2 messages wait while the in-flight window is full, and with them
    /// everything queued behind them, which keeps per-topic order [MQTT-4.6.0-6].
    /// </summary>
    public bool TryTakeNext(IDeliveryTarget owner, int inflightWindow, out OutboundMessage message, out ushort packetId)
    {
        lock (this)
        {
            packetId = 0;
            message = default;
            // A connection that was taken over must not take messages meant for its successor.
            if (!ReferenceEquals(Owner, owner) || _pending is null || !_pending.TryPeek(out message))
            {
                return false;
            }
            if (message.QoS != QualityOfService.AtMostOnce)
            {
                _inflight ??= new OrderedDictionary<ushort, InflightMessage>();
                if (_inflight.Count >= inflightWindow)
                {
                    return false;
                }
                packetId = NextPacketId();
                _inflight.Add(packetId, new InflightMessage { Outbound = message, PacketId = packetId });
            }
            _pending.Dequeue();
            return true;
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
            _inflight?.Remove(packetId);
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
            return true;
        }
    }

    public bool RemoveInboundQoS2(ushort packetId)
    {
        lock (this)
        {
            return _inboundQoS2 is not null && _inboundQoS2.Remove(packetId);
        }
    }
}
