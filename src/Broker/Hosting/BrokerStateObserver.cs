using System.Diagnostics.Metrics;
using Broker.Connections.KeepAlive;
using Broker.Diagnostics;
using Broker.Routing;
using Broker.Sessions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Broker.Hosting;

/// <summary>
/// Connects the broker's state to its gauges and the wheel's tick lag to its histogram and log, declares the labelled
/// counter series at zero.
/// </summary>
internal sealed class BrokerStateObserver(BrokerMetrics metrics, SessionStore sessions, Router router, TimerWheel wheel,
    ILogger<BrokerStateObserver> logger, Broker.Security.SecurityMetrics securityMetrics) : IHostedService
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
        metrics.ObserveProcess(BrokerVersion.Version, ProcessDescriptors.Open, ProcessDescriptors.Limit);
        // After the exporter's listener exists (it starts with the host before this service), or the zeros are lost.
        metrics.DeclareSeries();
        securityMetrics.DeclareSeries();
        wheel.TickLagMeasured += OnTickLag;
        return Task.CompletedTask;
    }

    private void OnTickLag(TimeSpan lag)
    {
        metrics.TickLag(BeyondOneTick(lag, wheel.Tick));
        if (lag > wheel.Tick * 5)
        {
            BrokerLog.TickLag(logger, lag.TotalMilliseconds);
        }
    }

    /// <summary>
    /// The lag the wheel reports is measured from the grid point of the oldest tick it processed, so it includes the
    /// phase between the heartbeat's timer and the grid, anywhere in [0, one tick). When a beat lands a hair before its
    /// grid point (timer jitter, the coarse clock timers run on), that beat finds no tick due and the next one reports
    /// a whole tick of "lag": on a healthy machine most samples then sit just above 0.1 s, and histogram_quantile
    /// interpolates p99 to ~0.24 s. The wheel's contract is one tick of precision, so what is recorded is the lateness
    /// beyond one tick: 0 on a healthy broker, and a stall of S shows as S minus at most one tick.
    /// </summary>
    internal static TimeSpan BeyondOneTick(TimeSpan lag, TimeSpan tick) => lag > tick ? lag - tick : TimeSpan.Zero;

    public Task StopAsync(CancellationToken cancellationToken)
    {
        wheel.TickLagMeasured -= OnTickLag;
        return Task.CompletedTask;
    }
}
