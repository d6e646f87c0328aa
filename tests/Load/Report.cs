using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Broker.Load;

/// <summary>Turns merged measurements into the human summary and the single RESULT JSON line.</summary>
internal static class Report
{
    public static (string Summary, string Json) Build(LoadOptions options, WorkerResult merged, BrokerProbe probe, int workers, int workersFailed, double wallSeconds)
    {
        Dictionary<string, long> c = merged.Counters;
        Dictionary<string, double> t = merged.Timings;
        Dictionary<string, LatencyHistogram> h = merged.Histograms.ToDictionary(p => p.Key, p => LatencyHistogram.FromData(p.Value));
        var json = new Dictionary<string, object?>
        {
            ["scenario"] = LoadOptions.ScenarioName(options.Scenario),
            ["mqtt"] = options.ProtocolVersion == Wire.Mqtt5 ? "5.0" : "3.1.1",
            ["host"] = options.Host,
            ["port"] = options.Port,
            ["clients"] = options.TotalClients,
            ["keepAliveSeconds"] = options.KeepAliveSeconds,
            ["workers"] = workers,
            ["workersFailed"] = workersFailed,
            ["wallSeconds"] = Round(wallSeconds),
        };
        var text = new StringBuilder();
        text.AppendLine($"{json["scenario"]}: {options.TotalClients} clients, MQTT {json["mqtt"]}, K={options.KeepAliveSeconds}s, {workers} process(es), {wallSeconds:F1}s wall");
        if (workersFailed > 0)
        {
            text.AppendLine($"  WARNING: {workersFailed} worker(s) gave no result");
        }

        if (c.GetValueOrDefault("deadlineExceeded") > 0)
        {
            text.AppendLine("  WARNING: the run hit its deadline; figures are partial");
            json["deadlineExceeded"] = true;
        }

        // Connect phase: every scenario has one.
        long connected = c.GetValueOrDefault("connectsSucceeded") - c.GetValueOrDefault("reconnectSucceeded");
        long failed = c.GetValueOrDefault("connectsFailed") - c.GetValueOrDefault("reconnectFailed");
        double connectSeconds = t.GetValueOrDefault("connectSeconds");
        var failures = c.Where(p => p.Key.StartsWith("connectFailures.", StringComparison.Ordinal))
            .ToDictionary(p => p.Key["connectFailures.".Length..], p => p.Value);
        json["connect"] = new Dictionary<string, object?>
        {
            ["targetRate"] = options.Scenario == Scenario.PubSub ? 0 : options.Rate,
            ["succeeded"] = connected,
            ["failed"] = failed,
            ["failures"] = failures,
            ["seconds"] = Round(connectSeconds),
            ["achievedRate"] = Round(connectSeconds > 0 ? connected / connectSeconds : 0),
            ["latencyMs"] = Latency(h, HistogramNames.Connect),
        };
        text.AppendLine($"  connect: {connected} ok, {failed} failed {Format(failures)} in {connectSeconds:F2}s ({(connectSeconds > 0 ? connected / connectSeconds : 0):F0}/s, target {(options.Rate > 0 && options.Scenario != Scenario.PubSub ? options.Rate.ToString(CultureInfo.InvariantCulture) : "unlimited")}); latency {LatencyText(h, HistogramNames.Connect)}");

        if (options.Scenario != Scenario.Connect)
        {
            json["ping"] = new Dictionary<string, object?>
            {
                ["sent"] = c.GetValueOrDefault("pingsSent"),
                ["received"] = c.GetValueOrDefault("pongsReceived"),
                ["missing"] = c.GetValueOrDefault("pongsMissing"),
                ["blocked"] = c.GetValueOrDefault("pingsBlocked"),
                ["latencyMs"] = Latency(h, HistogramNames.Ping),
            };
            var kinds = c.Where(p => p.Key.StartsWith("unexpectedDisconnectKinds.", StringComparison.Ordinal))
                .ToDictionary(p => p.Key["unexpectedDisconnectKinds.".Length..], p => p.Value);
            json["unexpectedDisconnects"] = c.GetValueOrDefault("unexpectedDisconnects");
            json["unexpectedDisconnectKinds"] = kinds;
            text.AppendLine($"  ping: {c.GetValueOrDefault("pingsSent")} sent, {c.GetValueOrDefault("pongsReceived")} answered, {c.GetValueOrDefault("pongsMissing")} unanswered; PINGRESP {LatencyText(h, HistogramNames.Ping)}");
            text.AppendLine($"  unexpected disconnects: {c.GetValueOrDefault("unexpectedDisconnects")} {Format(kinds)}");
        }

        AddBroker(options, probe, connected, json, text);

        switch (options.Scenario)
        {
            case Scenario.Silent:
                AddSilent(options, c, t, h, json, text);
                break;
            case Scenario.ReconnectStorm:
                AddStorm(c, t, h, json, text);
                break;
            case Scenario.PubSub:
                AddPubSub(options, c, t, h, json, text);
                break;
        }

        json["counters"] = c;
        json["timings"] = t.ToDictionary(p => p.Key, p => Round(p.Value));
        json["phases"] = probe.Samples;
        return (text.ToString(), JsonSerializer.Serialize(json));
    }

    private static void AddBroker(LoadOptions options, BrokerProbe probe, long connected, Dictionary<string, object?> json, StringBuilder text)
    {
        if (probe.Pid is null)
        {
            return;
        }

        ProbeSample? before = probe.Find("start");
        ProbeSample? after = probe.Find("connected");
        ProbeSample? end = probe.Samples.LastOrDefault(s => s.Phase != "end");
        ProbeSample? holdEnd = probe.Find("hold-end") ?? probe.Find("silence-start");
        var broker = new Dictionary<string, object?>
        {
            ["pid"] = probe.Pid,
            ["rssBeforeKb"] = before?.RssKb,
            ["rssConnectedKb"] = after?.RssKb,
            ["rssEndKb"] = end?.RssKb,
            ["rssAfterCloseKb"] = probe.Find("end")?.RssKb,
        };
        if (before?.RssKb is { } b && after?.RssKb is { } a && connected > 0)
        {
            double perConnection = (a - b) * 1024.0 / connected;
            broker["rssPerConnectionBytes"] = Round(perConnection);
            text.AppendLine($"  broker RSS: {b / 1024.0:F1} MB before, {a / 1024.0:F1} MB connected, {end?.RssKb / 1024.0:F1} MB at end; {perConnection:F0} B per connection");
        }

        if (after is { CpuSeconds: { } cpuAfter } && holdEnd is { CpuSeconds: { } cpuEnd } && holdEnd.AtSeconds > after.AtSeconds)
        {
            double window = holdEnd.AtSeconds - after.AtSeconds;
            double percent = (cpuEnd - cpuAfter) / window * 100;
            broker["idleCpuPercent"] = Round(percent);
            broker["idleWindowSeconds"] = Round(window);
            text.AppendLine($"  broker idle CPU: {percent:F2}% of one core over {window:F1}s hold ({cpuEnd - cpuAfter:F2} CPU s)");
        }

        if (probe.Find("hold-steady") is { CpuSeconds: { } cpuSteady } steady && holdEnd is { CpuSeconds: { } cpuHoldEnd } && holdEnd.AtSeconds > steady.AtSeconds)
        {
            double window = holdEnd.AtSeconds - steady.AtSeconds;
            double percent = (cpuHoldEnd - cpuSteady) / window * 100;
            broker["steadyIdleCpuPercent"] = Round(percent);
            broker["steadyWindowSeconds"] = Round(window);
            broker["rssHoldEndKb"] = holdEnd.RssKb;
            string perConnectionText = "";
            if (before?.RssKb is { } startKb && holdEnd.RssKb is { } endKb && connected > 0)
            {
                double perConnection = (endKb - startKb) * 1024.0 / connected;
                broker["rssPerConnectionAtHoldEndBytes"] = Round(perConnection);
                perConnectionText = $", {perConnection:F0} B per connection";
            }

            text.AppendLine($"  broker steady idle CPU: {percent:F2}% of one core over the last {window:F1}s of the hold ({cpuHoldEnd - cpuSteady:F2} CPU s); RSS {holdEnd.RssKb / 1024.0:F1} MB at hold end{perConnectionText}");
        }

        json["broker"] = broker;
    }

    private static void AddSilent(LoadOptions options, Dictionary<string, long> c, Dictionary<string, double> t, Dictionary<string, LatencyHistogram> h, Dictionary<string, object?> json, StringBuilder text)
    {
        double k = options.KeepAliveSeconds;
        LatencyHistogram close = h.GetValueOrDefault(HistogramNames.SilentClose) ?? new LatencyHistogram();
        double InK(long micros) => Round(micros / 1e6 / k);
        var reasons = c.Where(p => p.Key.StartsWith("disconnectReasons.", StringComparison.Ordinal))
            .ToDictionary(p => p.Key["disconnectReasons.".Length..], p => p.Value);
        var kinds = c.Where(p => p.Key.StartsWith("silentCloseKinds.", StringComparison.Ordinal))
            .ToDictionary(p => p.Key["silentCloseKinds.".Length..], p => p.Value);
        json["silent"] = new Dictionary<string, object?>
        {
            ["fraction"] = options.SilentFraction,
            ["clients"] = c.GetValueOrDefault("silentClients"),
            ["closed"] = c.GetValueOrDefault("silentClosed"),
            ["neverClosed"] = c.GetValueOrDefault("silentNeverClosed"),
            ["waitSeconds"] = Round(t.GetValueOrDefault("silenceWaitSeconds")),
            ["closeAfterK"] = new Dictionary<string, object?>
            {
                ["min"] = InK(close.Min),
                ["p50"] = InK(close.Percentile(50)),
                ["p99"] = InK(close.Percentile(99)),
                ["max"] = InK(close.Max),
            },
            ["closeKinds"] = kinds,
            ["disconnectReasons"] = reasons,
            ["healthyClosed"] = c.GetValueOrDefault("healthyClosedDuringSilence"),
            ["healthyPingDuringExpiryMs"] = Latency(h, HistogramNames.PingDuringExpiry),
        };
        text.AppendLine($"  silent: {c.GetValueOrDefault("silentClients")} went silent, {c.GetValueOrDefault("silentClosed")} closed by the broker {Format(kinds)}, {c.GetValueOrDefault("silentNeverClosed")} never closed within {options.SilenceWindowK}K + {LoadOptions.SilenceMarginSeconds}s");
        text.AppendLine($"  close after last packet, in K: min {InK(close.Min)} p50 {InK(close.Percentile(50))} p99 {InK(close.Percentile(99))} max {InK(close.Max)}; DISCONNECT reasons {Format(reasons)}");
        text.AppendLine($"  healthy: {c.GetValueOrDefault("healthyClosedDuringSilence")} wrongly closed; PINGRESP during expiry {LatencyText(h, HistogramNames.PingDuringExpiry)}");
    }

    private static void AddStorm(Dictionary<string, long> c, Dictionary<string, double> t, Dictionary<string, LatencyHistogram> h, Dictionary<string, object?> json, StringBuilder text)
    {
        var failures = c.Where(p => p.Key.StartsWith("reconnectFailures.", StringComparison.Ordinal))
            .ToDictionary(p => p.Key["reconnectFailures.".Length..], p => p.Value);
        json["reconnect"] = new Dictionary<string, object?>
        {
            ["succeeded"] = c.GetValueOrDefault("reconnectSucceeded"),
            ["failed"] = c.GetValueOrDefault("reconnectFailed"),
            ["failures"] = failures,
            ["allBackSeconds"] = Round(t.GetValueOrDefault("reconnectAllBackSeconds")),
            ["latencyMs"] = Latency(h, HistogramNames.Reconnect),
        };
        text.AppendLine($"  reconnect storm: {c.GetValueOrDefault("reconnectSucceeded")} back, {c.GetValueOrDefault("reconnectFailed")} failed {Format(failures)}; all back after {t.GetValueOrDefault("reconnectAllBackSeconds"):F2}s; latency {LatencyText(h, HistogramNames.Reconnect)}");
    }

    private static void AddPubSub(LoadOptions options, Dictionary<string, long> c, Dictionary<string, double> t, Dictionary<string, LatencyHistogram> h, Dictionary<string, object?> json, StringBuilder text)
    {
        double publishSeconds = t.GetValueOrDefault("publishSeconds");
        double deliverySeconds = t.GetValueOrDefault("deliverySeconds");
        long delivered = c.GetValueOrDefault("delivered");
        long published = c.GetValueOrDefault("published");
        string mode = options.Mode switch { PubSubMode.FanIn => "fan-in", PubSubMode.FanOut => "fan-out", _ => "pairs" };
        json["pubsub"] = new Dictionary<string, object?>
        {
            ["mode"] = mode,
            ["qos"] = options.Qos,
            ["payloadBytes"] = options.PayloadBytes,
            ["publishers"] = options.PublisherCount,
            ["subscribers"] = options.SubscriberCount,
            ["targetRate"] = options.Rate,
            ["maxInFlight"] = options.MaxInFlight,
            ["published"] = published,
            ["publishRate"] = Round(publishSeconds > 0 ? published / publishSeconds : 0),
            ["acked"] = c.GetValueOrDefault("publishAcked"),
            ["delivered"] = delivered,
            ["deliveredPerSecond"] = Round(deliverySeconds > 0 ? delivered / deliverySeconds : 0),
            ["expected"] = c.GetValueOrDefault("expectedDeliveries"),
            ["lost"] = c.GetValueOrDefault("notDelivered"),
            ["duplicates"] = c.GetValueOrDefault("duplicates"),
            ["sequenceGaps"] = c.GetValueOrDefault("sequenceGaps"),
            ["endToEndMs"] = Latency(h, HistogramNames.EndToEnd),
            ["idleClients"] = options.IdleClients,
            ["idlePingMs"] = Latency(h, HistogramNames.IdlePing),
            ["stalledSubscribers"] = c.GetValueOrDefault("stalledSubscribers"),
            ["stalledEndToEndMs"] = Latency(h, HistogramNames.StalledEndToEnd),
        };
        text.AppendLine($"  pubsub {mode} QoS {options.Qos}, {options.PayloadBytes} B: {options.PublisherCount} publishers -> {options.SubscriberCount} subscribers");
        text.AppendLine($"  published {published} ({(publishSeconds > 0 ? published / publishSeconds : 0):F0}/s), delivered {delivered} ({(deliverySeconds > 0 ? delivered / deliverySeconds : 0):F0}/s) of {c.GetValueOrDefault("expectedDeliveries")} expected; {(options.Qos == 1 ? "lost" : "not delivered")} {c.GetValueOrDefault("notDelivered")}, duplicates {c.GetValueOrDefault("duplicates")}, gaps {c.GetValueOrDefault("sequenceGaps")}");
        text.AppendLine($"  end-to-end {LatencyText(h, HistogramNames.EndToEnd)}");
        if (options.IdleClients > 0)
        {
            text.AppendLine($"  idle clients ({options.IdleClients}, K = {options.KeepAliveSeconds} s): PINGRESP {LatencyText(h, HistogramNames.IdlePing)}");
        }
        if (options.StallSubscribers > 0)
        {
            text.AppendLine($"  stalled subscribers ({c.GetValueOrDefault("stalledSubscribers")}, {options.StallSeconds} s from {options.StallAtSeconds} s): end-to-end {LatencyText(h, HistogramNames.StalledEndToEnd)}");
        }
    }

    private static Dictionary<string, object?> Latency(Dictionary<string, LatencyHistogram> histograms, string name)
    {
        LatencyHistogram histogram = histograms.GetValueOrDefault(name) ?? new LatencyHistogram();
        return new Dictionary<string, object?>
        {
            ["count"] = histogram.Count,
            ["p50"] = Round(histogram.Percentile(50) / 1000.0),
            ["p99"] = Round(histogram.Percentile(99) / 1000.0),
            ["p999"] = Round(histogram.Percentile(99.9) / 1000.0),
            ["max"] = Round(histogram.Max / 1000.0),
            ["mean"] = Round(histogram.Mean / 1000.0),
        };
    }

    private static string LatencyText(Dictionary<string, LatencyHistogram> histograms, string name)
    {
        LatencyHistogram histogram = histograms.GetValueOrDefault(name) ?? new LatencyHistogram();
        return histogram.Count == 0
            ? "(no samples)"
            : $"p50 {histogram.Percentile(50) / 1000.0:F2} ms, p99 {histogram.Percentile(99) / 1000.0:F2} ms, max {histogram.Max / 1000.0:F2} ms (n={histogram.Count})";
    }

    private static string Format(Dictionary<string, long> values) =>
        values.Count == 0 ? "" : "(" + string.Join(", ", values.Select(p => $"{p.Key}: {p.Value}")) + ")";

    private static double Round(double value) => Math.Round(value, 3);
}
