using System.Net;
using Broker.Connections;
using Broker.Diagnostics;
using Broker.Security;
using Broker.Transport;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Broker.Hosting;

/// <summary>
/// MQTT over TLS (<c>Broker:Tls</c>, port 8883) as a hosted service: registered after the TCP listener, so it starts
/// once that one is bound and stops accepting before the TCP listener's stop closes every connection (its clients are
/// in the same registry). Each client is an ordinary <see cref="MqttConnection"/> over the authenticated stream:
/// keep-alive, limits and MQTT behaviour are those of TCP.
/// </summary>
internal sealed class TlsServer : IHostedService, IDisposable
{
    public const string ListenerName = "tls";

    private readonly TlsOptions _options;
    private readonly ConnectionServices _services;
    private readonly StartupFailures _failures;
    private readonly ILogger _logger;
    private readonly TlsListener _listener;
    private bool _started;

    public TlsServer(IOptions<TlsOptions> tls, IOptions<TcpOptions> tcp, IOptions<TcpKeepAliveOptions> keepAlive, TlsServerOptionsFactory factory,
        ConnectionServices services, StartupFailures failures, ILoggerFactory loggers)
    {
        _options = tls.Value;
        _services = services;
        _failures = failures;
        _logger = loggers.CreateLogger<TlsServer>();
        // The TCP listener's accept loop, socket options and backlog, on the TLS address and port.
        var sockets = new SocketListener(Options.Create(tcp.Value with { Address = _options.Address, Port = _options.Port }), keepAlive, loggers, services.Time);
        _listener = new TlsListener(sockets, factory.CreateServerOptions, TimeSpan.FromSeconds(services.KeepAliveOptions.ConnectTimeoutSeconds),
            services.Time, loggers.CreateLogger<TlsListener>(), services.Metrics);
    }

    /// <summary>The bound endpoint (the real port when configured with port 0).</summary>
    public IPEndPoint LocalEndPoint => _listener.LocalEndPoint;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (_failures.Any)
        {
            return Task.CompletedTask;
        }
        try
        {
            _listener.Bind();
        }
        catch (Exception ex) when (StartupFailures.IsBindFailure(ex))
        {
            _failures.ListenerFailed(TlsOptions.SectionName, _options.Address, _options.Port, ex);
            return Task.CompletedTask;
        }
        _started = true;
        BrokerLog.ListeningOn(_logger, "TLS", $"mqtts://{_listener.LocalEndPoint}");
        _listener.Start(OnAuthenticated);
        return Task.CompletedTask;
    }

    private void OnAuthenticated(TlsClient client)
    {
        // The certificate was validated against Broker:Tls:ClientCaPath during the handshake: its CN is the user name.
        string? certificateUser = TlsServerOptionsFactory.GetClientUserName(client.Stream.RemoteCertificate);
        // SslStream waits for data with a zero-byte read without holding its read buffer (verified on .NET 10:
        // the buffer goes back to the pool once drained), so an idle TLS client holds no buffer either.
        new MqttConnection(new StreamTransport(client.Stream, client.Socket, client.RemoteEndPoint, SupportsZeroByteReads: true, certificateUser),
            _services, ListenerName).Start();
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        if (_started)
        {
            _listener.Stop();
        }
        return Task.CompletedTask;
    }

    public void Dispose() => _listener.Dispose();
}
