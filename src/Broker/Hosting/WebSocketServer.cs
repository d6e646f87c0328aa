using System.Net;
using System.Net.WebSockets;
using Broker.Connections;
using Broker.Diagnostics;
using Broker.Security;
using Broker.Transport;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Broker.Hosting;

/// <summary>
/// MQTT over WebSocket (<c>Broker:WebSocket</c>): a Kestrel application of its own (not the metrics listener) with
/// ws:// on <c>Port</c> and, with <c>TlsPort</c>, wss:// on the certificate of <c>Broker:Tls</c>. A request to
/// <c>Path</c> that offers the subprotocol <c>mqtt</c> (or <c>mqttv3.1</c>, older clients) becomes an ordinary
/// <see cref="MqttConnection"/> over the WebSocket as a stream of binary messages (<see cref="BinaryWebSocketStream"/>);
/// the request lasts as long as the connection. Keep-alive, limits and MQTT behaviour are those of TCP.
/// </summary>
internal sealed class WebSocketServer : IHostedService, IAsyncDisposable
{
    private static readonly string[] SubProtocols = ["mqtt", "mqttv3.1"];
    private static readonly TimeSpan CloseTimeout = TimeSpan.FromSeconds(2);

    private readonly MqttWebSocketOptions _options;
    private readonly TcpKeepAliveOptions _tcpKeepAlive;
    private readonly ConnectionServices _services;
    private readonly IServiceProvider _brokerServices;
    private readonly StartupFailures _failures;
    private readonly ILoggerFactory _loggerFactory;
    private readonly ILogger _logger;
    private WebApplication? _app;
    private volatile bool _stopping;

    public WebSocketServer(IOptions<MqttWebSocketOptions> options, IOptions<TcpKeepAliveOptions> tcpKeepAlive, ConnectionServices services,
        IServiceProvider brokerServices, StartupFailures failures, ILoggerFactory loggerFactory)
    {
        _options = options.Value;
        _tcpKeepAlive = tcpKeepAlive.Value;
        _services = services;
        _brokerServices = brokerServices;
        _failures = failures;
        _loggerFactory = loggerFactory;
        _logger = loggerFactory.CreateLogger<WebSocketServer>();
    }

    /// <summary>The bound ws:// endpoint (the real port with port 0); null without one or before start.</summary>
    public IPEndPoint? PlainEndPoint { get; private set; }

    /// <summary>The bound wss:// endpoint; null without one or before start.</summary>
    public IPEndPoint? TlsEndPoint { get; private set; }

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        if (_failures.Any)
        {
            return;
        }
        var address = IPAddress.Parse(_options.Address);
        var tls = _options.TlsPort is not null ? _brokerServices.GetRequiredService<TlsServerOptionsFactory>() : null;
        var handshakeTimeout = TimeSpan.FromSeconds(_services.KeepAliveOptions.ConnectTimeoutSeconds);
        var builder = InnerWebApp.CreateBuilder(_loggerFactory);
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            // MQTT has its own limits: no HTTP/2 (WebSocket over HTTP/1.1 upgrade only), no request body.
            if (_options.PlainEnabled)
            {
                kestrel.Listen(address, _options.Port, listen => listen.Protocols = HttpProtocols.Http1);
            }
            if (tls is not null)
            {
                kestrel.Listen(address, _options.TlsPort!.Value, listen =>
                {
                    listen.Protocols = HttpProtocols.Http1;
                    // The TLS listener's settings per handshake: TLS 1.2/1.3, client certificates, certificate reload.
                    listen.UseHttps(new TlsHandshakeCallbackOptions
                    {
                        OnConnection = _ => ValueTask.FromResult(tls.CreateServerOptions()),
                        HandshakeTimeout = handshakeTimeout,
                    });
                });
            }
        });
        var app = builder.Build();
        // No WebSocket pings: the MQTT keep-alive (PINGREQ) is the liveness check, as on every listener.
        app.UseWebSockets(new WebSocketOptions { KeepAliveInterval = TimeSpan.Zero });
        app.Map(_options.Path, branch => branch.Run(AcceptAsync));

        try
        {
            await app.StartAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (StartupFailures.IsBindFailure(ex))
        {
            await app.DisposeAsync().ConfigureAwait(false);
            _failures.ListenerFailed(MqttWebSocketOptions.SectionName, _options.Address, _options.PlainEnabled ? _options.Port : _options.TlsPort!.Value, ex);
            return;
        }
        _app = app;
        foreach (var bound in app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses)
        {
            var uri = new Uri(bound);
            var endPoint = new IPEndPoint(address, uri.Port);
            if (uri.Scheme == "https")
            {
                TlsEndPoint = endPoint;
                BrokerLog.ListeningOn(_logger, "WebSocket (TLS)", $"wss://{endPoint}{_options.Path}");
            }
            else
            {
                PlainEndPoint = endPoint;
                BrokerLog.ListeningOn(_logger, "WebSocket", $"ws://{endPoint}{_options.Path}");
            }
        }
    }

    private async Task AcceptAsync(HttpContext http)
    {
        if (!http.WebSockets.IsWebSocketRequest)
        {
            http.Response.StatusCode = StatusCodes.Status400BadRequest;
            await http.Response.WriteAsync("MQTT over WebSocket: open a WebSocket with the subprotocol \"mqtt\"\n").ConfigureAwait(false);
            return;
        }
        // [MQTT-6.0.0-3] the client offers "mqtt"; [MQTT-6.0.0-4] the server selects and returns it.
        string? subProtocol = SubProtocols.FirstOrDefault(p => http.WebSockets.WebSocketRequestedProtocols.Contains(p, StringComparer.OrdinalIgnoreCase));
        if (subProtocol is null || _stopping)
        {
            http.Response.StatusCode = subProtocol is null ? StatusCodes.Status400BadRequest : StatusCodes.Status503ServiceUnavailable;
            await http.Response.WriteAsync(subProtocol is null ? "the WebSocket subprotocol \"mqtt\" is required\n" : "shutting down\n").ConfigureAwait(false);
            return;
        }
        // Kestrel's socket: the same kernel keep-alive as the TCP listener's (Kestrel sets TCP_NODELAY itself).
        if (http.Features.Get<IConnectionSocketFeature>()?.Socket is { } socket)
        {
            TcpKeepAliveConfigurator.Apply(socket, _tcpKeepAlive, _logger);
        }
        else
        {
            WebSocketLog.NoSocket(_logger, http.Connection.RemoteIpAddress);
        }
        using var webSocket = await http.WebSockets.AcceptWebSocketAsync(new WebSocketAcceptContext
        {
            SubProtocol = subProtocol,
        }).ConfigureAwait(false);
        bool secure = http.Request.IsHttps;
        string? certificateUser = secure ? TlsServerOptionsFactory.GetClientUserName(http.Connection.ClientCertificate) : null;
        var remote = http.Connection.RemoteIpAddress is { } ip ? new IPEndPoint(ip, http.Connection.RemotePort) : null;
        var closed = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        // [MQTT-6.0.0-1] binary messages; a packet may span messages and a message hold several packets [MQTT-6.0.0-2].
        // The stream does not own the WebSocket: the close handshake is done here, asynchronously, once MQTT is done.
        var stream = new BinaryWebSocketStream(webSocket);
        // A zero-byte read on the stream waits for the next message without a buffer of ours (checked in the tests).
        var connection = new MqttConnection(new StreamTransport(stream, Socket: null, remote, SupportsZeroByteReads: true, certificateUser, closed),
            _services, secure ? "wss" : "ws");
        connection.Start();
        // Stopping began before it was registered: StopAsync did not see it.
        if (_stopping)
        {
            connection.Shutdown();
        }
        bool abortive = await closed.Task.ConfigureAwait(false);
        await CloseAsync(webSocket, stream, abortive).ConfigureAwait(false);
    }

    /// <summary>Ends the WebSocket after the MQTT connection: a close handshake when MQTT closed gracefully, else an abort.</summary>
    private async Task CloseAsync(WebSocket webSocket, BinaryWebSocketStream stream, bool abortive)
    {
        if (abortive || webSocket.State is not (WebSocketState.Open or WebSocketState.CloseReceived))
        {
            webSocket.Abort();
            return;
        }
        using var timeout = new CancellationTokenSource(CloseTimeout, _services.Time);
        try
        {
            await webSocket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, timeout.Token).ConfigureAwait(false);
            // The handshake ends with the client's close message read, so the TCP close is a FIN, not a reset.
            await stream.ReceivePeerCloseAsync(timeout.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or IOException or ObjectDisposedException
            or InvalidOperationException)
        {
            webSocket.Abort();
        }
    }

    /// <summary>Stops accepting, closes the WebSocket clients (5.0: DISCONNECT 0x8B) and waits for their requests to end.</summary>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        _stopping = true;
        if (_app is not { } app)
        {
            return;
        }
        // Every connection is in the broker's registry, tagged with the listener it came through.
        foreach (var connection in _services.Registry.Snapshot())
        {
            if (connection.Listener is "ws" or "wss")
            {
                connection.Shutdown();
            }
        }
        await app.StopAsync(cancellationToken).ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        if (_app is { } app)
        {
            _app = null;
            await app.DisposeAsync().ConfigureAwait(false);
        }
    }
}

internal static partial class WebSocketLog
{
    [LoggerMessage(21, LogLevel.Debug, "WebSocket client {RemoteAddress}: Kestrel exposes no socket, so no kernel keep-alive is set on its connection")]
    public static partial void NoSocket(ILogger logger, IPAddress? remoteAddress);
}
