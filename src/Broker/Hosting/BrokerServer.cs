using System.Net;
using Broker.Connections;
using Broker.Diagnostics;
using Broker.Transport;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Broker.Hosting;

/// <summary>
/// The MQTT listener as a hosted service: binds at start (a bind failure stops start-up), accepts in a
/// loop, runs one <see cref="MqttConnection"/> per socket, and on stop closes every connection gracefully.
/// </summary>
internal sealed class BrokerServer : IHostedService, IDisposable
{
    private static readonly TimeSpan ShutdownTimeout = TimeSpan.FromSeconds(5);

    private readonly SocketListener _listener;
    private readonly ConnectionServices _services;
    private readonly ILogger<BrokerServer> _logger;
    private readonly CancellationTokenSource _stopping = new();
    private readonly TaskCompletionSource _bound = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Task? _acceptLoop;
    private readonly List<Task> _running = new();
    private readonly object _runningGate = new();

    public BrokerServer(SocketListener listener, ConnectionServices services, ILogger<BrokerServer> logger)
    {
        _listener = listener;
        _services = services;
        _logger = logger;
    }

    /// <summary>The bound endpoint (the real port when configured with port 0).</summary>
    public IPEndPoint LocalEndPoint => _listener.LocalEndPoint;

    /// <summary>True while the listener is bound and accepting (for /readyz).</summary>
    public bool IsAccepting { get; private set; }

    public Task Bound => _bound.Task;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _listener.Bind();
        BrokerLog.Listening(_logger, _listener.LocalEndPoint);
        IsAccepting = true;
        _bound.TrySetResult();
        _acceptLoop = Task.Run(AcceptLoopAsync, CancellationToken.None);
        return Task.CompletedTask;
    }

    private async Task AcceptLoopAsync()
    {
        var token = _stopping.Token;
        while (!token.IsCancellationRequested)
        {
            SocketConnection? socket;
            try
            {
                socket = await _listener.AcceptAsync(token);
            }
            catch (OperationCanceledException)
            {
                break;
            }
            catch (Exception ex)
            {
                BrokerLog.AcceptFailed(_logger, ex);
                continue;
            }
            if (socket is null)
            {
                break;
            }
            var connection = new MqttConnection(socket, _services);
            var run = connection.RunAsync();
            lock (_runningGate)
            {
                _running.Add(run);
                if (_running.Count > 1024)
                {
                    _running.RemoveAll(t => t.IsCompleted);
                }
            }
        }
        IsAccepting = false;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        // Stop accepting first, then tell every client (5.0: DISCONNECT 0x8B) and close.
        IsAccepting = false;
        _stopping.Cancel();
        _listener.Stop();
        if (_acceptLoop is not null)
        {
            await _acceptLoop.ConfigureAwait(false);
        }
        var connections = _services.Registry.Snapshot();
        BrokerLog.ShuttingDown(_logger, connections.Count);
        foreach (var connection in connections)
        {
            await connection.ShutdownAsync().ConfigureAwait(false);
        }
        Task[] running;
        lock (_runningGate)
        {
            running = [.. _running];
        }
        try
        {
            await Task.WhenAll(running).WaitAsync(ShutdownTimeout, _services.Time, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            // Connections still flushing after the timeout are dropped with the process.
        }
        catch (OperationCanceledException)
        {
        }
    }

    public void Dispose()
    {
        _stopping.Dispose();
        _listener.Dispose();
    }
}
