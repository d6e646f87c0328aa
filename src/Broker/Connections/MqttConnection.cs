using System.Buffers;
using System.IO.Pipelines;
using Broker.Connections.KeepAlive;
using Broker.Diagnostics;
using Broker.Protocol;
using Broker.Routing;
using Broker.Sessions;

namespace Broker.Connections;

/// <summary>
/// One client connection: the MQTT state machine. It is the only reader of its input pipe and the only
/// writer of its output pipe. The read loop decodes and handles packets synchronously; everything it
/// answers and every message for the session is written under one lock and flushed by the send loop,
/// so a slow subscriber never blocks the read loop and PINGRESP goes out at once.
/// </summary>
internal sealed partial class MqttConnection : IKeepAliveTarget, IDeliveryTarget
{
    private static readonly TimeSpan GracefulFlushTimeout = TimeSpan.FromSeconds(2);
    // The DISCONNECT 0x8D is only written when the socket is not congested, so its flush is immediate;
    // the bound keeps a dead peer from holding the termination.
    private static readonly TimeSpan KeepAliveDisconnectFlushTimeout = TimeSpan.FromMilliseconds(100);
    private const int MaxMessagesPerFlush = 256;

    private readonly IConnectionTransport _transport;
    private readonly ConnectionServices _services;
    private readonly object _writeLock = new();
    private readonly SendSignal _sendSignal = new();
    private RouteBuffer? _routeBuffer;
    private readonly KeepAliveDeadline _deadline;

    private MqttProtocolVersion _version = MqttProtocolVersion.V311;
    private bool _connected;
    private string _clientId = string.Empty;
    private Session? _session;
    private WillMessage? _will;
    private ushort _requestedKeepAlive;
    private ushort _keepAlive;
    private int _endState;
    private DisconnectCause _cause = DisconnectCause.SocketClosed;
    private string? _causeDetail;
    private bool _publishWill = true;
    private uint? _disconnectSessionExpiry;
    private long _bytesSeen;
    private long _bytesConsumed;
    private int _overflowReported;
    // The thread running the read loop's current batch (0 between batches), and whether it wrote anything.
    private int _readLoopThread;
    private bool _wroteInReadLoop;
    private bool _writesClosed;
    private bool _graceful;
    private TimeSpan _gracefulFlushTimeout;
    private ITimer? _closeTimer;

    // Negotiated limits of the client (5.0), defaults for 3.1.1.
    private int _clientReceiveMaximum = ushort.MaxValue;
    private uint _clientMaximumPacketSize = uint.MaxValue;
    private int _clientTopicAliasMaximum;
    private Dictionary<string, ushort>? _outboundAliases;
    private Dictionary<ushort, string>? _inboundAliases;
    // HOOK(conformance): 5.0 Request Problem Information; 0 means no Reason String on CONNACK/DISCONNECT.
    private bool _problemInformation = true;

    public MqttConnection(IConnectionTransport transport, ConnectionServices services)
    {
        _transport = transport;
        _services = services;
        _deadline = services.Wheel.Register(this, DeadlineKind.Connect, TimeSpan.FromSeconds(services.KeepAliveOptions.ConnectTimeoutSeconds));
    }

    private bool V5 => _version == MqttProtocolVersion.V500;

    /// <summary>Runs the connection to its end; never throws.</summary>
    public async Task RunAsync()
    {
        _services.Registry.Add(this);
        var sendLoop = SendLoopAsync();
        // The read loop lives in this method (not a separate async method) so an idle connection keeps one
        // suspended state machine for reading, not two.
        try
        {
            var input = _transport.Input;
            int maxPacketSize = _services.Limits.MaxPacketSize;
            while (Volatile.Read(ref _endState) == 0)
            {
                ReadResult result;
                try
                {
                    result = await input.ReadAsync();
                }
                catch (Exception ex) when (ex is not OutOfMemoryException)
                {
                    SetCause(DisconnectCause.SocketError, ex.Message);
                    return;
                }
                var buffer = result.Buffer;
                long before = buffer.Length;
                bool keepGoing = true;
                Volatile.Write(ref _readLoopThread, Environment.CurrentManagedThreadId);
                while (keepGoing)
                {
                    var status = MqttFrameReader.TryReadFrame(buffer, maxPacketSize, out var frame, out var error);
                    if (status == ReadStatus.NeedMoreData)
                    {
                        break;
                    }
                    if (status == ReadStatus.Error)
                    {
                        ProtocolViolation(error);
                        keepGoing = false;
                        break;
                    }
                    // [MQTT-3.1.2-24] any control packet counts as activity, not only PINGREQ.
                    _deadline.Touch();
                    _services.Metrics.PacketReceived(frame.Type);
                    keepGoing = HandleFrame(frame);
                    buffer = buffer.Slice(frame.End);
                }
                EndReadBatch();
                // Seen = consumed so far plus the partial packet still buffered: a half packet is not "unread input".
                _bytesConsumed += before - buffer.Length;
                Volatile.Write(ref _bytesSeen, _bytesConsumed + buffer.Length);
                _services.Metrics.BytesReceived(before - buffer.Length);
                input.AdvanceTo(buffer.Start, buffer.End);
                if (!keepGoing)
                {
                    return;
                }
                if (result.IsCompleted || result.IsCanceled)
                {
                    if (buffer.Length > 0)
                    {
                        SetCause(DisconnectCause.SocketClosed, "connection closed inside a packet");
                    }
                    else
                    {
                        SetCause(DisconnectCause.SocketClosed, null);
                    }
                    return;
                }
            }
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            if (Volatile.Read(ref _endState) == 0)
            {
                BrokerLog.ConnectionFault(_services.Logger, _clientId, ex);
                End(DisconnectCause.SocketError, ex.Message);
            }
        }
        finally
        {
            End(_cause, _causeDetail);
            _sendSignal.Complete();
            try
            {
                await sendLoop;
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                // The send loop ends with the transport; its errors are the transport's end reason.
                _ = ex;
            }
            Cleanup();
        }
    }

    /// <summary>Dispatches one packet. Returns false when the connection must stop reading.</summary>
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
                lock (_writeLock)
                {
                    MqttPacketWriter.WritePingResp(_transport.Output);
                }
                _services.Metrics.PacketSent(PacketType.PingResp);
                _services.Metrics.BytesSent(2);
                RingDoorbell();
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
                WritePublishResponse(PacketType.PubRel, packetId, known || !V5 ? ReasonCode.Success : ReasonCode.PacketIdentifierNotFound);
                return true;
            case PacketType.PubRel:
                bool pending = session.RemoveInboundQoS2(packetId);
                // [MQTT-4.3.3-11] PUBCOMP for every PUBREL, even a repeated one.
                WritePublishResponse(PacketType.PubComp, packetId, pending || !V5 ? ReasonCode.Success : ReasonCode.PacketIdentifierNotFound);
                return true;
        }
        // A completed message frees a slot of the in-flight window: more may be sent.
        RingDoorbell();
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
            _disconnectSessionExpiry = Math.Min(expiry, _services.Limits.MaxSessionExpirySeconds);
        }
        bool withWill = V5 && disconnect.ReasonCode == ReasonCode.DisconnectWithWillMessage;
        // [MQTT-3.14.4-3] a normal DISCONNECT discards the will; 0x04 asks for it to be published.
        _publishWill = withWill;
        SetCause(withWill ? DisconnectCause.ClientDisconnectWithWill : DisconnectCause.ClientDisconnect,
            V5 && disconnect.ReasonCode != ReasonCode.NormalDisconnection ? $" (client reason 0x{(byte)disconnect.ReasonCode:X2})" : null);
        End(_cause, _causeDetail, graceful: true);
        return false;
    }

    private bool ProtocolViolation(MqttDecodeError error)
    {
        BrokerLog.ProtocolViolation(_services.Logger, _clientId.Length == 0 ? "(not connected)" : _clientId, _transport.RemoteEndPoint, error.ToString());
        var cause = error.Code is ReasonCode.PacketTooLarge or ReasonCode.ReceiveMaximumExceeded
            ? DisconnectCause.LimitExceeded
            : DisconnectCause.ProtocolError;
        return Fail(cause, error.ToString(), error.Code, error.Message); // HOOK(conformance): Reason String
    }

    /// <summary>
    /// Ends the connection because of the client. In 5.0, after CONNECT, a DISCONNECT with the reason code
    /// goes first [MQTT-4.13.1-1]; before CONNECT there is nobody to tell in the client's version.
    /// </summary>
    private bool Fail(DisconnectCause cause, string detail, ReasonCode? code, string? reasonString = null) // HOOK(conformance): reasonString
    {
        SetCause(cause, detail);
        if (_connected && V5 && code is { } c)
        {
            TryWriteDisconnect(c, reasonString ?? detail); // HOOK(conformance)
            End(cause, detail, graceful: true);
        }
        else
        {
            End(cause, detail);
        }
        return false;
    }

    private void SetCause(DisconnectCause cause, string? detail)
    {
        if (Volatile.Read(ref _endState) == 0)
        {
            _cause = cause;
            _causeDetail = detail;
        }
    }

    /// <summary>
    /// Ends the connection once, whoever calls first. Graceful lets the send loop flush what was written
    /// (a CONNACK refusal, a DISCONNECT) within the timeout and then close; otherwise the socket is closed at once.
    /// </summary>
    private void End(DisconnectCause cause, string? detail, bool graceful = false, TimeSpan? flushTimeout = null)
    {
        if (Interlocked.CompareExchange(ref _endState, 1, 0) != 0)
        {
            return;
        }
        _cause = cause;
        _causeDetail = detail;
        _services.Wheel.Remove(_deadline);
        lock (_writeLock)
        {
            _writesClosed = true;
        }
        if (graceful)
        {
            var timeout = flushTimeout ?? GracefulFlushTimeout;
            _gracefulFlushTimeout = timeout;
            Volatile.Write(ref _graceful, true);
            // A client that does not read cannot hold the close: the flush is cancelled after the timeout.
            _closeTimer = _services.Time.CreateTimer(static state => ((MqttConnection)state!)._transport.Output.CancelPendingFlush(),
                this, timeout, Timeout.InfiniteTimeSpan);
            _sendSignal.Complete();
        }
        else
        {
            _sendSignal.Complete();
            _transport.Abort(cause.ToString());
        }
    }

    private bool TryWriteDisconnect(ReasonCode code, string? reason) // HOOK(conformance): reason
    {
        // Only when the client reads: a DISCONNECT stuck behind a full pipe would hold the close.
        if (_transport.IsOutputCongested)
        {
            return false;
        }
        var packet = new DisconnectPacket { ReasonCode = code };
        ProblemInformation.Attach(packet, reason, _problemInformation, _clientMaximumPacketSize); // HOOK(conformance)
        return WritePacket(packet);
    }

    private void Cleanup()
    {
        _services.Registry.Remove(this);
        _services.Wheel.Remove(_deadline);
        // Every connection ends with one recorded cause, refused and silent ones included.
        _services.Metrics.Disconnect(_cause);
        if (!_connected)
        {
            return;
        }
        _services.Metrics.ClientDisconnected(_version);
        var session = _session!;
        bool stillOwner = _services.Sessions.Detach(session, this, _disconnectSessionExpiry);
        if (_will is { } will && _publishWill)
        {
            uint delay = will.Properties?.WillDelayInterval ?? 0;
            if (stillOwner)
            {
                // [MQTT-3.1.3-9] published when the delay passes or the session ends, whichever is first.
                _services.Wills.Publish(_clientId, BuildWillMessage(will), Math.Min(delay, session.ExpiryIntervalSeconds));
            }
            else if (delay == 0)
            {
                // Taken over: the client is already back, so only an undelayed will is still due.
                _services.Wills.Publish(_clientId, BuildWillMessage(will), 0);
            }
        }
        BrokerLog.ClientDisconnected(_services.Logger, _clientId, VersionText, _keepAlive, _cause,
            _causeDetail is null ? string.Empty : (_causeDetail.StartsWith(' ') ? _causeDetail : ": " + _causeDetail));
    }

    private string VersionText => V5 ? "5.0" : "3.1.1";

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

    /// <summary>Input is waiting that the read loop has not seen: in the socket, or in the pipe.</summary>
    public bool HasUnreadInput => _transport.HasUnreadInput || _transport.BytesReceived > Volatile.Read(ref _bytesSeen);

    public void OnDeadlineExpired(in DeadlineExpiry expiry)
    {
        if (expiry.Kind == DeadlineKind.Connect)
        {
            BrokerLog.ConnectTimeout(_services.Logger, _transport.RemoteEndPoint, expiry.Timeout.TotalSeconds);
            End(DisconnectCause.ConnectTimeout, $"no CONNECT within {expiry.Timeout.TotalSeconds}s");
            return;
        }
        _services.Metrics.KeepAliveExpired();
        BrokerLog.KeepAliveTimeout(_services.Logger, _clientId, VersionText, _keepAlive, expiry.Elapsed.TotalSeconds, expiry.Timeout.TotalSeconds);
        // Terminated at once: the peer is presumed gone and cannot take part in a close handshake.
        bool told = V5 && TryWriteDisconnect(ReasonCode.KeepAliveTimeout, $"no packet within {expiry.Timeout.TotalSeconds:0.###}s (keep-alive {_keepAlive}s)"); // HOOK(conformance)
        End(DisconnectCause.KeepAliveTimeout, $"no packet for {expiry.Elapsed.TotalSeconds:F3}s",
            graceful: told, flushTimeout: KeepAliveDisconnectFlushTimeout);
    }

    // IDeliveryTarget

    public void NotifyPending() => RingDoorbell();

    public void OnQueueOverflow()
    {
        if (Interlocked.Exchange(ref _overflowReported, 1) != 0)
        {
            return;
        }
        // Called under the session's lock: end the connection from the thread pool, not here.
        ThreadPool.UnsafeQueueUserWorkItem(static c =>
        {
            BrokerLog.SlowConsumer(c._services.Logger, c._clientId, c._session?.PendingCount ?? 0);
            if (c.V5)
            {
                c.TryWriteDisconnect(ReasonCode.QuotaExceeded, "queue of QoS 1/2 messages full: the client reads too slowly"); // HOOK(conformance)
            }
            c.End(DisconnectCause.SlowConsumer, "queue of QoS 1/2 messages full");
        }, this, preferLocal: false);
    }

    /// <summary>Another connection took the session over [MQTT-3.1.4-3].</summary>
    public void TakeOver()
    {
        if (V5)
        {
            TryWriteDisconnect(ReasonCode.SessionTakenOver, "another connection with the same client id"); // HOOK(conformance)
        }
        End(DisconnectCause.Takeover, "another connection with the same client id", graceful: V5);
    }

    /// <summary>Broker shutdown: tell 5.0 clients (0x8B), flush, close.</summary>
    public Task ShutdownAsync()
    {
        if (_connected && V5)
        {
            TryWriteDisconnect(ReasonCode.ServerShuttingDown, "server shutting down"); // HOOK(conformance)
        }
        End(DisconnectCause.ServerShutdown, null, graceful: true);
        return Task.CompletedTask;
    }
}
