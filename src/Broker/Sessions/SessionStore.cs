using System.Collections.Concurrent;
using Broker.Connections.KeepAlive;
using Broker.Diagnostics;
using Broker.Routing;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Broker.Sessions;

/// <summary>
/// All sessions by client identifier. Binding a connection to a session (CONNECT) and unbinding it
/// (connection end) are serialised by one lock: they are rare next to publishes, and one lock makes
/// takeover [MQTT-3.1.4-2] and clean start [MQTT-3.1.2-4] race-free. An offline session with a finite
/// expiry has one entry on the timer wheel; nothing scans the sessions.
/// </summary>
internal sealed class SessionStore
{
    private readonly ConcurrentDictionary<string, Session> _sessions = new(StringComparer.Ordinal);
    private readonly Lock _bindGate = new();
    private readonly Router _router;
    private readonly TimeProvider _time;
    private readonly TimerWheel _wheel;
    private readonly ILogger _logger;
    private readonly SessionJournal? _journal;

    public SessionStore(Router router, TimeProvider time, TimerWheel wheel, ILogger<SessionStore>? logger = null, SessionJournal? journal = null)
    {
        _router = router;
        _time = time;
        _wheel = wheel;
        _logger = logger ?? (ILogger)NullLogger.Instance;
        _journal = journal;
    }

    /// <summary>The persistent store's side of the sessions; null when persistence is off.</summary>
    public SessionJournal? Journal => _journal;

    public int Count => _sessions.Count;

    public bool TryGet(string clientId, out Session? session) => _sessions.TryGetValue(clientId, out session);

    /// <summary>Raised (outside the store's lock) with every session that expired, after it was discarded.</summary>
    public event Action<Session>? SessionExpired;

    /// <summary>
    /// Binds <paramref name="owner"/> to the client's session. Returns the connection it took over, if any,
    /// and whether a previous session was resumed (CONNACK Session Present).
    /// </summary>
    public Session Attach(string clientId, bool cleanStart, uint expiryIntervalSeconds, IDeliveryTarget owner,
        out bool sessionPresent, out IDeliveryTarget? previousOwner)
    {
        lock (_bindGate)
        {
            var attached = AttachLocked(clientId, cleanStart, expiryIntervalSeconds, owner, out sessionPresent, out previousOwner, out bool wroteStore);
            PersistAttached(attached, wroteStore);
            return attached;
        }
    }

    /// <summary>
    /// <see cref="Attach"/> for an authenticated client: an existing session (connected or not) is taken over only
    /// when <paramref name="mayTakeOver"/> allows it for the session's owner; otherwise nothing changes and null is
    /// returned (CONNACK 0x05 / 0x87). The attached session remembers the user and the client's delivery filter.
    /// </summary>
    public Session? TryAttach(string clientId, bool cleanStart, uint expiryIntervalSeconds, IDeliveryTarget owner,
        string? userName, Routing.ITopicPermissions? permissions, Func<string?, string?, bool> mayTakeOver,
        out bool sessionPresent, out IDeliveryTarget? previousOwner)
    {
        lock (_bindGate)
        {
            if (_sessions.TryGetValue(clientId, out var existing) && !existing.MayBeTakenOverBy(userName, mayTakeOver))
            {
                sessionPresent = false;
                previousOwner = null;
                return null;
            }
            var session = AttachLocked(clientId, cleanStart, expiryIntervalSeconds, owner, out sessionPresent, out previousOwner, out bool wroteStore);
            session.OwnerUserName = userName;
            session.OwnerUnknown = false;
            session.Permissions = permissions;
            // After the owner is set: the store keeps it, so same-user takeover holds across a restart.
            PersistAttached(session, wroteStore);
            return session;
        }
    }

    private Session AttachLocked(string clientId, bool cleanStart, uint expiryIntervalSeconds, IDeliveryTarget owner,
        out bool sessionPresent, out IDeliveryTarget? previousOwner, out bool wroteStore)
    {
        previousOwner = null;
        sessionPresent = false;
        wroteStore = false;
        if (_sessions.TryGetValue(clientId, out var existing))
        {
            previousOwner = existing.Owner;
            CancelExpiry(existing);
            if (cleanStart)
            {
                wroteStore = Discard(existing);
            }
            else
            {
                sessionPresent = true;
                existing.ExpiryIntervalSeconds = expiryIntervalSeconds;
                existing.Bind(owner);
                return existing;
            }
        }
        var session = new Session(clientId, this) { ExpiryIntervalSeconds = expiryIntervalSeconds };
        session.Bind(owner);
        _sessions[clientId] = session;
        return session;
    }

    /// <summary>
    /// The connection ended. A session with expiry 0 ends with it [MQTT-3.1.2-5 / 3.1.2.11.2]; others stay for
    /// their expiry interval (uint.MaxValue: for ever). Returns false when another connection already took the
    /// session over.
    /// </summary>
    public bool Detach(Session session, IDeliveryTarget owner, uint? expiryOverride = null)
    {
        lock (_bindGate)
        {
            if (!session.Unbind(owner, _time.GetTimestamp()))
            {
                return false;
            }
            if (!_sessions.TryGetValue(session.ClientId, out var current) || !ReferenceEquals(current, session))
            {
                // A Clean Start discarded it while its connection was still open: nothing to keep and no expiry to run
                // (the client id's row on disk belongs to the new session).
                return true;
            }
            if (expiryOverride is { } e)
            {
                session.ExpiryIntervalSeconds = e;
            }
            if (session.ExpiryIntervalSeconds == 0)
            {
                Discard(session);
            }
            else
            {
                // The session stays, with its disconnect time (the start of its expiry after a restart).
                session.UpdateJournal(_journal, connected: false);
            }
            if (session.ExpiryIntervalSeconds is not (0 or uint.MaxValue))
            {
                // [MQTT-3.1.2-23] kept for the interval after the connection closes.
                session.ExpiryDeadline = _wheel.Register(session, DeadlineKind.SessionExpiry, TimeSpan.FromSeconds(session.ExpiryIntervalSeconds));
            }
            return true;
        }
    }

    /// <summary>The wheel says the session's expiry passed: discard it unless a client came back meanwhile.</summary>
    internal void Expire(Session session)
    {
        lock (_bindGate)
        {
            if (session.IsOnline || !_sessions.TryGetValue(session.ClientId, out var current) || !ReferenceEquals(current, session))
            {
                return;
            }
            session.ExpiryDeadline = null;
            Discard(session);
        }
        BrokerLog.SessionExpired(_logger, LogText.Escape(session.ClientId));
        SessionExpired?.Invoke(session);
    }

    /// <summary>
    /// One pass over all sessions for the gauges, at collection time (not on a hot path). Enumerates the
    /// dictionary itself rather than <c>Values</c>, which would copy every session into a list first.
    /// </summary>
    public SessionCounts Measure()
    {
        long online = 0, offline = 0, queued = 0, inflight = 0;
        foreach (var (_, session) in _sessions)
        {
            if (session.IsOnline)
            {
                online++;
            }
            else
            {
                offline++;
            }
            queued += session.PendingCount;
            inflight += session.InflightCount;
        }
        return new SessionCounts(online, offline, queued, inflight);
    }

    private void CancelExpiry(Session session)
    {
        if (session.ExpiryDeadline is { } deadline)
        {
            session.ExpiryDeadline = null;
            _wheel.Remove(deadline);
        }
    }

    /// <summary>
    /// A CONNECT bound the session: a persistent one is written (created, or its expiry and connected state updated),
    /// one that is not (any more) is removed from the store. <see cref="Session.AttachWroteStore"/> tells the connection
    /// whether its CONNACK must wait for the store.
    /// </summary>
    private void PersistAttached(Session session, bool wroteStore)
    {
        bool persistent = _journal is not null && session.ExpiryIntervalSeconds > 0;
        session.AttachWroteStore = session.UpdateJournal(persistent ? _journal : null, connected: true) | wroteStore;
    }

    /// <summary>
    /// Start-up: adds a session restored from the store, offline, with what is left of its expiry on the wheel
    /// (counted from its disconnect time).
    /// </summary>
    internal void AddRestored(Session session, TimeSpan remainingExpiry)
    {
        lock (_bindGate)
        {
            _sessions[session.ClientId] = session;
            if (session.ExpiryIntervalSeconds != uint.MaxValue)
            {
                session.ExpiryDeadline = _wheel.Register(session, DeadlineKind.SessionExpiry, remainingExpiry < TimeSpan.Zero ? TimeSpan.Zero : remainingExpiry);
            }
        }
    }

    /// <summary>Ends a session; returns whether it was removed from the persistent store too.</summary>
    private bool Discard(Session session)
    {
        CancelExpiry(session);
        // Out of the store first, so that the unsubscribes below write nothing more.
        bool wroteStore = session.UpdateJournal(null, connected: false);
        _sessions.TryRemove(new KeyValuePair<string, Session>(session.ClientId, session));
        foreach (var sub in session.GetSubscriptions())
        {
            _router.Unsubscribe(sub.Filter, session);
        }
        return wroteStore;
    }
}

/// <summary>Sessions by state and the messages they hold, as seen by one pass of <see cref="SessionStore.Measure"/>.</summary>
internal readonly record struct SessionCounts(long Online, long Offline, long Queued, long Inflight);
