using System.Net;
using Broker.Diagnostics.Insight;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;
using Xunit;

namespace Broker.Tests.Diagnostics.Insight;

public sealed class KeepAliveInsightReporterTests
{
    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(600);

    private readonly FakeTimeProvider _time = new();
    private readonly CollectingLogger _log = new();
    private readonly KeepAliveInsight _insight;
    private readonly KeepAliveInsightReporter _reporter;

    public KeepAliveInsightReporterTests()
    {
        _insight = new KeepAliveInsight(new KeepAliveInsightOptions { LogIntervalSeconds = 600 }, _time);
        _reporter = new KeepAliveInsightReporter(_insight, _time, _log);
    }

    private void Evidence(string network, int deaths = 20, double idle = 350, ushort keepAlive = 600)
    {
        for (int i = 0; i < deaths; i++)
        {
            _insight.ConnectionOpened(IPAddress.Parse(network), keepAlive);
            _insight.ConnectionDied(IPAddress.Parse(network), HalfOpenCause.Takeover, TimeSpan.FromSeconds(idle + i * 0.1), keepAlive);
        }
    }

    [Fact]
    public async Task Each_interval_logs_the_networks_with_advice_and_nothing_else()
    {
        _insight.ConnectionOpened(IPAddress.Parse("198.51.100.1"), 60);   // healthy: no line
        Evidence("203.0.113.1");
        await _reporter.StartAsync(TestContext.Current.CancellationToken);

        _time.Advance(Interval - TimeSpan.FromSeconds(1));
        Assert.Empty(_log.Lines);

        _time.Advance(TimeSpan.FromSeconds(1));
        var (id, level, message) = Assert.Single(_log.Lines);
        Assert.Equal((1600, LogLevel.Information), (id, level));
        Assert.StartsWith("Keep-alive insight: clients from 203.0.113.0/24: 20 of 20 connections died half-open after 350-352 s idle", message);

        await _reporter.StopAsync(TestContext.Current.CancellationToken);
        _time.Advance(Interval * 3);
        Assert.Single(_log.Lines);
    }

    [Fact]
    public void Unchanged_advice_is_repeated_only_every_so_many_passes_and_new_counts_are_not_a_change()
    {
        Evidence("203.0.113.1");
        Assert.Equal(1, _reporter.Report());

        Evidence("203.0.113.1", deaths: 5);   // more of the same: the counts change, the advice does not
        for (int pass = 2; pass <= KeepAliveInsightReporter.RepeatAfterPasses; pass++)
        {
            Assert.Equal(0, _reporter.Report());
        }

        Assert.Equal(1, _reporter.Report());
    }

    [Fact]
    public void Changed_advice_and_a_new_network_are_logged_at_once()
    {
        Evidence("203.0.113.1");
        _reporter.Report();

        Evidence("198.51.100.1");
        Assert.Equal(1, _reporter.Report());
        Assert.Contains("198.51.100.0/24", _log.Lines[^1].Message);

        // The same network now dies earlier and more often: the recommended K changes.
        Evidence("203.0.113.1", deaths: 40, idle: 100, keepAlive: 120);
        Assert.Equal(1, _reporter.Report());
        Assert.Contains("<= 80", _log.Lines[^1].Message);
    }

    [Fact]
    public void A_pass_logs_at_most_five_networks_and_says_how_many_more()
    {
        for (int n = 1; n <= 8; n++)
        {
            Evidence($"203.0.{n}.1");
        }

        Assert.Equal(6, _reporter.Report());

        Assert.Equal(5, _log.Lines.Count(l => l.EventId == 1600));
        Assert.Equal("Keep-alive insight: 3 more networks have advice; GET /api/keepalive/networks on the metrics listener lists them",
            Assert.Single(_log.Lines, l => l.EventId == 1601).Message);
        // The three left out are the first of the next pass.
        Assert.Equal(3, _reporter.Report());
    }

    [Fact]
    public async Task Interval_zero_never_logs()
    {
        var insight = new KeepAliveInsight(new KeepAliveInsightOptions { LogIntervalSeconds = 0 }, _time);
        var quiet = new KeepAliveInsightReporter(insight, _time, _log);
        for (int i = 0; i < 20; i++)
        {
            insight.ConnectionOpened(IPAddress.Parse("203.0.113.1"), 600);
            insight.ConnectionDied(IPAddress.Parse("203.0.113.1"), HalfOpenCause.Takeover, TimeSpan.FromSeconds(350), 600);
        }
        Assert.NotNull(Assert.Single(insight.Snapshot()).Advice);

        await quiet.StartAsync(TestContext.Current.CancellationToken);
        _time.Advance(TimeSpan.FromDays(1));

        Assert.Empty(_log.Lines);
    }

    private sealed class CollectingLogger : ILogger<KeepAliveInsightReporter>
    {
        public List<(int EventId, LogLevel Level, string Message)> Lines { get; } = [];

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            => Lines.Add((eventId.Id, logLevel, formatter(state, exception)));
    }
}
