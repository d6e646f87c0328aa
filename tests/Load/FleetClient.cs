using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Broker.Protocol;

namespace Broker.Load;

internal enum ClientState
{
    Idle,
    Connecting,
    AwaitingConnack,
    Connected,
    Closed,
}

/// <summary>
/// One simulated device: a raw non-blocking socket, one receive operation in flight at a time into
/// a fixed slice of a shared slab, and no timer of its own (the <see cref="Fleet"/> tick decides
/// when it pings or publishes). Every connection attempt ends in exactly one terminal event,
/// decided by the state exchange in <see cref="Terminate"/>.
/// </summary>
internal sealed class FleetClient : IFrameHandler
{
    // IPPROTO_IP / IP_BIND_ADDRESS_NO_PORT (linux/in.h): the kernel picks the source port at
    // connect time from the full 4-tuple, so bind(addr, 0) does not reserve a port by itself.
    private const int IpProtocolIp = 0;
    private const int IpBindAddressNoPort = 24;
    private static readonly byte[] s_one = BitConverter.GetBytes(1);

    private readonly Fleet _fleet;
    private readonly ReceiveBuffer _receive;
    private readonly byte _version;
    private readonly byte[] _connect;
    private readonly EventHandler<SocketAsyncEventArgs> _onCompleted;
    private readonly Lock _sendLock = new();
    private Socket? _socket;
    private SocketAsyncEventArgs? _args;
    private long _receivedTicks;
    private byte[]? _pendingSend;
    private int _pendingLength;
    private bool _flushQueued;
    private int _state;

    public FleetClient(Fleet fleet, int index, string clientId, byte[] receiveSlab, int receiveOffset, int receiveCapacity)
    {
        _fleet = fleet;
        Index = index;
        ClientId = clientId;
        _receive = new ReceiveBuffer(receiveSlab, receiveOffset, receiveCapacity);
        _version = fleet.Options.ProtocolVersion;
        // Encoded once: reconnect storms resend the same bytes.
        _connect = Wire.Connect(_version, clientId, (ushort)fleet.Options.KeepAliveSeconds, fleet.Options.CleanStart);
        _onCompleted = OnCompleted;
    }

    public int Index { get; }
    public string ClientId { get; }
    public ClientState State => (ClientState)Volatile.Read(ref _state);

    public long ConnectStartTicks;
    public long LastSendTicks;
    public long PingSentTicks;
    public volatile bool Silent;

    // Stopwatch ticks until which this client does not read its socket (a stalled subscriber); 0 = reading.
    private long _readPausedUntil;
    private SocketAsyncEventArgs? _parkedReceive;

    /// <summary>Stops reading the socket until <paramref name="untilTicks"/> (Stopwatch); the fleet's tick resumes it.</summary>
    public void PauseReading(long untilTicks) => Volatile.Write(ref _readPausedUntil, untilTicks);

    /// <summary>Called by the fleet's tick: reading goes on when the pause is over. True once resumed.</summary>
    public bool TryResumeReading(long now)
    {
        if (now < Volatile.Read(ref _readPausedUntil))
        {
            return false;
        }
        var args = Interlocked.Exchange(ref _parkedReceive, null);
        if (args is not null)
        {
            ThreadPool.UnsafeQueueUserWorkItem(static s => s.client.ReceiveLoop(s.args), (client: this, args), preferLocal: false);
        }
        return true;
    }

    public void StartConnect(EndPoint broker, IPAddress? source)
    {
        Socket? socket = null;
        try
        {
            socket = new Socket(broker.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true, Blocking = false };
            if (source is not null)
            {
                if (OperatingSystem.IsLinux())
                {
                    socket.SetRawSocketOption(IpProtocolIp, IpBindAddressNoPort, s_one);
                }

                socket.Bind(new IPEndPoint(source, 0));
            }
        }
        catch (SocketException e)
        {
            socket?.Dispose();
            Volatile.Write(ref _state, (int)ClientState.Connecting);
            ConnectStartTicks = Stopwatch.GetTimestamp();
            Terminate(Fleet.KindOf(e.SocketErrorCode, "socket-"));
            return;
        }

        var args = new SocketAsyncEventArgs { RemoteEndPoint = broker };
        args.Completed += _onCompleted;
        lock (_sendLock)
        {
            _socket = socket;
            _args = args;
            _receive.Reset();
            _pendingLength = 0;
        }

        PingSentTicks = 0;
        Silent = false;
        ConnectStartTicks = Stopwatch.GetTimestamp();
        Volatile.Write(ref _state, (int)ClientState.Connecting);
        bool pending;
        try
        {
            pending = socket.ConnectAsync(args);
        }
        catch (SocketException e)
        {
            Terminate(Fleet.KindOf(e.SocketErrorCode, "connect-"));
            return;
        }

        if (!pending)
        {
            OnConnectCompleted(args);
        }
    }

    /// <summary>Sends one packet, or queues the unsent tail of it; false when the socket is backed up or gone.</summary>
    public bool TrySend(ReadOnlySpan<byte> packet)
    {
        lock (_sendLock)
        {
            Socket? socket = _socket;
            if (socket is null || State is ClientState.Closed or ClientState.Idle)
            {
                return false;
            }

            return SendLocked(socket, packet);
        }
    }

    private bool SendLocked(Socket socket, ReadOnlySpan<byte> packet)
    {
        if (_pendingLength > 0 && !FlushPendingLocked(socket))
        {
            return false;
        }

        int sent = socket.Send(packet, SocketFlags.None, out SocketError error);
        if (error is not SocketError.Success and not SocketError.WouldBlock)
        {
            TerminateLater(Fleet.KindOf(error, "send-"));
            return false;
        }

        if (sent == 0 && error == SocketError.WouldBlock)
        {
            return false;
        }

        LastSendTicks = Stopwatch.GetTimestamp();
        if (sent < packet.Length)
        {
            QueueTailLocked(packet[sent..]);
        }

        return true;
    }

    public bool HasPendingSend => Volatile.Read(ref _pendingLength) > 0;

    /// <summary>Called by the fleet tick for clients whose last send was partial; true when drained.</summary>
    public bool FlushPending()
    {
        lock (_sendLock)
        {
            _flushQueued = false;
            if (_socket is not { } socket || _pendingLength == 0)
            {
                return true;
            }

            bool drained = FlushPendingLocked(socket);
            if (!drained)
            {
                _flushQueued = true;
            }

            return drained;
        }
    }

    /// <summary>Our own close: no terminal event is reported, whatever the broker does afterwards.</summary>
    public void Close(bool sendDisconnect, bool abortive)
    {
        // Closed first: the broker's close in answer to our DISCONNECT is then not a surprise.
        int previous = Interlocked.Exchange(ref _state, (int)ClientState.Closed);
        if (previous == (int)ClientState.Connected)
        {
            _fleet.OnClosedByUs(this);
            if (sendDisconnect)
            {
                lock (_sendLock)
                {
                    if (_socket is { } socket)
                    {
                        SendLocked(socket, Wire.Disconnect(_version));
                    }
                }
            }
        }

        DisposeSocket(abortive);
    }

    /// <summary>Ends the current attempt once; the first caller's kind is the one recorded.</summary>
    public void Terminate(string kind, int reasonCode = -1)
    {
        int previous = Interlocked.Exchange(ref _state, (int)ClientState.Closed);
        switch ((ClientState)previous)
        {
            case ClientState.Connecting:
            case ClientState.AwaitingConnack:
                _fleet.OnConnectFailed(this, kind);
                break;
            case ClientState.Connected:
                _fleet.OnClosedByBroker(this, kind, reasonCode);
                break;
        }

        DisposeSocket(abortive: false);
    }

    // A send error inside the send lock must not re-enter the lock through DisposeSocket.
    private void TerminateLater(string kind) => ThreadPool.UnsafeQueueUserWorkItem(static s => s.client.Terminate(s.kind), (client: this, kind), preferLocal: false);

    private void DisposeSocket(bool abortive)
    {
        Socket? socket;
        lock (_sendLock)
        {
            socket = _socket;
            _socket = null;
            _pendingLength = 0;
        }

        if (socket is null)
        {
            return;
        }

        try
        {
            if (abortive)
            {
                socket.LingerState = new LingerOption(true, 0);
            }

            socket.Dispose();
        }
        catch (SocketException)
        {
        }
        catch (ObjectDisposedException)
        {
        }
    }

    private void OnCompleted(object? sender, SocketAsyncEventArgs args)
    {
        // A completion of an earlier attempt (its socket was closed) must not touch the current one.
        if (!ReferenceEquals(args, Volatile.Read(ref _args)))
        {
            return;
        }

        if (args.LastOperation == SocketAsyncOperation.Connect)
        {
            OnConnectCompleted(args);
        }
        else if (ProcessReceive(args))
        {
            ReceiveLoop(args);
        }
    }

    private void OnConnectCompleted(SocketAsyncEventArgs args)
    {
        if (args.SocketError != SocketError.Success)
        {
            Terminate(Fleet.KindOf(args.SocketError, ""));
            return;
        }

        if (Interlocked.CompareExchange(ref _state, (int)ClientState.AwaitingConnack, (int)ClientState.Connecting) != (int)ClientState.Connecting)
        {
            return;
        }

        if (!TrySend(_connect))
        {
            Terminate("send-connect");
            return;
        }

        args.SetBuffer(_receive.Slab, _receive.FreeOffset, _receive.FreeCount);
        ReceiveLoop(args);
    }

    private void ReceiveLoop(SocketAsyncEventArgs args)
    {
        while (true)
        {
            Socket? socket = _socket;
            if (socket is null)
            {
                return;
            }

            if (Volatile.Read(ref _readPausedUntil) > System.Diagnostics.Stopwatch.GetTimestamp())
            {
                // Stalled on purpose: nothing is posted, the kernel's buffers fill, the broker sees a client that does not read.
                Volatile.Write(ref _parkedReceive, args);
                _fleet.Park(this);
                return;
            }

            bool pending;
            try
            {
                pending = socket.ReceiveAsync(args);
            }
            catch (ObjectDisposedException)
            {
                return;
            }

            if (pending || !ProcessReceive(args))
            {
                return;
            }
        }
    }

    /// <summary>Frames and handles everything received; false when the connection is over.</summary>
    private bool ProcessReceive(SocketAsyncEventArgs args)
    {
        if (args.SocketError != SocketError.Success)
        {
            Terminate(Fleet.KindOf(args.SocketError, ""));
            return false;
        }

        if (args.BytesTransferred == 0)
        {
            Terminate("closed");
            return false;
        }

        _receivedTicks = Stopwatch.GetTimestamp();
        switch (_receive.Commit(args.BytesTransferred, this))
        {
            case ReceiveOutcome.Stopped:
                return false;
            case ReceiveOutcome.Malformed:
                Terminate("malformed");
                return false;
            case ReceiveOutcome.FrameTooLarge:
                Terminate("frame-too-large");
                return false;
        }

        if (_receive.FreeCount == 0)
        {
            Terminate("frame-too-large");
            return false;
        }

        args.SetBuffer(_receive.FreeOffset, _receive.FreeCount);
        return State != ClientState.Closed;
    }

    bool IFrameHandler.OnFrame(in MqttFrame frame)
    {
        long now = _receivedTicks;
        switch (frame.Type)
        {
            case PacketType.PingResp:
                // The commonest packet by far: the fixed header says all there is.
                _fleet.OnPong(this, now);
                return true;

            case PacketType.ConnAck:
                if (!Wire.TryReadConnack(frame, _version, out byte code))
                {
                    Terminate("malformed-connack");
                    return false;
                }

                if (code != 0)
                {
                    Terminate($"connack-0x{code:X2}");
                    return false;
                }

                if (Interlocked.CompareExchange(ref _state, (int)ClientState.Connected, (int)ClientState.AwaitingConnack) == (int)ClientState.AwaitingConnack)
                {
                    _fleet.OnConnected(this, now);
                }

                return true;

            case PacketType.Publish:
                if (!Wire.TryReadPublish(frame, _version, out PublishPacketView publish))
                {
                    Terminate("malformed-publish");
                    return false;
                }

                if (publish.QoS != QualityOfService.AtMostOnce)
                {
                    TrySend(Wire.PubAck(_version, publish.PacketId));
                }

                // The receive slice is one array segment, so the payload is too.
                _fleet.Traffic?.OnPublish(this, (int)publish.QoS, publish.Payload.FirstSpan, now);
                return true;

            case PacketType.PubAck:
                if (Wire.TryReadPubAck(frame, _version, out _, out byte ackCode))
                {
                    _fleet.Traffic?.OnPubAck(this, ackCode);
                }

                return true;

            case PacketType.SubAck:
                if (Wire.TryReadSubAck(frame, _version, out _, out byte granted))
                {
                    _fleet.Traffic?.OnSubAck(this, granted);
                }

                return true;

            case PacketType.Disconnect:
                // Only 5.0 brokers send DISCONNECT. [MQTT-3.14.1]
                Terminate("disconnect", Wire.ReadDisconnectReason(frame, _version));
                return false;

            default:
                return true;
        }
    }

    private bool FlushPendingLocked(Socket socket)
    {
        int sent = socket.Send(_pendingSend.AsSpan(0, _pendingLength), SocketFlags.None, out SocketError error);
        if (error is not SocketError.Success and not SocketError.WouldBlock)
        {
            TerminateLater(Fleet.KindOf(error, "send-"));
            return false;
        }

        if (sent > 0)
        {
            LastSendTicks = Stopwatch.GetTimestamp();
            _pendingSend.AsSpan(sent, _pendingLength - sent).CopyTo(_pendingSend);
            _pendingLength -= sent;
        }

        return _pendingLength == 0;
    }

    private void QueueTailLocked(ReadOnlySpan<byte> tail)
    {
        if (_pendingSend is null || _pendingSend.Length < tail.Length)
        {
            _pendingSend = new byte[Math.Max(tail.Length, 1024)];
        }

        tail.CopyTo(_pendingSend);
        _pendingLength = tail.Length;
        if (!_flushQueued)
        {
            _flushQueued = true;
            _fleet.QueueFlush(this);
        }
    }
}
