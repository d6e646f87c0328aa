using System.Net;
using System.Net.Sockets;
using Broker.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Broker.Transport;

/// <summary>
/// The listening socket: <see cref="Bind"/> once, then call <see cref="AcceptAsync"/> in a loop; each
/// accepted socket is configured (NoDelay, kernel keep-alive) and returned as a started
/// <see cref="SocketConnection"/>.
/// </summary>
internal sealed class SocketListener : IDisposable
{
    private readonly TcpOptions _tcp;
    private readonly TcpKeepAliveOptions _keepAlive;
    private readonly ILogger _logger;
    private readonly ILogger _connectionLogger;
    private readonly TimeProvider _timeProvider;
    private Socket? _listenSocket;
    private EndPoint? _localEndPoint;
    private int _stopped;

    public SocketListener(
        IOptions<TcpOptions> tcpOptions,
        IOptions<TcpKeepAliveOptions> keepAliveOptions,
        ILoggerFactory loggerFactory,
        TimeProvider? timeProvider = null)
    {
        _tcp = tcpOptions.Value;
        _keepAlive = keepAliveOptions.Value;
        _logger = loggerFactory.CreateLogger<SocketListener>();
        _connectionLogger = loggerFactory.CreateLogger<SocketConnection>();
        _timeProvider = timeProvider ?? TimeProvider.System;
    }

    /// <summary>The bound address and the real port (also when the configured port is 0).</summary>
    public IPEndPoint LocalEndPoint =>
        (IPEndPoint)(_localEndPoint ?? throw new InvalidOperationException("The listener is not bound."));

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
    /// The next accepted connection, already started; null once <see cref="Stop"/> was called or
    /// <paramref name="cancellationToken"/> is cancelled. A connection reset while still in the
    /// accept queue is skipped. Other accept errors (e.g. out of file descriptors) are thrown for the
    /// accept loop's owner to log and decide on.
    /// </summary>
    public async ValueTask<SocketConnection?> AcceptAsync(CancellationToken cancellationToken)
    {
        Socket listenSocket = _listenSocket ?? throw new InvalidOperationException("The listener is not bound.");
        while (true)
        {
            Socket accepted;
            try
            {
                accepted = await listenSocket.AcceptAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return null;
            }
            catch (ObjectDisposedException)
            {
                return null;
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.OperationAborted || Volatile.Read(ref _stopped) != 0)
            {
                return null;
            }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionReset or SocketError.ConnectionAborted)
            {
                TransportLog.AcceptedConnectionGone(_logger, e.SocketErrorCode);
                continue;
            }

            ConfigureAcceptedSocket(accepted);
            SocketConnection connection;
            try
            {
                connection = new SocketConnection(accepted, _tcp.MaxInputBufferBytes, _tcp.MaxPendingOutputBytes, _connectionLogger, _timeProvider);
            }
            catch (SocketException e)
            {
                // RemoteEndPoint fails when the peer is already gone (ENOTCONN).
                TransportLog.AcceptedConnectionGone(_logger, e.SocketErrorCode);
                accepted.Dispose();
                continue;
            }

            connection.Start();
            return connection;
        }
    }

    /// <summary>Stops accepting; a pending <see cref="AcceptAsync"/> returns null. Open connections are not touched. Idempotent.</summary>
    public void Stop()
    {
        if (Interlocked.Exchange(ref _stopped, 1) != 0)
        {
            return;
        }

        _listenSocket?.Dispose();
        TransportLog.StoppedListening(_logger, _localEndPoint);
    }

    public void Dispose() => Stop();

    private void ConfigureAcceptedSocket(Socket socket)
    {
        // MQTT packets are small (PUBACK is 4 bytes). With Nagle's algorithm a small write waits for
        // the ACK of the previous one, which delayed ACK holds back ~40 ms: every QoS 1 round trip
        // would gain that latency. Batching is done by flushing once per batch, not by the kernel.
        SocketOptionSetter.TrySet(socket, SocketOptionLevel.Tcp, SocketOptionName.NoDelay, 1, "TCP_NODELAY", _logger);
        TcpKeepAliveConfigurator.Apply(socket, _keepAlive, _logger);
    }
}
