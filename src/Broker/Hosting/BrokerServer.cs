using System.Net;
using System.Net.Sockets;
using Broker.Connections;
using Broker.Diagnostics;
using Broker.Transport;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Broker.Hosting;

/// <summary>
/// The MQTT listener as a hosted service: binds at start (a bind failure stops start-up), turns every accepted
/// socket into a started <see cref="MqttConnection"/>, and on stop closes every connection gracefully.
/// </summary>
internal sealed class BrokerServer : IHostedService, IDisposable
{
    private static readonly TimeSpan ShutdownTimeout = TimeSpan.FromSeconds(5);

    private readonly SocketListener _listener;
    private readonly ConnectionServices _services;
    private readonly ILogger<BrokerServer> _logger;
    private readonly TaskCompletionSource _bound = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private volatile bool _accepting;

    public BrokerServer(SocketListener listener, ConnectionServices services, ILogger<BrokerServer> logger)
    {
        _listener = listener;
        _services = services;
        _logger = logger;
    }

    /// <summary>The bound endpoint (the real port when configured with port 0).</summary>
    public IPEndPoint LocalEndPoint => _listener.LocalEndPoint;

    /// <summary>True while the listener is bound and accepting (for /readyz): not while it backs off for lack of descriptors.</summary>
    public bool IsAccepting => _accepting && !_listener.IsBackingOff;

    public Task Bound => _bound.Task;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _listener.Bind();
        BrokerLog.Listening(_logger, _listener.LocalEndPoint);
        _accepting = true;
        _bound.TrySetResult();
        var limits = _services.Limits;
        var rateLimiter = limits.ConnectRate > 0 ? new ConnectRateLimiter(limits.ConnectRate, limits.ConnectBurst, _services.Time) : null;
        _services.EngineOverload?.Start();
        _listener.Start(OnAccepted, _services.Metrics.AcceptFailed, rateLimiter, () => _services.Metrics.LimitRefused(LimitKind.ConnectRate));
        return Task.CompletedTask;
    }

    private void OnAccepted(Socket socket)
    {
        // Started on the accept loop's thread: a CONNECT already waiting is handled here, and the connection's
        // later packets arrive on the socket engine's thread. With one engine thread (the default) every client's
        // packets are then handled in the order they arrived, as in a single-threaded broker: a SUBSCRIBE that
        // reached the broker before another client's PUBLISH is in effect for it.
        new MqttConnection(socket, _services).Start();
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        // Stop accepting first, then tell every client (5.0: DISCONNECT 0x8B) and close.
        _accepting = false;
        _listener.Stop();
        var connections = _services.Registry.Snapshot();
        BrokerLog.ShuttingDown(_logger, connections.Length);
        foreach (var connection in connections)
        {
            connection.Shutdown();
        }
        try
        {
            await _services.Registry.WhenEmpty().WaitAsync(ShutdownTimeout, _services.Time, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            // Connections still flushing after the timeout are dropped with the process.
        }
        catch (OperationCanceledException)
        {
        }
    }

    public void Dispose() => _listener.Dispose();
}
