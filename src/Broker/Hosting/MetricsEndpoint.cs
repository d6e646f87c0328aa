using System.Net;
using Broker.Diagnostics;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using OpenTelemetry.Metrics;

namespace Broker.Hosting;

/// <summary>
/// A small Kestrel application of its own on <c>Broker:Metrics:Address:Port</c>: <c>/metrics</c> (Prometheus text,
/// unless <c>Broker:Metrics:Enabled</c> is false), <c>/healthz</c>, <c>/readyz</c> and the admin API. It is separate
/// from the MQTT listener so that HTTP never shares a socket, a thread budget or a port with device traffic, and so it
/// can be bound to a private interface. It runs in every configuration: without it a deployment has no probes.
/// </summary>
internal sealed class MetricsEndpoint : IHostedService, IAsyncDisposable
{
    private readonly MetricsOptions _options;
    private readonly AdminOptions _admin;
    private readonly BrokerServer _server;
    private readonly IServiceProvider _brokerServices;
    private readonly StartupFailures _failures;
    private readonly ILoggerFactory _loggerFactory;
    private WebApplication? _app;

    public MetricsEndpoint(IOptions<MetricsOptions> options, IOptions<AdminOptions> admin, BrokerServer server, IServiceProvider brokerServices,
        StartupFailures failures, ILoggerFactory loggerFactory)
    {
        _options = options.Value;
        _admin = admin.Value;
        _server = server;
        _brokerServices = brokerServices;
        _failures = failures;
        _loggerFactory = loggerFactory;
    }

    /// <summary>The bound endpoint (the real port when configured with port 0); null when not started.</summary>
    public IPEndPoint? LocalEndPoint { get; private set; }

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var builder = InnerWebApp.CreateBuilder(_loggerFactory);
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Parse(_options.Address), _options.Port));
        builder.Services.ConfigureHttpJsonOptions(o => o.SerializerOptions.TypeInfoResolverChain.Insert(0, AdminJsonContext.Default));
        var app = builder.Build();

        var paths = new List<string>();
        if (_options.Enabled)
        {
            // The exporter belongs to the broker's MeterProvider (the one listening to the broker's Meter);
            // passing it here makes the scrape read that provider instead of one from this app's container.
            var meterProvider = _brokerServices.GetRequiredService<MeterProvider>();
            // The token is checked inside the endpoint's own pipeline, so it guards every path routing sends there
            // (/metrics/ included), not just the one spelling a path comparison would know.
            Action<IApplicationBuilder>? requireToken = _options.Token is { } token ? RequireToken(System.Text.Encoding.UTF8.GetBytes(token)) : null;
            app.MapPrometheusScrapingEndpoint("/metrics", meterProvider, configureBranchedPipeline: requireToken, optionsName: null);
            paths.Add(_options.Token is null ? "/metrics" : "/metrics (bearer token)");
        }
        app.MapGet("/healthz", () => Results.Text("ok"));
        app.MapGet("/readyz", () => _server.IsAccepting
            ? Results.Text("ready")
            : Results.Text("not accepting MQTT connections", statusCode: StatusCodes.Status503ServiceUnavailable));
        paths.Add("/healthz");
        paths.Add("/readyz");
        if (_admin.Enabled)
        {
            AdminApi.Map(app, _brokerServices.GetRequiredService<IClientDirectory>(), _admin, _loggerFactory.CreateLogger<AdminApi>());
            paths.Add(_admin.Token is null ? "/api/clients (loopback only)" : "/api/clients (bearer token)");
        }
        app.MapKeepAliveInsight(_brokerServices);

        try
        {
            await app.StartAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (StartupFailures.IsBindFailure(ex))
        {
            await app.DisposeAsync().ConfigureAwait(false);
            _failures.ListenerFailed(MetricsOptions.SectionName, _options.Address, _options.Port, ex);
            return;
        }
        _app = app;
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        var uri = new Uri(address);
        LocalEndPoint = new IPEndPoint(IPAddress.Parse(_options.Address), uri.Port);
        BrokerLog.MetricsListening(_loggerFactory.CreateLogger<MetricsEndpoint>(), LocalEndPoint, string.Join(", ", paths));
        WriteEndpointFile();
    }

    /// <summary>The URL a probe on this host uses: the bound address, or loopback when bound to every address.</summary>
    public static string HealthUrl(string address, int port)
    {
        var ip = IPAddress.Parse(address);
        if (ip.Equals(IPAddress.Any))
        {
            ip = IPAddress.Loopback;
        }
        else if (ip.Equals(IPAddress.IPv6Any))
        {
            ip = IPAddress.IPv6Loopback;
        }
        return $"http://{new IPEndPoint(ip, port)}/healthz";
    }

    private void WriteEndpointFile()
    {
        if (string.IsNullOrEmpty(_options.EndpointFile) || LocalEndPoint is null)
        {
            return;
        }
        try
        {
            File.WriteAllText(_options.EndpointFile, HealthUrl(_options.Address, LocalEndPoint.Port) + "\n");
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // The probe then falls back to the configuration; the broker itself is fine.
            BrokerLog.EndpointFileFailed(_loggerFactory.CreateLogger<MetricsEndpoint>(), _options.EndpointFile, ex.Message);
        }
    }

    private static Action<IApplicationBuilder> RequireToken(byte[] expected) => branch => branch.Use(async (http, next) =>
    {
        if (!BearerToken.IsPresented(http, expected))
        {
            http.Response.StatusCode = StatusCodes.Status401Unauthorized;
            http.Response.Headers.WWWAuthenticate = "Bearer";
            await http.Response.WriteAsync("missing or wrong bearer token (Broker:Metrics:Token)\n").ConfigureAwait(false);
            return;
        }
        await next(http).ConfigureAwait(false);
    });

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
}
