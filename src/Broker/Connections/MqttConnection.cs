using System.Net;
using System.Net.Sockets;
using Broker.Connections.KeepAlive;
using Broker.Diagnostics;
using Broker.Diagnostics.Insight;
using Broker.Protocol;
using Broker.Routing;
using Broker.Sessions;
using Broker.Transport;

namespace Broker.Connections;

/// <summary>
/// One client connection: its socket I/O and its MQTT state in one object. For plain TCP the object is itself
/// the socket's receive operation (a <see cref="SocketAsyncEventArgs"/> that waits for data with a zero-byte
/// receive), so an idle client costs this object, its socket, its keep-alive entry and its session: no buffers,
/// no pipes, no suspended async methods. Bytes are read into a pooled buffer only while they are in flight and
/// parsed in place; answers are written into a pooled output buffer and sent on the same thread with a
/// non-blocking send, falling back to an asynchronous send only while the client does not keep up.
/// TLS and WebSocket clients plug in through a <see cref="Stream"/> (see MqttConnection.Stream.cs): the same
/// MQTT state machine, with the stream's asynchronous reads and writes instead of the socket fast path.
/// </summary>
/// <remarks>
/// Threads: the receive path (socket completions, or the stream read loop) is the only one that parses input and
/// handles packets; anyone may write into the output under the connection's own monitor (<c>lock (this)</c>: an internal object nobody else locks, so an idle client needs no lock object); one flush runs at a time
/// (<c>_flushState</c>); <see cref="End"/> may be called from any thread (keep-alive wheel, takeover, shutdown)
/// and the MQTT clean-up (session, will, metrics, log) runs exactly once, after the receive path has left the
/// packet it was handling.
/// </remarks>
internal sealed partial class MqttConnection : SocketAsyncEventArgs, IKeepAliveTarget, IDeliveryTarget, IThreadPoolWorkItem
{
    // How long a closing connection may take to flush its last packet (DISCONNECT, refusal CONNACK) and to see
    // the client's FIN while it drains and discards the client's input; then it is reset.
    internal static readonly TimeSpan LingerTimeout = TimeSpan.FromSeconds(2);

    // Lifecycle bits (_lifecycle). Ended: the cause is fixed and no new packet is handled. Processing: the receive
    // path is inside a packet handler. CleanedUp: the MQTT clean-up ran. Closed: the socket or stream is closed.
    private const int Ended = 1;
    private const int Processing = 2;
    private const int CleanedUp = 4;
    private const int Closed = 8;

    private readonly ConnectionServices _services;
    private readonly Socket? _socket;
    private readonly StreamTransport? _stream;
    private readonly KeepAliveDeadline _deadline;

    private int _lifecycle;
    private DisconnectCause _cause = DisconnectCause.SocketClosed;
    private string? _causeDetail;
    // The first transport end (a TransportEndReason), set once with Interlocked.
    private int _transportEndValue;
    // Graceful close: after the last byte is sent the send side is shut down and input is drained until the
    // client's FIN (or the linger deadline).
    private volatile bool _closeGracefully;
    private volatile bool _remoteFinSeen;

    private MqttProtocolVersion _version = MqttProtocolVersion.V311;
    private bool _connected;
    private string _clientId = string.Empty;
    private Session? _session;
    private ushort _keepAlive;
    // When CONNECT was accepted (for the admin API), 0 before.
    private long _connectedTimestamp;

    // Rarely needed per-client state lives in one object created on first use: a will, topic aliases, 5.0 limits
    // other than the defaults, the route buffer of a client that publishes.
    private ConnectionExtras? _extras;
    // 5.0 Request Problem Information: 0 means no Reason String on CONNACK or DISCONNECT [MQTT-3.1.2-29].
    private bool _problemInformation = true;

    public MqttConnection(Socket socket, ConnectionServices services, string listener = "tcp")
        : base(unsafeSuppressExecutionContextFlow: true)
    {
        _socket = socket;
        _services = services;
        Listener = listener;
        _deadline = services.Wheel.Register(this, DeadlineKind.Connect, TimeSpan.FromSeconds(services.KeepAliveOptions.ConnectTimeoutSeconds));
    }

    /// <summary>A connection over a stream (TLS, WebSocket): see <see cref="StreamTransport"/>.</summary>
    public MqttConnection(StreamTransport transport, ConnectionServices services, string listener)
        : base(unsafeSuppressExecutionContextFlow: true)
    {
        _stream = transport;
        _services = services;
        Listener = listener;
        _deadline = services.Wheel.Register(this, DeadlineKind.Connect, TimeSpan.FromSeconds(services.KeepAliveOptions.ConnectTimeoutSeconds));
    }

    // Started while Broker:Limits:MaxConnections were already open (on any listener): its CONNECT is refused.
    private bool _overConnectionLimit;

    /// <summary>Which listener accepted the client ("tcp", "tls", "ws", "wss").</summary>
    public string Listener { get; }

    public string ClientId => _clientId;

    // The client id as log lines show it: control characters escaped, length capped (usually the same string).
    private string LogClientId => Diagnostics.LogText.Escape(_clientId);

    public EndPoint? ClientEndPoint
    {
        get
        {
            if (_stream is not null)
            {
                return _stream.RemoteEndPoint;
            }
            try
            {
                return _socket!.RemoteEndPoint;
            }
            catch (Exception e) when (e is ObjectDisposedException or SocketException)
            {
                return null;
            }
        }
    }

    // Intrusive links of the ConnectionRegistry: a live connection costs the registry two references, not a node.
    internal MqttConnection? RegistryPrevious;
    internal MqttConnection? RegistryNext;
    internal bool InRegistry;

    private bool V5 => _version == MqttProtocolVersion.V500;

    /// <summary>Whether any pooled I/O buffer is held (an idle connection holds none); for tests and diagnostics.</summary>
    internal bool HoldsIoBuffers => Volatile.Read(ref _input) is not null || Volatile.Read(ref _output) is not null || Volatile.Read(ref _sending) is not null;

    // Created once by whichever thread needs it first (receive path, flush loop, router threads).
    private ConnectionExtras Extras => Volatile.Read(ref _extras) ?? Interlocked.CompareExchange(ref _extras, new ConnectionExtras(), null) ?? _extras!;

    /// <summary>Starts reading. Called once, by the listener, on a thread of its choosing.</summary>
    public void Start()
    {
        // Broker:Limits:MaxConnections counts every listener's clients: past it the CONNECT is refused (0x97 / 0x03).
        int max = _services.Limits.MaxConnections;
        _overConnectionLimit = max > 0 && _services.Registry.Count >= max;
        _services.Registry.Add(this);
        if (_stream is not null)
        {
            _ = RunStreamReceiveLoopAsync();
        }
        else
        {
            ReceiveLoop();
        }
    }

    /// <summary>Dispatches one packet. Returns false when the connection must stop handling input.</summary>
    private bool HandleFrame(in MqttFrame frame)
    {
        if (!_connected)
        {
            if (frame.Type != PacketType.Connect)
            {
                // [MQTT-3.1.0-1] the first packet must be CONNECT.
                return Fail(DisconnectCause.ProtocolError, $"first packet was {frame.Type}, not CONNECT", null);
            }
            return HandleConnect(frame);
        }
        switch (frame.Type)
        {
            case PacketType.Publish:
                return HandlePublish(frame);
            case PacketType.PingReq:
                if (frame.RemainingLength != 0)
                {
                    return ProtocolViolation(Errors.NonZeroRemainingLength);
                }
                WritePingResp();
                return true;
            case PacketType.Connect:
                // [MQTT-3.1.0-2] a second CONNECT is a protocol violation.
                return ProtocolViolation(new MqttDecodeError(ReasonCode.ProtocolError, "second CONNECT on one connection [MQTT-3.1.0-2]"));
            case PacketType.PubAck or PacketType.PubRec or PacketType.PubRel or PacketType.PubComp:
                // The acknowledgements of every QoS 1/2 message: decoded without a packet object.
                if (!MqttPacketDecoder.TryDecodePublishResponse(frame, _version, out ushort packetId, out var reasonCode, out var ackError))
                {
                    return ProtocolViolation(ackError);
                }
                return HandlePublishResponse(frame.Type, packetId, reasonCode);
        }
        if (!MqttPacketDecoder.TryDecode(frame, _version, out var packet, out var error))
        {
            return ProtocolViolation(error);
        }
        switch (packet)
        {
            case SubscribePacket subscribe:
                HandleSubscribe(subscribe);
                return true;
            case UnsubscribePacket unsubscribe:
                HandleUnsubscribe(unsubscribe);
                return true;
            case DisconnectPacket disconnect:
                return HandleDisconnect(disconnect);
            case AuthPacket:
                // Enhanced authentication is not offered, so an AUTH packet is unexpected [MQTT-4.12.0-1].
                return ProtocolViolation(new MqttDecodeError(ReasonCode.ProtocolError, "AUTH without an authentication method"));
            default:
                // CONNACK, SUBACK, UNSUBACK, PINGRESP are server-to-client packets.
                return ProtocolViolation(Errors.UnexpectedPacketForServer);
        }
    }

    private bool HandlePublishResponse(PacketType type, ushort packetId, ReasonCode reasonCode)
    {
        var session = _session!;
        OnSendProgress();
        switch (type)
        {
            case PacketType.PubAck:
                session.Complete(packetId, QualityOfService.AtLeastOnce);
                break;
            case PacketType.PubComp:
                session.Complete(packetId, QualityOfService.ExactlyOnce);
                break;
            case PacketType.PubRec when (byte)reasonCode >= 0x80:
                // 5.0: a PUBREC with a failure code ends the exchange [MQTT-4.3.3-4]; the packet id is free again.
                session.Drop(packetId);
                break;
            case PacketType.PubRec:
                bool known = session.Release(packetId);
                // A PUBREL sent before "released" is durable would let a restart resend the PUBLISH.
                WritePublishResponse(PacketType.PubRel, packetId, known || !V5 ? ReasonCode.Success : ReasonCode.PacketIdentifierNotFound,
                    afterStore: known && session.IsPersistent);
                return true;
            case PacketType.PubRel:
                bool pending = session.RemoveInboundQoS2(packetId);
                // [MQTT-4.3.3-11] PUBCOMP for every PUBREL, even a repeated one.
                // A stale stored id would swallow the next message that reuses it after a restart.
                WritePublishResponse(PacketType.PubComp, packetId, pending || !V5 ? ReasonCode.Success : ReasonCode.PacketIdentifierNotFound,
                    afterStore: pending && session.IsPersistent);
                return true;
        }
        // A completed message frees a slot of the in-flight window: more may be sent.
        RequestFlush();
        return true;
    }

    private bool HandleDisconnect(DisconnectPacket disconnect)
    {
        if (V5 && disconnect.Properties?.SessionExpiryInterval is { } expiry)
        {
            // [MQTT-3.14.2-2] a session that was to end with the connection cannot be given an expiry now.
            if (_session!.ExpiryIntervalSeconds == 0 && expiry != 0)
            {
                return ProtocolViolation(new MqttDecodeError(ReasonCode.ProtocolError, "DISCONNECT sets a session expiry after CONNECT set 0 [MQTT-3.14.2-2]"));
            }
            Extras.DisconnectSessionExpiry = Math.Min(expiry, _services.Limits.MaxSessionExpirySeconds);
        }
        bool withWill = V5 && disconnect.ReasonCode == ReasonCode.DisconnectWithWillMessage;
        // [MQTT-3.14.4-3] a normal DISCONNECT discards the will; 0x04 asks for it to be published.
        if (!withWill && _extras is { } extras)
        {
            extras.Will = null;
        }
        End(withWill ? DisconnectCause.ClientDisconnectWithWill : DisconnectCause.ClientDisconnect,
            V5 && disconnect.ReasonCode != ReasonCode.NormalDisconnection ? $"client reason 0x{(byte)disconnect.ReasonCode:X2}" : null,
            graceful: true);
        return false;
    }

    private bool ProtocolViolation(MqttDecodeError error)
    {
        // The escaped id, as every other line has it.
        BrokerLog.ProtocolViolation(_services.Logger, _clientId.Length == 0 ? "(not connected)" : LogClientId, ClientEndPoint, error.ToString());
        var cause = error.Code is ReasonCode.PacketTooLarge or ReasonCode.ReceiveMaximumExceeded
            ? DisconnectCause.LimitExceeded
            : DisconnectCause.ProtocolError;
        return Fail(cause, error.ToString(), error.Code, error.Message);
    }

    /// <summary>
    /// Ends the connection because of the client. In 5.0, after CONNECT, a DISCONNECT with the reason code goes
    /// first [MQTT-4.13.1-1]; before CONNECT there is nobody to tell in the client's version. Either way the close
    /// is graceful (FIN, then the client's input is drained), so a client still writing reads the reason code
    /// instead of losing it to a reset.
    /// </summary>
    private bool Fail(DisconnectCause cause, string detail, ReasonCode? code, string? reasonString = null)
    {
        if (_connected && V5 && code is { } c)
        {
            TryWriteDisconnect(c, reasonString ?? detail);
        }
        End(cause, detail, graceful: true);
        return false;
    }

    /// <summary>
    /// Ends the connection once, whoever calls first; later calls do nothing. Graceful: what was written (a
    /// refusal CONNACK, a DISCONNECT) is flushed, the send side is shut down and input drained until the client's
    /// FIN, all bounded by <see cref="LingerTimeout"/>. Otherwise the socket is reset at once.
    /// </summary>
    internal void End(DisconnectCause cause, string? detail, bool graceful = false) => End(cause, detail, graceful, closeTransport: true);

    private void End(DisconnectCause cause, string? detail, bool graceful, bool closeTransport)
    {
        int seen = Volatile.Read(ref _lifecycle);
        while (true)
        {
            if ((seen & Ended) != 0)
            {
                return;
            }
            int previous = Interlocked.CompareExchange(ref _lifecycle, seen | Ended, seen);
            if (previous == seen)
            {
                break;
            }
            seen = previous;
        }
        _cause = cause;
        _causeDetail = detail;
        lock (this)
        {
            _writesClosed = true;
        }
        if ((seen & Processing) == 0)
        {
            TryCleanup();
        }
        if (graceful && (TransportEndReason)Volatile.Read(ref _transportEndValue) is TransportEndReason.None or TransportEndReason.RemoteClosed)
        {
            _closeGracefully = true;
            // The keep-alive entry becomes the bound on the whole close; if it already fired (this End comes from
            // its expiry) there is nothing to wait for.
            if (!_services.Wheel.Rearm(_deadline, DeadlineKind.Linger, LingerTimeout))
            {
                _closeGracefully = false;
            }
        }
        else
        {
            _services.Wheel.Remove(_deadline);
        }
        if (_closeGracefully)
        {
            // The flush loop shuts the send side down once everything written so far is on the wire.
            RequestFlush();
        }
        else if (closeTransport)
        {
            Abort(TransportEndReason.Aborted);
        }
    }

    /// <summary>Marks the receive path as inside a packet handler; false once the connection has ended.</summary>
    private bool TryEnterProcessing()
    {
        int seen = Volatile.Read(ref _lifecycle);
        while ((seen & Ended) == 0)
        {
            int previous = Interlocked.CompareExchange(ref _lifecycle, seen | Processing, seen);
            if (previous == seen)
            {
                return true;
            }
            seen = previous;
        }
        return false;
    }

    private void ExitProcessing()
    {
        int after = Interlocked.And(ref _lifecycle, ~Processing) & ~Processing;
        if ((after & Ended) != 0)
        {
            TryCleanup();
        }
    }

    private bool IsEnded => (Volatile.Read(ref _lifecycle) & Ended) != 0;

    private bool IsClosed => (Volatile.Read(ref _lifecycle) & Closed) != 0;

    private void TryCleanup()
    {
        int seen = Volatile.Read(ref _lifecycle);
        while (true)
        {
            if ((seen & CleanedUp) != 0 || (seen & Processing) != 0)
            {
                return;
            }
            int previous = Interlocked.CompareExchange(ref _lifecycle, seen | CleanedUp, seen);
            if (previous == seen)
            {
                break;
            }
            seen = previous;
        }
        Cleanup();
    }

    /// <summary>The MQTT side of the end: metrics, the session, the will, the log line. Runs once.</summary>
    private void Cleanup()
    {
        // Every connection ends with one recorded cause, refused and silent ones included.
        _services.Metrics.Disconnect(_cause);
        CancelPendingConnect();
        if (!_connected)
        {
            return;
        }
        _services.Metrics.ClientDisconnected(_version, Listener);
        // The transport's end says whether the peer was proven dead while the broker thought it alive.
        HalfOpenCause? died = _cause switch
        {
            DisconnectCause.ConnectionReset => HalfOpenCause.Reset,
            DisconnectCause.TransportTimeout => HalfOpenCause.TimedOut,
            DisconnectCause.HostUnreachable => HalfOpenCause.HostUnreachable,
            _ => null,
        };
        if (died is { } halfOpen)
        {
            RecordHalfOpenDeath(halfOpen);
        }
        var session = _session!;
        var extras = _extras;
        bool stillOwner = _services.Sessions.Detach(session, this, extras?.DisconnectSessionExpiry);
        if (extras?.Will is { } will && _cause != DisconnectCause.ClientDisconnect)
        {
            uint delay = will.Properties?.WillDelayInterval ?? 0;
            if (stillOwner)
            {
                // [MQTT-3.1.3-9] published when the delay passes or the session ends, whichever is first.
                _services.Wills.Publish(_clientId, BuildWillMessage(will), Math.Min(delay, session.ExpiryIntervalSeconds), _permissions);
            }
            else if (delay == 0)
            {
                // Taken over: the client is already back, so only an undelayed will is still due.
                _services.Wills.Publish(_clientId, BuildWillMessage(will), 0, _permissions);
            }
        }
        BrokerLog.ClientDisconnected(_services.Logger, LogClientId, VersionText, _keepAlive, _cause,
            _causeDetail is null ? string.Empty : ": " + _causeDetail);
    }

    /// <summary>
    /// The transport ended on its own (FIN, reset, kernel keep-alive time-out): that is the connection's end reason
    /// unless one was already recorded.
    /// </summary>
    private void TransportEnded(TransportEndReason reason, SocketError error)
    {
        bool first = Interlocked.CompareExchange(ref _transportEndValue, (int)reason, (int)TransportEndReason.None) == (int)TransportEndReason.None;
        if (reason == TransportEndReason.RemoteClosed)
        {
            // The client half-closed. What was written to it still goes out; the flush loop closes after it.
            _remoteFinSeen = true;
            if (!IsEnded)
            {
                End(DisconnectCause.SocketClosed, null, graceful: true);
            }
            else
            {
                RequestFlush();
            }
            return;
        }
        if (first && !IsEnded)
        {
            var cause = reason switch
            {
                TransportEndReason.Reset => DisconnectCause.ConnectionReset,
                TransportEndReason.TimedOut => DisconnectCause.TransportTimeout,
                TransportEndReason.Unreachable => DisconnectCause.HostUnreachable,
                _ => DisconnectCause.SocketError,
            };
            End(cause, error == SocketError.Success ? null : error.ToString());
        }
        Abort(reason);
    }

    private string VersionText => V5 ? "5.0" : "3.1.1";

    /// <summary>A connection proven dead while the broker thought it alive, with its idle time and K (keep-alive insight).</summary>
    private void RecordHalfOpenDeath(HalfOpenCause cause)
    {
        if (_connected && _services.Insight is { } insight && ClientEndPoint is IPEndPoint remote)
        {
            insight.ConnectionDied(remote.Address, cause, _services.Time.GetElapsedTime(_deadline.LastActivityTimestamp), _keepAlive);
        }
    }

    private ApplicationMessage BuildWillMessage(WillMessage will)
    {
        var props = will.Properties;
        MqttProperties? forwarded = null;
        if (props is not null)
        {
            forwarded = props.Clone();
            forwarded.WillDelayInterval = null;
            forwarded.MessageExpiryInterval = null;
        }
        return new ApplicationMessage
        {
            Topic = will.Topic,
            TopicUtf8 = System.Text.Encoding.UTF8.GetBytes(will.Topic),
            Payload = will.Payload,
            QoS = will.QoS,
            Retain = will.Retain,
            Properties = forwarded is { IsEmpty: false } ? forwarded : null,
            PublisherClientId = _clientId,
            ExpiryIntervalSeconds = props?.MessageExpiryInterval,
            ReceivedTimestamp = _services.Time.GetTimestamp(),
        };
    }

    // IKeepAliveTarget

    /// <summary>
    /// Input is waiting that the receive path has not handled yet: in the kernel, or being handled now. Not while a
    /// CONNECT's password is verified: the broker does not read then on purpose, which is no stall, so the connect
    /// deadline applies as it is.
    /// </summary>
    public bool HasUnreadInput => (Volatile.Read(ref _holdReasons) & (int)HoldReason.Authentication) == 0
        && (Volatile.Read(ref _receiving) || TransportAvailable() > 0);

    public void OnDeadlineExpired(in DeadlineExpiry expiry)
    {
        switch (expiry.Kind)
        {
            case DeadlineKind.Connect:
                BrokerLog.ConnectTimeout(_services.Logger, ClientEndPoint, expiry.Timeout.TotalSeconds);
                End(DisconnectCause.ConnectTimeout, $"no CONNECT within {expiry.Timeout.TotalSeconds}s");
                return;
            case DeadlineKind.Linger:
                // The client neither read our last packet nor closed within the linger time.
                Abort(TransportEndReason.Aborted);
                return;
            case DeadlineKind.SendStall:
                OnStallWatchExpired();
                return;
            case DeadlineKind.PartialPacket:
                _services.Metrics.LimitRefused(LimitKind.PartialPacketTimeout);
                End(DisconnectCause.PartialPacketTimeout,
                    $"a packet begun was not complete within {expiry.Timeout.TotalSeconds:0.###}s (Broker:Limits:PartialPacketTimeoutSeconds)");
                return;
        }
        _services.Metrics.KeepAliveExpired();
        // The MQTT keep-alive proved the connection dead.
        if (!IsEnded)
        {
            RecordHalfOpenDeath(HalfOpenCause.KeepAliveExpired);
        }
        BrokerLog.KeepAliveTimeout(_services.Logger, LogClientId, VersionText, _keepAlive, expiry.Elapsed.TotalSeconds, expiry.Timeout.TotalSeconds);
        // Terminated at once: the peer is presumed gone and cannot take part in a close handshake. A 5.0 client
        // is told why (0x8D) when the packet goes out right now with one non-blocking send on this thread; then
        // the socket is closed with a FIN so that a live but silent client still reads it. Anything else is a reset.
        bool told = V5 && TryWriteDisconnect(ReasonCode.KeepAliveTimeout, $"no packet within {expiry.Timeout.TotalSeconds:0.###}s (keep-alive {_keepAlive}s)", flush: false)
            && TryStartFlush();
        if (told)
        {
            RunFlush();
            told = PendingOutputBytes == 0;
        }
        End(DisconnectCause.KeepAliveTimeout, $"no packet for {expiry.Elapsed.TotalSeconds:F3}s", graceful: false, closeTransport: false);
        if (told)
        {
            CloseTransport(TransportEndReason.LocalClosed, abortive: false);
        }
        else
        {
            Abort(TransportEndReason.Aborted);
        }
    }

    // IDeliveryTarget

    public void NotifyPending() => RequestFlush();

    /// <summary>Another connection took the session over [MQTT-3.1.4-3].</summary>
    public void TakeOver()
    {
        // The client is back on another connection while this one still looked alive: the strongest evidence.
        if (!IsEnded)
        {
            RecordHalfOpenDeath(HalfOpenCause.Takeover);
        }
        if (V5)
        {
            TryWriteDisconnect(ReasonCode.SessionTakenOver, "another connection with the same client id");
        }
        End(DisconnectCause.Takeover, "another connection with the same client id", graceful: true);
    }

    /// <summary>Broker shutdown: tell 5.0 clients (0x8B), flush, close.</summary>
    public void Shutdown()
    {
        if (_connected && V5)
        {
            TryWriteDisconnect(ReasonCode.ServerShuttingDown, "server shutting down");
        }
        End(DisconnectCause.ServerShutdown, null, graceful: true);
    }

    /// <summary>What only some clients need, kept out of every idle connection.</summary>
    private sealed class ConnectionExtras
    {
        public WillMessage? Will;
        public string? UserName;
        public uint? DisconnectSessionExpiry;
        public KeepAliveDeadline? StallWatch;
        public KeepAliveDeadline? PartialPacketWatch;
        public bool PartialPacketWatchArmed;
        public bool StallWatchArmed;
        public long LastDropLog;
        public long DroppedQoS0;
        public long DroppedQueued;
        public RouteBuffer? RouteBuffer;
        public Dictionary<string, ushort>? OutboundAliases;
        public Dictionary<ushort, string>? InboundAliases;
        public PendingConnect? PendingConnect;
    }

    /// <summary>What the admin API shows of an accepted client (built on request; nothing is kept for it); null before CONNECT.</summary>
    internal ConnectionFacts? Facts => Volatile.Read(ref _connectedTimestamp) is var at and not 0
        ? new ConnectionFacts(_clientId, _version, _keepAlive, ClientEndPoint, _extras?.UserName, at)
        : null;

    internal long LastActivityTimestamp => _deadline.LastActivityTimestamp;

    internal Session? Session => _session;

    /// <summary>The operator asked for this client to go (5.0: DISCONNECT 0x98 Administrative action).</summary>
    internal void DisconnectByAdministrator(string reason)
    {
        if (V5)
        {
            TryWriteDisconnect(ReasonCode.AdministrativeAction, reason);
        }
        End(DisconnectCause.AdministrativeAction, reason, graceful: true);
    }
}
