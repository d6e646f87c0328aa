using System.Collections.Concurrent;
using Broker.Routing;

namespace Broker.Sessions;

/// <summary>
/// All sessions by client identifier. Binding a connection to a session (CONNECT) and unbinding it
/// (connection end) are serialised by one lock: they are rare next to publishes, and one lock makes
/// takeover [MQTT-3.1.4-2] and clean start [MQTT-3.1.2-4] race-free.
/// </summary>
internal sealed class SessionStore
{
    private readonly ConcurrentDictionary<string, Session> _sessions = new(StringComparer.Ordinal);
    private readonly object _bindGate = new();
    private readonly Router _router;
    private readonly TimeProvider _time;

    public SessionStore(Router router, TimeProvider time)
    {
        _router = router;
        _time = time;
    }

    public int Count => _sessions.Count;

    public bool TryGet(string clientId, out Session? session) => _sessions.TryGetValue(clientId, out session);

    /// <summary>
    /// Binds <paramref name="owner"/> to the client's session. Returns the connection it took over, if any,
    /// and whether a previous session was resumed (CONNACK Session Present).
    /// </summary>
    public Session Attach(string clientId, bool cleanStart, uint expiryIntervalSeconds, IDeliveryTarget owner,
        out bool sessionPresent, out IDeliveryTarget? previousOwner)
    {
        lock (_bindGate)
        {
            previousOwner = null;
            sessionPresent = false;
            if (_sessions.TryGetValue(clientId, out var existing))
            {
                previousOwner = existing.Owner;
                if (cleanStart)
                {
                    Discard(existing);
                }
                else
                {
                    sessionPresent = true;
                    existing.ExpiryIntervalSeconds = expiryIntervalSeconds;
                    existing.Bind(owner);
                    return existing;
                }
            }
            var session = new Session(clientId) { ExpiryIntervalSeconds = expiryIntervalSeconds };
            session.Bind(owner);
            _sessions[clientId] = session;
            return session;
        }
    }

    /// <summary>
    /// The connection ended. A session with expiry 0 ends with it [MQTT-3.1.2-5 / 3.1.2.11.2]; others stay for
    /// their expiry interval. Returns false when another connection already took the session over.
    /// </summary>
    public bool Detach(Session session, IDeliveryTarget owner, uint? expiryOverride = null)
    {
        lock (_bindGate)
        {
            if (!session.Unbind(owner, _time.GetTimestamp()))
            {
                return false;
            }
            if (expiryOverride is { } e)
            {
                session.ExpiryIntervalSeconds = e;
            }
            if (session.ExpiryIntervalSeconds == 0)
            {
                Discard(session);
            }
            return true;
        }
    }

    /// <summary>Removes offline sessions whose expiry interval has passed; returns their client ids.</summary>
    public List<string> RemoveExpired()
    {
        var removed = new List<string>();
        long now = _time.GetTimestamp();
        foreach (var (clientId, session) in _sessions)
        {
            if (session.IsOnline || session.ExpiryIntervalSeconds == uint.MaxValue)
            {
                continue;
            }
            var offlineFor = _time.GetElapsedTime(session.DisconnectedTimestamp, now);
            if (offlineFor.TotalSeconds >= session.ExpiryIntervalSeconds)
            {
                lock (_bindGate)
                {
                    if (!session.IsOnline && _sessions.TryGetValue(clientId, out var current) && ReferenceEquals(current, session))
                    {
                        Discard(session);
                        removed.Add(clientId);
                    }
                }
            }
        }
        return removed;
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

    private void Discard(Session session)
    {
        _sessions.TryRemove(new KeyValuePair<string, Session>(session.ClientId, session));
        foreach (var sub in session.GetSubscriptions())
        {
            _router.Unsubscribe(sub.Filter, session);
        }
    }
}

/// <summary>Sessions by state and the messages they hold, as seen by one pass of <see cref="SessionStore.Measure"/>.</summary>
internal readonly record struct SessionCounts(long Online, long Offline, long Queued, long Inflight);
