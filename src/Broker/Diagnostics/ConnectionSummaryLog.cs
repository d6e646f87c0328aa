using System.Text;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Broker.Diagnostics;

/// <summary>
/// One Information line per interval with the connects, disconnects by cause and refusals of the interval (event 40),
/// written only when something happened. Per-connection lines are Debug: a fleet reconnecting after an outage
/// would otherwise write a line per device at the moment the log is most needed.
/// </summary>
internal sealed class ConnectionSummaryLog(Lazy<MeterTotals> meterTotals, IOptions<BrokerLoggingOptions> options, TimeProvider time,
    ILogger<ConnectionSummaryLog> logger) : BackgroundService
{
    private const string Accepted = "accepted";

    private IReadOnlyDictionary<string, long> _lastAttempts = new Dictionary<string, long>();
    private IReadOnlyDictionary<string, long> _lastDisconnects = new Dictionary<string, long>();

    private PeriodicTimer? _timer;

    /// <summary>
    /// The totals' listener and the timer are created here, synchronously (the host runs ExecuteAsync on another
    /// thread), before the MQTT listener starts: this service is registered before it, so no connect is missed.
    /// With the summary and $SYS both off nothing listens to the instruments for them.
    /// </summary>
    public override Task StartAsync(CancellationToken cancellationToken)
    {
        int seconds = options.Value.SummarySeconds;
        if (seconds > 0)
        {
            _ = meterTotals.Value;
            _timer = new PeriodicTimer(TimeSpan.FromSeconds(seconds), time);
        }
        return base.StartAsync(cancellationToken);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (_timer is not { } timer)
        {
            return;
        }
        using (timer)
        {
            try
            {
                while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
                {
                    WriteSummary(options.Value.SummarySeconds);
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
            }
        }
    }

    /// <summary>Logs the interval since the previous call, if anything happened in it.</summary>
    internal void WriteSummary(int intervalSeconds)
    {
        var totals = meterTotals.Value;
        var attempts = totals.ByLabel("mqtt.connect.attempts");
        var disconnects = totals.ByLabel("mqtt.disconnects");
        var attemptDelta = Delta(attempts, _lastAttempts);
        var disconnectDelta = Delta(disconnects, _lastDisconnects);
        _lastAttempts = attempts;
        _lastDisconnects = disconnects;

        long connected = attemptDelta.GetValueOrDefault(Accepted);
        var refusals = attemptDelta.Where(p => p.Key != Accepted).ToList();
        long refused = refusals.Sum(p => p.Value);
        long disconnected = disconnectDelta.Values.Sum();
        if (connected == 0 && refused == 0 && disconnected == 0)
        {
            return;
        }
        BrokerLog.ConnectionSummary(logger, intervalSeconds, connected, disconnected, Breakdown(disconnectDelta), refused, Breakdown(refusals),
            totals.Get("mqtt.clients.connected"));
    }

    private static Dictionary<string, long> Delta(IReadOnlyDictionary<string, long> now, IReadOnlyDictionary<string, long> before)
        => now.Select(p => (p.Key, Value: p.Value - before.GetValueOrDefault(p.Key))).Where(p => p.Value != 0)
            .ToDictionary(p => p.Key, p => p.Value, StringComparer.Ordinal);

    /// <summary>" (keep_alive_timeout 80, client_disconnect 15)", largest first; empty when there is nothing.</summary>
    private static string Breakdown(IEnumerable<KeyValuePair<string, long>> counts)
    {
        var parts = counts.Where(p => p.Value != 0).OrderByDescending(p => p.Value).ThenBy(p => p.Key, StringComparer.Ordinal).ToList();
        if (parts.Count == 0)
        {
            return string.Empty;
        }
        var sb = new StringBuilder(" (");
        for (int i = 0; i < parts.Count; i++)
        {
            sb.Append(i == 0 ? "" : ", ").Append(parts[i].Key).Append(' ').Append(parts[i].Value);
        }
        return sb.Append(')').ToString();
    }
}
