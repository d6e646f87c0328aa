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
    public Task StartAsync(CancellationToken cancellationToken)
    {
        metrics.ObserveState(
            () =>
            {
                int online = sessions.OnlineCount();
                return
                [
                    new Measurement<long>(online, new KeyValuePair<string, object?>("state", "online")),
                    new Measurement<long>(sessions.Count - online, new KeyValuePair<string, object?>("state", "offline")),
                ];
            },
            () => router.SubscriptionCount,
            () => router.RetainedCount,
            () => [new Measurement<long>(0, new KeyValuePair<string, object?>("state", "queued"))]);
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
