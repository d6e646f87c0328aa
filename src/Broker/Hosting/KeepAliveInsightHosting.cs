using System.Text.Json.Serialization;
using Broker.Diagnostics;
using Broker.Diagnostics.Insight;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Broker.Hosting;

/// <summary>Registers the keep-alive insight (options come with <see cref="KeepAliveOptions"/>) and serves its view.</summary>
internal static class KeepAliveInsightHosting
{
    public const string NetworksRoute = "/api/keepalive/networks";

    public static IServiceCollection AddKeepAliveInsight(this IServiceCollection services)
    {
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton(sp =>
        {
            var options = sp.GetRequiredService<IOptions<KeepAliveOptions>>().Value;
            return new KeepAliveInsight(options.Insight, sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<BrokerMetrics>(),
                options.Adaptive, checked((ushort)options.AdaptiveFloorSeconds));
        });
        services.AddHostedService<KeepAliveInsightReporter>();
        return services;
    }

    /// <summary>
    /// GET <see cref="NetworksRoute"/>: every tracked network as JSON, those with advice first. On the metrics
    /// listener (operators only), kept in this one method so the listener's other routes stay apart.
    /// </summary>
    public static IEndpointRouteBuilder MapKeepAliveInsight(this IEndpointRouteBuilder endpoints, IServiceProvider brokerServices)
    {
        if (brokerServices.GetService<KeepAliveInsight>() is { } insight)
        {
            endpoints.MapGet(NetworksRoute, () => Results.Json(
                new KeepAliveNetworksView(insight.Enabled, insight.Adaptive, insight.Snapshot()),
                KeepAliveInsightJson.Default.KeepAliveNetworksView));
        }
        return endpoints;
    }
}

/// <summary>The body of GET /api/keepalive/networks.</summary>
internal sealed record KeepAliveNetworksView(bool Enabled, bool Adaptive, IReadOnlyList<NetworkInsight> Networks);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, WriteIndented = true)]
[JsonSerializable(typeof(KeepAliveNetworksView))]
internal sealed partial class KeepAliveInsightJson : JsonSerializerContext
{
}
