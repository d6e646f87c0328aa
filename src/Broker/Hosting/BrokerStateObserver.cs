using System.Diagnostics.Metrics;
using Broker.Connections.KeepAlive;
using Broker.Diagnostics;
using Broker.Routing;
using Broker.Sessions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Broker.Hosting;

/// <summary>Connects the broker's state to its gauges and the wheel's tick lag to its histogram and log.</summary>
internal sealed class BrokerStateObserver(BrokerMetrics metrics, SessionStore sessions, Router router, TimerWheel wheel,
    ILogger<BrokerStateObserver> logger) : IHostedService
{
    private static readonly KeyValuePair<string, object?> OnlineTag = new("state", "online");
    private static readonly KeyValuePair<string, object?> OfflineTag = new("state", "offline");
    private static readonly KeyValuePair<string, object?> QueuedTag = new("state", "queued");
    private static readonly KeyValuePair<string, object?> InflightTag = new("state", "inflight");

    public Task StartAsync(CancellationToken cancellationToken)
    {
        metrics.ObserveState(
            () =>
            {
                var counts = sessions.Measure();
                return [new Measurement<long>(counts.Online, OnlineTag), new Measurement<long>(counts.Offline, OfflineTag)];
            },
            () => router.SubscriptionCount,
            () => router.RetainedCount,
            () =>
            {
                var counts = sessions.Measure();
                return [new Measurement<long>(counts.Queued, QueuedTag), new Measurement<long>(counts.Inflight, InflightTag)];
            });
        metrics.ObserveRetainedStore(() => router.RetainedBytes, () => router.RetainedRefused);
        wheel.TickLagMeasured += OnTickLag;
        return Task.CompletedTask;
    }

    private void OnTickLag(TimeSpan lag)
    {
        metrics.TickLag(lag);
        if (lag > wheel.Tick * 5)
        {
            BrokerLog.TickLag(logger, lag.TotalMilliseconds);
        }
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        wheel.TickLagMeasured -= OnTickLag;
        return Task.CompletedTask;
    }
}
