using System.Diagnostics.Metrics;
using Broker.Diagnostics.Insight;
using Broker.Protocol;

namespace Broker.Diagnostics;

/// <summary>Why a connection ended: one value per connection, used by the log line and the metric.</summary>
internal enum DisconnectCause
{
    ClientDisconnect,
    ClientDisconnectWithWill,
    KeepAliveTimeout,
    ConnectTimeout,
    /// <summary>The client closed the TCP connection (FIN) without DISCONNECT.</summary>
    SocketClosed,
    /// <summary>Any other socket error.</summary>
    SocketError,
    /// <summary>The peer reset the connection (RST, ECONNRESET/EPIPE).</summary>
    ConnectionReset,
    /// <summary>The kernel gave up on the peer (ETIMEDOUT): TCP keep-alive probes or retransmissions unanswered.</summary>
    TransportTimeout,
    /// <summary>The network reported the peer unreachable (EHOSTUNREACH/ENETUNREACH).</summary>
    HostUnreachable,
    ProtocolError,
    Takeover,
    ServerShutdown,
    SlowConsumer,
    ConnectRefused,
    /// <summary>A configured limit was exceeded by the client (packet size, receive maximum).</summary>
    LimitExceeded,
    /// <summary>A bug: an unexpected exception while handling the client's packet (logged as an error).</summary>
    InternalError,
    /// <summary>Part of a packet arrived and the rest did not within Broker:Limits:PartialPacketTimeoutSeconds.</summary>
    PartialPacketTimeout,
    /// <summary>An operator disconnected the client (admin API).</summary>
    AdministrativeAction,
    /// <summary>The persistent store could not make durable what a reply to the client promises (disk full, I/O error).</summary>
    StoreUnavailable,
}

internal enum ConnectResult
{
    Accepted,
    UnsupportedProtocolVersion,
    IdentifierRejected,
    KeepAliveRefused,
    MalformedConnect,
    BadAuthenticationMethod,
    /// <summary>Broker:Limits:MaxConnections or MaxSessions reached.</summary>
    ServerFull,
    /// <summary>Unknown user, wrong or missing password (3.1.1 0x04, 5.0 0x86).</summary>
    BadCredentials,
    /// <summary>Anonymous not allowed from there, will topic or session takeover refused by the ACL (0x05 / 0x87).</summary>
    NotAuthorized,
}

internal enum DropReason
{
    NoSubscribers,
    /// <summary>QoS 0 not queued: the client is offline or stopped reading, or its queue is full.</summary>
    QoS0Congestion,
    Expired,
    PacketTooLarge,
    /// <summary>A client published into a topic it may not (the ACL, or the broker's <c>$SYS/</c>), or a queued message its subscriber may no longer read.</summary>
    NotAuthorized,
    /// <summary>A session's queue was full (client stalled or offline): its oldest messages made room, or a retained replay did not fit.</summary>
    QueueFull,
}

/// <summary>Which configured limit refused something a client asked for (Broker:Limits:*).</summary>
internal enum LimitKind
{
    /// <summary>MaxConnections: a connection over the limit was refused at CONNECT.</summary>
    Connections,
    /// <summary>MaxSessions: a new session over the limit was refused at CONNECT.</summary>
    Sessions,
    /// <summary>MaxSubscriptionsPerClient: a filter over the limit got a failure code in SUBACK.</summary>
    SubscriptionsPerClient,
    /// <summary>PartialPacketTimeoutSeconds: a client sent part of a packet and not the rest in time.</summary>
    PartialPacketTimeout,
    /// <summary>ConnectRate: accepting paused because connects came faster than the configured rate.</summary>
    ConnectRate,
}

/// <summary>Why a TLS handshake (TLS or WSS listener) did not produce a client.</summary>
internal enum TlsHandshakeFailure
{
    /// <summary>Not TLS (plain MQTT to the TLS port), TLS below 1.2, no common cipher, a refused client certificate.</summary>
    Refused,
    /// <summary>No complete handshake within the connect timeout.</summary>
    Timeout,
    /// <summary>The client closed or reset the connection during the handshake.</summary>
    ClientGone,
}

/// <summary>Why a commit of the persistent store failed (SQLite result code classes).</summary>
internal enum StoreErrorKind
{
    /// <summary>SQLITE_FULL: the disk (or the database's size limit) is full.</summary>
    DiskFull,
    /// <summary>SQLITE_IOERR, SQLITE_CANTOPEN: the operating system failed a read, write or fsync.</summary>
    IoError,
    /// <summary>SQLITE_CORRUPT, SQLITE_NOTADB: damage found while writing.</summary>
    Corrupt,
    /// <summary>SQLITE_READONLY, SQLITE_PERM: the file or directory is no longer writable.</summary>
    ReadOnly,
    /// <summary>SQLITE_BUSY, SQLITE_LOCKED: another process holds a lock on the store.</summary>
    Busy,
    Other,
}

/// <summary>
/// The broker's instruments (System.Diagnostics.Metrics, exported by OpenTelemetry). Tag lists are built once
/// per value so that recording on the hot path does not allocate.
/// </summary>
internal sealed class BrokerMetrics : IDisposable
{
    public const string MeterName = "MqttBroker";

    /// <summary>
    /// Buckets of <c>mqtt.connection.idle_before_death</c>: every usual idle timeout T (ALB 60 s, home routers
    /// 120-300 s, NLB 350 s, firewalls 600-3600 s) is a boundary with another about 7 % above it, so deaths just
    /// after T, which is where a middlebox with timeout T puts them, land in a bucket of their own, (T, 1.07 T].
    /// A few short ones below 30 s for aggressive mobile networks (and the tests).
    /// </summary>
    public static readonly double[] IdleBeforeDeathBuckets =
        [1, 2, 5, 10, 15, 20, 30, 32, 60, 65, 120, 130, 240, 260, 300, 320, 350, 375, 600, 640, 900, 960, 1800, 1920, 3600, 3840];

    private readonly Meter _meter;
    private readonly UpDownCounter<long> _connected;
    private readonly Counter<long> _connectAttempts;
    private readonly Counter<long> _disconnects;
    private readonly Histogram<double> _negotiatedKeepAlive;
    private readonly Counter<long> _keepAliveExpiries;
    private readonly Histogram<double> _tickLag;
    private readonly Histogram<double> _engineLag;
    private readonly Counter<long> _engineBehind;
    private readonly Counter<long> _packetsReceived;
    private readonly Counter<long> _packetsSent;
    private readonly Counter<long> _bytesReceived;
    private readonly Counter<long> _bytesSent;
    private readonly Counter<long> _messagesPublished;
    private readonly Counter<long> _messagesDelivered;
    private readonly Counter<long> _messagesDropped;
    private readonly Counter<long> _acceptErrors;
    private readonly Counter<long> _limitRefusals;
    private readonly KeyValuePair<string, object?>[] _limitTags;
    private readonly Counter<long> _tlsHandshakeFailures;
    private readonly KeyValuePair<string, object?>[] _tlsFailureTags;
    private readonly UpDownCounter<long> _throttled;
    private readonly Counter<double> _throttledTime;
    private readonly Histogram<double> _idleBeforeDeath;
    private readonly Counter<long> _storeCommits;
    private readonly Counter<long> _storeOperations;
    private readonly Histogram<double> _storeCommitDuration;
    private readonly Counter<long> _storeErrors;

    /// <summary>The names a connection's <c>Listener</c> takes; the <c>listener</c> label of <c>mqtt_clients_connected</c>.</summary>
    private static readonly string[] Listeners = ["tcp", "tls", "ws", "wss"];

    private readonly KeyValuePair<string, object?>[] _versionTags;
    // [protocol][listener]: both labels of mqtt.clients.connected, built once.
    private readonly KeyValuePair<string, object?>[][][] _connectedTags;
    private readonly KeyValuePair<string, object?>[] _connectTags;
    private readonly KeyValuePair<string, object?>[] _causeTags;
    private readonly KeyValuePair<string, object?>[] _packetTypeTags;
    private readonly KeyValuePair<string, object?>[] _qosTags;
    private readonly KeyValuePair<string, object?>[] _dropTags;
    private readonly KeyValuePair<string, object?>[] _halfOpenTags;
    private readonly KeyValuePair<string, object?>[] _storeErrorTags;

    public BrokerMetrics(IMeterFactory? meterFactory = null)
    {
        _meter = meterFactory?.Create(MeterName) ?? new Meter(MeterName);
        _connected = _meter.CreateUpDownCounter<long>("mqtt.clients.connected", "{client}", "Clients with an accepted CONNECT, by protocol version and listener");
        _connectAttempts = _meter.CreateCounter<long>("mqtt.connect.attempts", "{attempt}", "CONNECT packets by result");
        _disconnects = _meter.CreateCounter<long>("mqtt.disconnects", "{connection}", "Ended connections by cause");
        _negotiatedKeepAlive = _meter.CreateHistogram<double>("mqtt.keepalive.negotiated", "s", "Keep-alive in force after negotiation",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0, 5, 10, 30, 60, 120, 300, 600, 1200, 3600, 65535] });
        _keepAliveExpiries = _meter.CreateCounter<long>("mqtt.keepalive.expiries", "{connection}", "Connections closed because no packet arrived within 1.5 x keep-alive");
        _tickLag = _meter.CreateHistogram<double>("mqtt.timer_wheel.tick_lag", "s",
            "How much later than its one-tick precision the keep-alive wheel ran (0 when on time); above 0.1 s the broker stalled",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] });
        _engineLag = _meter.CreateHistogram<double>("mqtt.socket_engine.lag", "s",
            "How long a readable socket waited for the socket engine's thread (measured while clients publish); above Broker:Limits:EngineLagMilliseconds publishers are held",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1] });
        _engineBehind = _meter.CreateCounter<long>("mqtt.socket_engine.behind", "{episode}",
            "Times the socket engine fell behind (lag above Broker:Limits:EngineLagMilliseconds) and publishers were held");
        _packetsReceived = _meter.CreateCounter<long>("mqtt.packets.received", "{packet}", "Control packets received, by type");
        _packetsSent = _meter.CreateCounter<long>("mqtt.packets.sent", "{packet}", "Control packets sent, by type");
        _bytesReceived = _meter.CreateCounter<long>("mqtt.network.received", "By", "Bytes received from clients");
        _bytesSent = _meter.CreateCounter<long>("mqtt.network.sent", "By", "Bytes written towards clients");
        _messagesPublished = _meter.CreateCounter<long>("mqtt.messages.published", "{message}", "PUBLISH messages accepted from clients (and wills), by QoS");
        _messagesDelivered = _meter.CreateCounter<long>("mqtt.messages.delivered", "{message}", "PUBLISH messages written to subscribers, by QoS");
        _messagesDropped = _meter.CreateCounter<long>("mqtt.messages.dropped", "{message}", "Messages not delivered, by reason");
        _idleBeforeDeath = _meter.CreateHistogram<double>("mqtt.connection.idle_before_death", "s",
            "How long a connection proven dead (half-open) had been idle, by how it was proven dead",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = IdleBeforeDeathBuckets });

        _throttled = _meter.CreateUpDownCounter<long>("mqtt.clients.throttled", "{client}", "Clients whose socket the broker does not read right now (back-pressure, a credential check)");
        _throttledTime = _meter.CreateCounter<double>("mqtt.clients.throttled.time", "s", "Time clients spent throttled, summed over clients (counted when each throttle ends)");
        _limitRefusals = _meter.CreateCounter<long>("mqtt.limits.refusals", "{refusal}", "Requests refused, or connections closed, at a configured limit (Broker:Limits:*), by limit");
        _limitTags = Tags<LimitKind>("limit");
        _tlsHandshakeFailures = _meter.CreateCounter<long>("mqtt.tls.handshake_failures", "{connection}",
            "TLS handshakes that did not produce a client (TLS and WSS listeners), by reason");
        _acceptErrors = _meter.CreateCounter<long>("mqtt.accept.errors", "{error}", "Failed accepts that made the listener back off (EMFILE, ENFILE, ENOBUFS, ...), by socket error");
        _storeCommits = _meter.CreateCounter<long>("mqtt.persistence.commits", "{transaction}", "Transactions committed by the persistent store (one fsync each)");
        _storeOperations = _meter.CreateCounter<long>("mqtt.persistence.operations", "{operation}", "Operations made durable by the persistent store");
        _storeCommitDuration = _meter.CreateHistogram<double>("mqtt.persistence.commit.duration", "s", "Time to write and fsync one batch",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1] });
        _storeErrors = _meter.CreateCounter<long>("mqtt.persistence.errors", "{error}", "Failed commits of the persistent store, by kind (each retry counts)");

        _versionTags = [Tag("protocol", "3.1.1"), Tag("protocol", "5.0")];
        _connectedTags = _versionTags.Select(v => Listeners.Select(l => new[] { v, Tag("listener", l) }).ToArray()).ToArray();
        _connectTags = Tags<ConnectResult>("result");
        _causeTags = Tags<DisconnectCause>("cause");
        _packetTypeTags = Enumerable.Range(0, 16).Select(i => Tag("type", ((PacketType)i).ToString().ToUpperInvariant())).ToArray();
        _qosTags = [Tag("qos", "0"), Tag("qos", "1"), Tag("qos", "2")];
        _dropTags = Tags<DropReason>("reason");
        _halfOpenTags = Tags<HalfOpenCause>("cause");
        _storeErrorTags = Tags<StoreErrorKind>("kind");
        _tlsFailureTags = Tags<TlsHandshakeFailure>("reason");
    }

    public Meter Meter => _meter;

    private static KeyValuePair<string, object?> Tag(string key, string value) => new(key, value);

    private static KeyValuePair<string, object?>[] Tags<TEnum>(string key) where TEnum : struct, Enum
        => Enum.GetValues<TEnum>().Select(v => Tag(key, DiagnosticNames.Of(v))).ToArray();

    /// <summary>
    /// Creates every labelled counter series at 0 (causes, results, reasons, QoS, protocol), so that rate() and
    /// alert rules see a series from the first scrape instead of "no data" until the first event. Call once a
    /// listener is attached (the host's start): measurements made before that are not seen by it.
    /// </summary>
    public void DeclareSeries()
    {
        foreach (var tags in _connectedTags)
        {
            foreach (var pair in tags)
            {
                _connected.Add(0, pair);
            }
        }
        foreach (var tag in _connectTags)
        {
            _connectAttempts.Add(0, tag);
        }
        foreach (var tag in _causeTags)
        {
            _disconnects.Add(0, tag);
        }
        foreach (var tag in _dropTags)
        {
            _messagesDropped.Add(0, tag);
        }
        foreach (var tag in _qosTags)
        {
            _messagesPublished.Add(0, tag);
            _messagesDelivered.Add(0, tag);
        }
        _keepAliveExpiries.Add(0);
        foreach (var tag in _limitTags)
        {
            _limitRefusals.Add(0, tag);
        }
        _throttled.Add(0);
        _throttledTime.Add(0);
        _engineBehind.Add(0);
        // EMFILE/ENFILE and ENOBUFS/ENOMEM, the accept errors an operator alerts on.
        _acceptErrors.Add(0, Tag("error", DiagnosticNames.ToSnakeCase(nameof(System.Net.Sockets.SocketError.TooManyOpenSockets))));
        _acceptErrors.Add(0, Tag("error", DiagnosticNames.ToSnakeCase(nameof(System.Net.Sockets.SocketError.NoBufferSpaceAvailable))));
        _storeCommits.Add(0);
        _storeOperations.Add(0);
        foreach (var tag in _storeErrorTags)
        {
            _storeErrors.Add(0, tag);
        }
        _bytesReceived.Add(0);
        _bytesSent.Add(0);
        foreach (var tag in _tlsFailureTags)
        {
            _tlsHandshakeFailures.Add(0, tag);
        }
    }

    /// <summary>
    /// <c>mqtt_build_info{version,runtime} 1</c>, the usual way to put the running version on a dashboard, and the
    /// process's file descriptors (the OpenTelemetry process instrumentation has no descriptor count, and every
    /// MQTT connection is one descriptor).
    /// </summary>
    public void ObserveProcess(string version, Func<long?> openDescriptors, Func<long?> maxDescriptors)
    {
        var buildTags = new[] { Tag("version", version), Tag("runtime", Environment.Version.ToString()) };
        _meter.CreateObservableGauge("mqtt.build.info", () => new Measurement<long>(1, buildTags), description: "Always 1; the labels say which build runs");
        _meter.CreateObservableGauge("process.open_fds", () => openDescriptors() is { } n ? [new Measurement<long>(n)] : Array.Empty<Measurement<long>>(),
            description: "File descriptors the process holds (one per MQTT connection, plus ~200 of the runtime's own)");
        _meter.CreateObservableGauge("process.max_fds", () => maxDescriptors() is { } n ? [new Measurement<long>(n)] : Array.Empty<Measurement<long>>(),
            description: "The process's soft limit on file descriptors (RLIMIT_NOFILE)");
    }

    private KeyValuePair<string, object?> Version(MqttProtocolVersion v) => _versionTags[v == MqttProtocolVersion.V500 ? 1 : 0];

    public void ClientConnected(MqttProtocolVersion v, string listener = "tcp") => _connected.Add(1, ConnectedTags(v, listener));
    public void ClientDisconnected(MqttProtocolVersion v, string listener = "tcp") => _connected.Add(-1, ConnectedTags(v, listener));

    private ReadOnlySpan<KeyValuePair<string, object?>> ConnectedTags(MqttProtocolVersion v, string listener)
    {
        int index = Array.IndexOf(Listeners, listener);
        // A listener of a test (any other name) gets its tags built per call: connects are not a hot path.
        return index >= 0 ? _connectedTags[v == MqttProtocolVersion.V500 ? 1 : 0][index] : new[] { Version(v), Tag("listener", listener) };
    }
    public void ConnectAttempt(ConnectResult result) => _connectAttempts.Add(1, _connectTags[(int)result]);
    public void Disconnect(DisconnectCause cause) => _disconnects.Add(1, _causeTags[(int)cause]);
    public void KeepAliveNegotiated(int seconds) => _negotiatedKeepAlive.Record(seconds);
    public void KeepAliveExpired() => _keepAliveExpiries.Add(1);
    public void TickLag(TimeSpan lag) => _tickLag.Record(lag.TotalSeconds);
    public void SocketEngineLag(TimeSpan lag) => _engineLag.Record(lag.TotalSeconds);
    public void SocketEngineBehind() => _engineBehind.Add(1);
    public void PacketReceived(PacketType type) => _packetsReceived.Add(1, _packetTypeTags[(int)type]);
    public void PacketSent(PacketType type) => _packetsSent.Add(1, _packetTypeTags[(int)type]);
    public void BytesReceived(long n) => _bytesReceived.Add(n);
    public void BytesSent(long n) => _bytesSent.Add(n);
    public void MessageReceived(QualityOfService qos) => _messagesPublished.Add(1, _qosTags[(int)qos]);
    public void MessageDelivered(QualityOfService qos) => _messagesDelivered.Add(1, _qosTags[(int)qos]);
    public void MessageDropped(DropReason reason, int count = 1) => _messagesDropped.Add(count, _dropTags[(int)reason]);
    public void IdleBeforeDeath(HalfOpenCause cause, TimeSpan idle) => _idleBeforeDeath.Record(idle.TotalSeconds, _halfOpenTags[(int)cause]);

    public void LimitRefused(LimitKind limit) => _limitRefusals.Add(1, _limitTags[(int)limit]);

    public void ClientThrottled(int delta) => _throttled.Add(delta);
    public void ThrottledFor(TimeSpan duration) => _throttledTime.Add(duration.TotalSeconds);

    // Rare (the listener backs off after each): a tag built per call is fine.
    public void AcceptFailed(System.Net.Sockets.SocketError error) => _acceptErrors.Add(1, Tag("error", DiagnosticNames.ToSnakeCase(error.ToString())));

    public void TlsHandshakeFailed(TlsHandshakeFailure reason) => _tlsHandshakeFailures.Add(1, _tlsFailureTags[(int)reason]);

    public void StoreCommitted(int operations, TimeSpan duration)
    {
        _storeCommits.Add(1);
        _storeOperations.Add(operations);
        _storeCommitDuration.Record(duration.TotalSeconds);
    }

    public void StoreError(StoreErrorKind kind) => _storeErrors.Add(1, _storeErrorTags[(int)kind]);

    /// <summary>Operations appended to the persistent store and not yet durable, read at collection time.</summary>
    public void ObserveStorePending(Func<long> pending)
        => _meter.CreateObservableGauge("mqtt.persistence.pending", pending, "{operation}", "Operations waiting to be committed by the persistent store");

    /// <summary>Gauges read at collection time from the broker's state (sessions, subscriptions, retained, queues).</summary>
    public void ObserveState(Func<IEnumerable<Measurement<long>>> sessions, Func<long> subscriptions, Func<long> retained,
        Func<IEnumerable<Measurement<long>>> pending)
    {
        _meter.CreateObservableGauge("mqtt.sessions", sessions, "{session}", "Sessions by state (online, offline)");
        _meter.CreateObservableGauge("mqtt.subscriptions", subscriptions, "{subscription}", "Subscriptions in the topic tree");
        _meter.CreateObservableGauge("mqtt.retained.messages", retained, "{message}", "Retained messages stored");
        _meter.CreateObservableGauge("mqtt.messages.pending", pending, "{message}",
            "Messages held for sessions: queued (not yet sent) or inflight (QoS 1/2 sent, not yet acknowledged)");
    }

    /// <summary>Gauges of the retained store against its limits (Broker:Limits:MaxRetainedMessages / MaxRetainedBytes).</summary>
    public void ObserveRetainedStore(Func<long> bytes, Func<long> refused)
    {
        _meter.CreateObservableGauge("mqtt.retained.size", bytes, "By", "Bytes of retained messages stored (topic + payload + properties)");
        _meter.CreateObservableCounter("mqtt.retained.refused", refused, "{message}",
            "Retained messages not stored because the store was full (the messages were still delivered)");
    }

    public void Dispose() => _meter.Dispose();
}

/// <summary>The one snake_case name of each cause, result and reason, shared by log lines and metric labels.</summary>
internal static class DiagnosticNames
{
    private static readonly string[] Causes = Enum.GetValues<DisconnectCause>().Select(v => ToSnakeCase(v.ToString())).ToArray();

    public static string Of(DisconnectCause cause) => Causes[(int)cause];

    public static string Of<TEnum>(TEnum value) where TEnum : struct, Enum => ToSnakeCase(value.ToString());

    public static string ToSnakeCase(string name)
    {
        // "QoS0Congestion" is "qos0_congestion", not "qo_s0_congestion".
        name = name.Replace("QoS", "Qos", StringComparison.Ordinal);
        var sb = new System.Text.StringBuilder();
        for (int i = 0; i < name.Length; i++)
        {
            if (char.IsUpper(name[i]) && i > 0 && !char.IsUpper(name[i - 1]))
            {
                sb.Append('_');
            }
            sb.Append(char.ToLowerInvariant(name[i]));
        }
        return sb.ToString();
    }
}
