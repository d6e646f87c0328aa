using System.Net;
using Broker.Diagnostics;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using OpenTelemetry.Metrics;

namespace Broker.Hosting;

/// <summary>
/// A small Kestrel application of its own serving <c>/metrics</c> (Prometheus text), <c>/healthz</c> and
/// <c>/readyz</c> on <c>Broker:Metrics:Address:Port</c>. It is separate from the MQTT listener so that HTTP never
/// shares a socket, a thread budget or a port with device traffic, and so it can be bound to a private interface.
/// </summary>
internal sealed class MetricsEndpoint : IHostedService, IAsyncDisposable
{
    private readonly MetricsOptions _options;
    private readonly BrokerServer _server;
    private readonly IServiceProvider _brokerServices;
    private readonly ILoggerFactory _loggerFactory;
    private WebApplication? _app;

    public MetricsEndpoint(IOptions<MetricsOptions> options, BrokerServer server, IServiceProvider brokerServices, ILoggerFactory loggerFactory)
    {
        _options = options.Value;
        _server = server;
        _brokerServices = brokerServices;
        _loggerFactory = loggerFactory;
    }

    /// <summary>The bound endpoint (the real port when configured with port 0); null when disabled or not started.</summary>
    public IPEndPoint? LocalEndPoint { get; private set; }

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        if (!_options.Enabled)
        {
            return;
        }
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [] });
        // Only this endpoint: no ASPNETCORE_URLS, no second console logger, no second Ctrl+C handler.
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Parse(_options.Address), _options.Port));
        builder.Logging.ClearProviders();
        builder.Services.Replace(ServiceDescriptor.Singleton(_loggerFactory));
        builder.Services.Replace(ServiceDescriptor.Singleton<IHostLifetime, OwnedLifetime>());
        var app = builder.Build();

        // The exporter belongs to the broker's MeterProvider (the one listening to the broker's Meter);
        // passing it here makes the scrape read that provider instead of one from this app's container.
        var meterProvider = _brokerServices.GetRequiredService<MeterProvider>();
        app.MapPrometheusScrapingEndpoint("/metrics", meterProvider, configureBranchedPipeline: null, optionsName: null);
        app.MapGet("/healthz", () => Results.Text("ok"));
        app.MapGet("/readyz", () => _server.IsAccepting
            ? Results.Text("ready")
            : Results.Text("not accepting MQTT connections", statusCode: StatusCodes.Status503ServiceUnavailable));
        app.MapKeepAliveInsight(_brokerServices);

        await app.StartAsync(cancellationToken).ConfigureAwait(false);
        _app = app;
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        var uri = new Uri(address);
        LocalEndPoint = new IPEndPoint(IPAddress.Parse(_options.Address), uri.Port);
        BrokerLog.MetricsListening(_loggerFactory.CreateLogger<MetricsEndpoint>(), LocalEndPoint);
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_app is { } app)
        {
            await app.StopAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_app is { } app)
        {
            _app = null;
            await app.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>The broker's host owns the process lifetime; this inner app starts and stops when told.</summary>
    private sealed class OwnedLifetime : IHostLifetime
    {
        public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
