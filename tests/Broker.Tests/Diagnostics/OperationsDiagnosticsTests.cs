using System.Buffers;
using System.Text;
using Broker.Diagnostics;
using Broker.Hosting;
using Broker.Protocol;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using Xunit;

namespace Broker.Tests.Diagnostics;

/// <summary>Names shared by logs and metrics, the zero series, the tick-lag recording, the summary line and $SYS's rule.</summary>
public sealed class OperationsDiagnosticsTests
{
    [Fact]
    public void Every_disconnect_cause_has_one_snake_case_name_used_by_logs_and_metrics()
    {
        Assert.Equal("keep_alive_timeout", DiagnosticNames.Of(DisconnectCause.KeepAliveTimeout));
        Assert.Equal("administrative_action", DiagnosticNames.Of(DisconnectCause.AdministrativeAction));
        Assert.Equal("qos0_congestion", DiagnosticNames.Of(DropReason.QoS0Congestion));
        Assert.Equal("not_authorized", DiagnosticNames.Of(DropReason.NotAuthorized));
        Assert.All(Enum.GetValues<DisconnectCause>(), c => Assert.Matches("^[a-z0-9]+(_[a-z0-9]+)*$", DiagnosticNames.Of(c)));
    }

    [Fact]
    public void Declared_series_cover_every_label_value_at_zero()
    {
        using var metrics = new BrokerMetrics();
        var seen = new List<(string Instrument, long Value, string Tag)>();
        using var listener = MeterRecording.Start(metrics.Meter, seen);

        metrics.DeclareSeries();

        Assert.All(seen, s => Assert.Equal(0, s.Value));
        foreach (var cause in Enum.GetValues<DisconnectCause>())
        {
            Assert.Contains(("mqtt.disconnects", 0L, "cause=" + DiagnosticNames.Of(cause)), seen);
        }
        foreach (var reason in Enum.GetValues<DropReason>())
        {
            Assert.Contains(("mqtt.messages.dropped", 0L, "reason=" + DiagnosticNames.Of(reason)), seen);
        }
        foreach (var result in Enum.GetValues<ConnectResult>())
        {
            Assert.Contains(("mqtt.connect.attempts", 0L, "result=" + DiagnosticNames.Of(result)), seen);
        }
        Assert.Contains(("mqtt.clients.connected", 0L, "protocol=5.0"), seen);
    }

    [Theory]
    [InlineData(0, 0)]      // on the grid
    [InlineData(99, 0)]     // a beat a hair early, seen by the next one as a whole tick late: the artefact
    [InlineData(100, 0)]
    [InlineData(140, 40)]
    [InlineData(4100, 4000)] // a 4 s stall
    public void Tick_lag_is_recorded_beyond_the_wheels_one_tick_precision(int lagMs, int recordedMs)
        => Assert.Equal(TimeSpan.FromMilliseconds(recordedMs),
            BrokerStateObserver.BeyondOneTick(TimeSpan.FromMilliseconds(lagMs), TimeSpan.FromMilliseconds(100)));

    [Fact]
    public void Summary_counts_the_interval_by_cause_and_says_nothing_when_nothing_happened()
    {
        using var metrics = new BrokerMetrics();
        using var totals = new MeterTotals(metrics);
        var logger = new ListLogger();
        var summary = new ConnectionSummaryLog(new Lazy<MeterTotals>(totals), Options.Create(new BrokerLoggingOptions()), new FakeTimeProvider(), logger);

        summary.WriteSummary(60);
        Assert.Empty(logger.Lines);

        for (int i = 0; i < 3; i++)
        {
            metrics.ConnectAttempt(ConnectResult.Accepted);
            metrics.ClientConnected(MqttProtocolVersion.V311);
        }
        metrics.ConnectAttempt(ConnectResult.KeepAliveRefused);
        metrics.Disconnect(DisconnectCause.ConnectRefused);
        metrics.Disconnect(DisconnectCause.KeepAliveTimeout);
        metrics.Disconnect(DisconnectCause.KeepAliveTimeout);
        metrics.ClientDisconnected(MqttProtocolVersion.V311);
        metrics.ClientDisconnected(MqttProtocolVersion.V311);
        summary.WriteSummary(60);

        var line = Assert.Single(logger.Lines);
        Assert.Equal("Last 60 s: 3 connected, 3 disconnected (keep_alive_timeout 2, connect_refused 1), 1 refused (keep_alive_refused 1); 1 online", line);

        summary.WriteSummary(60);
        Assert.Single(logger.Lines); // the next interval had nothing
    }

    [Theory]
    [InlineData("$SYS/broker/uptime", true)]
    [InlineData("$SYS", true)]
    [InlineData("$SYS/", true)]
    [InlineData("$SYSTEM/x", false)]
    [InlineData("$SY", false)]
    [InlineData("sys/x", false)]
    [InlineData("a/$SYS/x", false)]
    public void SYS_prefix_is_recognised_as_a_whole_first_level(string topic, bool reserved)
    {
        // The publish path decodes the topic (segmented or through an alias) to characters before this one check.
        Assert.Equal(reserved, SysTopicRules.IsReserved(topic));
    }

    [Fact]
    public void Bind_failures_name_the_key_and_the_port()
    {
        var inUse = new System.Net.Sockets.SocketException((int)System.Net.Sockets.SocketError.AddressAlreadyInUse);
        Assert.Equal("Broker:Tcp:Port 1883 is already in use on 0.0.0.0: another process listens there (choose another port with --Broker:Tcp:Port=N)",
            StartupFailures.Describe("Broker:Tcp", "0.0.0.0", 1883, inUse));
        var wrapped = new IOException("Failed to bind", new Microsoft.AspNetCore.Connections.AddressInUseException("in use", inUse));
        Assert.True(StartupFailures.IsBindFailure(wrapped));
        Assert.StartsWith("Broker:Metrics:Port 9464 is already in use", StartupFailures.Describe("Broker:Metrics", "0.0.0.0", 9464, wrapped));
        var notHere = new System.Net.Sockets.SocketException((int)System.Net.Sockets.SocketError.AddressNotAvailable);
        Assert.StartsWith("Broker:Tcp:Address 10.9.9.9 is not an address of this host", StartupFailures.Describe("Broker:Tcp", "10.9.9.9", 1883, notHere));
    }

    [Theory]
    [InlineData("Broker:Admin:Token", "abc", "***")]
    [InlineData("Broker:Security:Password", "p", "***")]
    [InlineData("Broker:Tls:KeyPassphrase", "p", "***")]
    [InlineData("Broker:Admin:Token", "(unset)", "(unset)")]
    [InlineData("Broker:KeepAlive:MaxSeconds", "60", "60")]
    public void Print_config_redacts_secret_looking_keys(string key, string value, string printed)
        => Assert.Equal(printed, EffectiveConfiguration.Redact(key, value));

    private sealed class ListLogger : ILogger<ConnectionSummaryLog>
    {
        public List<string> Lines { get; } = [];

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            => Lines.Add(formatter(state, exception));
    }
}
