using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Broker.Diagnostics.Insight;

/// <summary>
/// Logs the advice every <see cref="KeepAliveInsight.LogInterval"/>, only for networks that have some. Rate
/// limited so that a standing problem does not fill the log: at most <see cref="MaxLinesPerPass"/> networks
/// per pass, and a network's advice is repeated only when its substance changes (the K it recommends, the K
/// of the dying connections; not the counts, which move every pass) or after <see cref="RepeatAfterPasses"/>
/// passes (4 h at the default 10 min).
/// </summary>
internal sealed class KeepAliveInsightReporter : IHostedService, IDisposable
{
    public const int MaxLinesPerPass = 5;
    public const int RepeatAfterPasses = 24;

    private readonly KeepAliveInsight _insight;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Dictionary<string, (string Gist, long Pass)> _logged = new(StringComparer.Ordinal);
    private readonly object _passLock = new();
    private long _pass;
    private ITimer? _timer;

    public KeepAliveInsightReporter(KeepAliveInsight insight, TimeProvider time, ILogger<KeepAliveInsightReporter> logger)
    {
        _insight = insight;
        _time = time;
        _logger = logger;
    }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        var interval = _insight.LogInterval;
        if (_insight.Enabled && interval > TimeSpan.Zero)
        {
            _timer = _time.CreateTimer(static state => ((KeepAliveInsightReporter)state!).Report(), this, interval, interval);
        }
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        _timer?.Dispose();
        _timer = null;
        return Task.CompletedTask;
    }

    public void Dispose() => _timer?.Dispose();

    private static string Gist(NetworkInsight network) => $"{network.Cluster?.KeepAlive}:{network.SuggestedKeepAliveSeconds}";

    /// <summary>One pass; returns the lines written. The timer calls it; tests may too.</summary>
    internal int Report()
    {
        // A pass that outlasts the interval must not run beside the next one.
        if (!Monitor.TryEnter(_passLock))
        {
            return 0;
        }
        try
        {
            long pass = ++_pass;
            var withAdvice = _insight.Snapshot().Where(n => n.Advice is not null).ToArray();
            var due = withAdvice
                .Where(n => !_logged.TryGetValue(n.Network, out var last) || last.Gist != Gist(n) || pass - last.Pass >= RepeatAfterPasses)
                .ToArray();
            int lines = 0;
            foreach (var network in due.Take(MaxLinesPerPass))
            {
                KeepAliveInsightLog.Advice(_logger, network.Advice!);
                _logged[network.Network] = (Gist(network), pass);
                lines++;
            }
            if (due.Length > MaxLinesPerPass)
            {
                KeepAliveInsightLog.MoreAdvice(_logger, due.Length - MaxLinesPerPass);
                lines++;
            }
            // Forget networks whose advice went away, so that its return is logged at once.
            var current = withAdvice.Select(n => n.Network).ToHashSet(StringComparer.Ordinal);
            foreach (string gone in _logged.Keys.Where(k => !current.Contains(k)).ToArray())
            {
                _logged.Remove(gone);
            }
            return lines;
        }
        finally
        {
            Monitor.Exit(_passLock);
        }
    }
}
