using System.Globalization;
using Conformance.Infrastructure;
using Microsoft.Extensions.Logging;
using Xunit;
using Xunit.Sdk;

namespace Broker.Load.Tests;

/// <summary>
/// Every fleet scenario, a few hundred clients for a few seconds against our broker in this process:
/// the simulator works end to end and the broker's figures are sane (everyone connects, nobody is
/// dropped, silent clients go at 1.5 K and not before, no QoS 1 message is lost).
/// </summary>
public sealed class ScenarioSmokeTests
{
    private const int Clients = 300;

    // The broker's wheel ticks every 100 ms, so a deadline fires up to 0.1 s late; the rest is room
    // for a loaded two-core CI machine (the close is observed by a receive thread of this process).
    private const double CloseLateBySeconds = 0.1 + 0.3;

    // The client stamps its last send after the send call returns; the broker may have read it already.
    private const double SendStampSlackSeconds = 0.01;

    [Fact]
    public async Task Connect_all_clients_connect()
    {
        await using BrokerInstance broker = await StartBrokerAsync();

        LoadReport report = await RunAsync(broker, "connect", "--clients", Clients, "--rate", 0, "--keepalive", 30);

        Assert.Equal(Clients, report.Counter("connectsSucceeded"));
        Assert.Equal(0, report.Counter("connectsFailed"));
        Assert.Equal(Clients, report.Histogram(HistogramNames.Connect).Count);
        AssertClean(broker, report);
    }

    [Fact]
    public async Task Hold_every_ping_is_answered_and_nobody_is_dropped()
    {
        await using BrokerInstance broker = await StartBrokerAsync();

        LoadReport report = await RunAsync(broker, "hold", "--clients", Clients, "--keepalive", 2, "--duration", 3, "--rate", 0);

        Assert.Equal(Clients, report.Counter("connectsSucceeded"));
        long sent = report.Counter("pingsSent");
        // One ping per client per K from the first connect: about 1.5 K-periods' worth.
        Assert.InRange(sent, Clients, 3 * Clients);
        Assert.Equal(0, report.Counter("pongsMissing"));
        Assert.Equal(0, report.Counter("pingsBlocked"));
        // Only the pings in flight when the run closed may be unanswered.
        Assert.InRange(report.Counter("pongsReceived"), sent - 20, sent);
        AssertClean(broker, report);
    }

    [Fact]
    public async Task Silent_clients_are_closed_at_one_and_a_half_keep_alives_and_healthy_ones_stay()
    {
        await using BrokerInstance broker = await StartBrokerAsync();
        const int keepAlive = 2;

        LoadReport report = await RunAsync(broker, "silent", "--clients", Clients, "--keepalive", keepAlive, "--duration", 1,
            "--rate", 0, "--silent-fraction", 0.5, "--mqtt", 5);

        Assert.Equal(Clients, report.Counter("connectsSucceeded"));
        Assert.Equal(Clients / 2, report.Counter("silentClients"));
        Assert.Equal(Clients / 2, report.Counter("silentClosed"));
        Assert.Equal(0, report.Counter("silentNeverClosed"));
        Assert.Equal(0, report.Counter("healthyClosedDuringSilence"));
        // [MQTT-3.1.2-24] closed after 1.5 K without a packet; 5.0 clients are told why (0x8D).
        Assert.Equal(Clients / 2, report.Counter("disconnectReasons.0x8D"));
        LatencyHistogram close = report.Histogram(HistogramNames.SilentClose);
        double limit = 1.5 * keepAlive;
        Assert.InRange(close.Min / 1e6, limit - SendStampSlackSeconds, limit + CloseLateBySeconds);
        Assert.InRange(close.Max / 1e6, limit - SendStampSlackSeconds, limit + CloseLateBySeconds);
        Assert.True(report.Histogram(HistogramNames.PingDuringExpiry).Count > 0, "healthy clients kept pinging during the expiry window");
        AssertClean(broker, report, expectedUnexpected: 0);
    }

    [Theory]
    [InlineData("rst")]
    [InlineData("fin")]
    public async Task Reconnect_storm_everyone_comes_back(string drop)
    {
        await using BrokerInstance broker = await StartBrokerAsync();

        LoadReport report = await RunAsync(broker, "reconnect-storm", "--clients", Clients, "--keepalive", 30, "--max-pending", 0, "--drop", drop);

        Assert.Equal(Clients, report.Counter("reconnectSucceeded"));
        Assert.Equal(0, report.Counter("reconnectFailed"));
        Assert.Equal(2 * Clients, report.Counter("connectsSucceeded"));
        Assert.Equal(Clients, report.Histogram(HistogramNames.Reconnect).Count);
        AssertClean(broker, report);
    }

    // Paced: the point is delivery and loss accounting with broker and clients sharing two cores,
    // not throughput (docs/benchmarks.md has that).
    [Theory]
    [InlineData("fan-in", 201, 2000)]
    [InlineData("fan-out", 201, 100)]
    [InlineData("pairs", 300, 3000)]
    public async Task PubSub_qos1_loses_and_duplicates_nothing(string mode, int clients, int rate)
    {
        await using BrokerInstance broker = await StartBrokerAsync();

        LoadReport report = await RunAsync(broker, "pubsub", "--mode", mode, "--clients", clients, "--qos", 1, "--rate", rate,
            "--duration", 2, "--keepalive", 30);

        Assert.Equal(clients, report.Counter("connectsSucceeded"));
        Assert.Equal(0, report.Counter("subscribeTimeouts"));
        long published = report.Counter("published");
        Assert.InRange(published, rate, 3 * rate);
        Assert.Equal(published, report.Counter("publishAcked"));
        Assert.Equal(0, report.Counter("inFlightAtEnd"));
        Assert.Equal(report.Counter("expectedDeliveries"), report.Counter("delivered"));
        Assert.Equal(0, report.Counter("notDelivered"));
        Assert.Equal(0, report.Counter("duplicates"));
        Assert.Equal(0, report.Counter("sequenceGaps"));
        Assert.Equal(0, report.Counter("unexpectedPublish"));
        AssertClean(broker, report);
    }

    // The scenarios use clean sessions, which the store never sees: no store, so that it is not what they measure.
    private static Task<BrokerInstance> StartBrokerAsync() => BrokerInstance.StartAsync(
        new Dictionary<string, string?> { ["Broker:Persistence:Enabled"] = "false" }, minimumLogLevel: LogLevel.Warning);

    private static async Task<LoadReport> RunAsync(BrokerInstance broker, string scenario, params object[] flags)
    {
        string[] args =
        [
            scenario,
            .. flags.Select(f => Convert.ToString(f, CultureInfo.InvariantCulture)!),
            "--port", broker.Port.ToString(CultureInfo.InvariantCulture),
            "--no-progress",
        ];
        LoadOptions options = LoadOptionsParser.Parse(args);
        LoadReport report = await ScenarioRunner.RunInProcessAsync(options, TestContext.Current.CancellationToken);
        TestContext.Current.TestOutputHelper?.WriteLine(report.Summary);
        return report;
    }

    private static void AssertClean(BrokerInstance broker, LoadReport report, long expectedUnexpected = 0)
    {
        Assert.Equal(0, report.Counter("deadlineExceeded"));
        if (report.Counter("unexpectedDisconnects") != expectedUnexpected)
        {
            throw new XunitException($"unexpected disconnects:{Environment.NewLine}{report.Summary}");
        }

        Assert.Empty(broker.Logs.Errors);
    }
}
