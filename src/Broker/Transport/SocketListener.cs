using System.Net;
using System.Net.Sockets;
using Broker.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Broker.Transport;

/// <summary>
/// The listening socket: <see cref="Bind"/> once, then <see cref="Start"/> an accept loop that hands every
/// accepted socket, configured (non-blocking, NoDelay, kernel keep-alive), to its owner. The loop accepts with
/// one reusable <see cref="SocketAsyncEventArgs"/> and keeps going on the same thread while accepts complete at
/// once, so a reconnect storm is drained from the backlog as fast as the kernel hands sockets over; that thread is a
/// thread-pool thread, never the socket-engine thread that reads the clients (see AcceptOperation). When the
/// process or the system is out of descriptors or buffers (EMFILE, ENFILE, ENOBUFS, ENOMEM) it backs off, with a
/// growing pause, instead of spinning, and resumes by itself.
/// </summary>
internal sealed class SocketListener : IDisposable
{
    private static readonly TimeSpan FirstBackoff = TimeSpan.FromMilliseconds(10);
    private static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan AcceptErrorLogInterval = TimeSpan.FromSeconds(10);

    private readonly TcpOptions _tcp;
    private readonly TcpKeepAliveOptions _keepAlive;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly AcceptOperation _accept;
    private readonly DescriptorHeadroom _headroom;
    private Socket? _listenSocket;
    private EndPoint? _localEndPoint;
    private Action<Socket>? _onAccepted;
    private Action<SocketError>? _onAcceptError;
    private ConnectRateLimiter? _rateLimiter;
    private Action? _onRateLimited;
    private ITimer? _rateTimer;
    private int _stopped;
    private TimeSpan _backoff = FirstBackoff;
    private ITimer? _backoffTimer;
    private long _lastErrorLog;
    private int _errorsSinceLog;
    private volatile bool _backingOff;

    public SocketListener(
        IOptions<TcpOptions> tcpOptions,
        IOptions<TcpKeepAliveOptions> keepAliveOptions,
        ILoggerFactory loggerFactory,
        TimeProvider? timeProvider = null)
    {
        _tcp = tcpOptions.Value;
        _keepAlive = keepAliveOptions.Value;
        _logger = loggerFactory.CreateLogger<SocketListener>();
        _time = timeProvider ?? TimeProvider.System;
        _accept = new AcceptOperation(this);
        _headroom = DescriptorHeadroom.ForThisProcess();
        _lastErrorLog = _time.GetTimestamp() - (long)(AcceptErrorLogInterval.TotalSeconds * _time.TimestampFrequency);
    }

    /// <summary>The bound address and the real port (also when the configured port is 0).</summary>
    public IPEndPoint LocalEndPoint =>
        (IPEndPoint)(_localEndPoint ?? throw new InvalidOperationException("The listener is not bound."));

    /// <summary>True while accepting is paused because the process or system ran out of descriptors or buffers.</summary>
    public bool IsBackingOff => _backingOff;

    /// <summary>Binds and starts listening. Throws (SocketException) when the address cannot be bound: that is fatal at start-up.</summary>
    public void Bind()
    {
        if (_listenSocket is not null)
        {
            throw new InvalidOperationException("The listener is already bound.");
        }

        var endPoint = new IPEndPoint(IPAddress.Parse(_tcp.Address), _tcp.Port);
        var socket = new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            if (endPoint.Address.Equals(IPAddress.IPv6Any))
            {
                // "::" means every address: accept IPv4 clients too (as IPv4-mapped addresses).
                socket.DualMode = true;
            }

            socket.Bind(endPoint);
            socket.Listen(_tcp.Backlog);
        }
        catch
        {
            socket.Dispose();
            throw;
        }

        _localEndPoint = socket.LocalEndPoint;
        _listenSocket = socket;
        TransportLog.Listening(_logger, _localEndPoint!, _tcp.Backlog);
    }

    /// <summary>
    /// Starts the accept loop. <paramref name="onAccepted"/> runs on the loop's thread and must return quickly
    /// (hand the socket on); <paramref name="onAcceptError"/> is told of every accept error that made the loop back off.
    /// </summary>
    public void Start(Action<Socket> onAccepted, Action<SocketError>? onAcceptError = null, ConnectRateLimiter? rateLimiter = null, Action? onRateLimited = null)
    {
        if (_listenSocket is null)
        {
            throw new InvalidOperationException("The listener is not bound.");
        }
        if (Interlocked.CompareExchange(ref _onAccepted, onAccepted, null) is not null)
        {
            throw new InvalidOperationException("The listener is already started.");
        }
        _onAcceptError = onAcceptError;
        _rateLimiter = rateLimiter;
        _onRateLimited = onRateLimited;
        // The first accept is posted from the thread pool: a storm already in the backlog is then drained there,
        // not on the caller (the host's start-up).
        AcceptOnThreadPool();
    }

    private void AcceptOnThreadPool() => ThreadPool.UnsafeQueueUserWorkItem(static listener => listener.AcceptLoop(), this, preferLocal: false);

    private void AcceptLoop()
    {
        var listenSocket = _listenSocket!;
        while (Volatile.Read(ref _stopped) == 0)
        {
            if (_rateLimiter is { } limiter && !limiter.TryTake(out var wait))
            {
                PauseForRate(wait);
                return;
            }
            _accept.AcceptSocket = null;
            bool pending;
            try
            {
                pending = listenSocket.AcceptAsync(_accept);
            }
            catch (ObjectDisposedException)
            {
                return;
            }
            if (pending || !OnAcceptCompleted())
            {
                return;
            }
        }
    }

    /// <summary>Handles one completed accept; true to accept the next at once.</summary>
    private bool OnAcceptCompleted()
    {
        var error = _accept.SocketError;
        var accepted = _accept.AcceptSocket;
        _accept.AcceptSocket = null;
        if (Volatile.Read(ref _stopped) != 0)
        {
            accepted?.Dispose();
            return false;
        }
        switch (error)
        {
            case SocketError.Success when accepted is not null:
                _backoff = FirstBackoff;
                bool low = _headroom.IsLow(accepted);
                if (Configure(accepted))
                {
                    _onAccepted!(accepted);
                }
                if (low)
                {
                    // This client is served; the next ones wait in the backlog until descriptors are free again.
                    BackOff(SocketError.TooManyOpenSockets);
                    return false;
                }
                return true;
            case SocketError.ConnectionReset or SocketError.ConnectionAborted:
                // The client gave up while still in the accept queue.
                TransportLog.AcceptedConnectionGone(_logger, error);
                return true;
            case SocketError.OperationAborted or SocketError.Interrupted:
                return Volatile.Read(ref _stopped) == 0;
            default:
                BackOff(error);
                return false;
        }
    }

    /// <summary>
    /// Out of descriptors (EMFILE/ENFILE, or fewer than <see cref="DescriptorHeadroom.Reserve"/> left), buffers (ENOBUFS)
    /// or memory: pending clients wait in the listen backlog
    /// while the broker pauses accepting, doubling the pause up to <see cref="MaxBackoff"/>; one log line per
    /// interval says how many accepts failed.
    /// </summary>
    private void BackOff(SocketError error)
    {
        _backingOff = true;
        _onAcceptError?.Invoke(error);
        _errorsSinceLog++;
        long now = _time.GetTimestamp();
        if (_time.GetElapsedTime(_lastErrorLog, now) >= AcceptErrorLogInterval)
        {
            TransportLog.AcceptBackingOff(_logger, error, _errorsSinceLog, _backoff.TotalMilliseconds);
            _errorsSinceLog = 0;
            _lastErrorLog = now;
        }
        ArmBackoffTimer();
    }

    private void ArmBackoffTimer()
    {
        var delay = _backoff;
        _backoff = TimeSpan.FromTicks(Math.Min(_backoff.Ticks * 2, MaxBackoff.Ticks));
        var timer = _backoffTimer ??= _time.CreateTimer(static state => ((SocketListener)state!).ResumeAfterBackoff(),
            this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        timer.Change(delay, Timeout.InfiniteTimeSpan);
    }

    /// <summary>Accepting resumes once the process has descriptors to spare again (see <see cref="DescriptorHeadroom"/>).</summary>
    private void ResumeAfterBackoff()
    {
        if (Volatile.Read(ref _stopped) != 0)
        {
            return;
        }
        if (_headroom.IsLowNow())
        {
            ArmBackoffTimer();
            return;
        }
        _backingOff = false;
        AcceptLoop();
    }

    /// <summary>Connects arrive faster than Broker:Limits:ConnectRate: nothing is accepted until the next token.</summary>
    private void PauseForRate(TimeSpan wait)
    {
        _onRateLimited?.Invoke();
        var timer = _rateTimer ??= _time.CreateTimer(static state => ((SocketListener)state!).AcceptLoop(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        timer.Change(wait > TimeSpan.FromMilliseconds(1) ? wait : TimeSpan.FromMilliseconds(1), Timeout.InfiniteTimeSpan);
    }

    /// <summary>Stops accepting. Open connections are not touched. Idempotent.</summary>
    public void Stop()
    {
        if (Interlocked.Exchange(ref _stopped, 1) != 0)
        {
            return;
        }

        _backoffTimer?.Dispose();
        _rateTimer?.Dispose();
        _listenSocket?.Dispose();
        TransportLog.StoppedListening(_logger, _localEndPoint);
    }

    public void Dispose()
    {
        Stop();
        _accept.Dispose();
    }

    /// <summary>False when the socket is already unusable (the peer left between accept and here).</summary>
    private bool Configure(Socket socket)
    {
        try
        {
            // Reads and writes are non-blocking: the connection tries each at once and waits for readiness only
            // when the kernel has nothing (a zero-byte receive) or no room (an asynchronous send).
            socket.Blocking = false;
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            socket.Dispose();
            return false;
        }
        // MQTT packets are small (PUBACK is 4 bytes). With Nagle's algorithm a small write waits for the ACK of
        // the previous one, which delayed ACK holds back ~40 ms: every QoS 1 round trip would gain that latency.
        // Batching is done by flushing once per batch, not by the kernel.
        SocketOptionSetter.TrySet(socket, SocketOptionLevel.Tcp, SocketOptionName.NoDelay, 1, "TCP_NODELAY", _logger);
        TcpKeepAliveConfigurator.Apply(socket, _keepAlive, _logger);
        return true;
    }

    private sealed class AcceptOperation(SocketListener owner) : SocketAsyncEventArgs(unsafeSuppressExecutionContextFlow: true)
    {
        protected override void OnCompleted(SocketAsyncEventArgs e)
        {
            // This runs on the socket-engine thread (completions are inline), which also reads every client. The rest
            // of a burst (the backlog may hold thousands) is accepted on the thread pool instead: accepting them here,
            // each with its setsockopt calls, would keep connected clients' PINGREQs and the new clients' CONNECTs
            // waiting until the backlog is empty.
            if (owner.OnAcceptCompleted())
            {
                owner.AcceptOnThreadPool();
            }
        }
    }
}
