using System.Text.RegularExpressions;
using Conformance.Infrastructure;
using MQTTnet.Protocol;
using Xunit;
using static Conformance.Infrastructure.TestClients;

namespace Conformance.Operations;

/// <summary>
/// Every metric name (and every exact label value) that the README, docs/*.md, the Grafana dashboard and the alert
/// rules mention is one the real exporter of an in-process broker produces: a renamed instrument or label breaks this
/// test, not an operator's dashboard.
/// </summary>
public sealed partial class DocumentedMetricNamesTests
{
    [Fact]
    public async Task Every_metric_name_and_label_value_in_docs_dashboards_and_alerts_is_exported()
    {
        // The engine-lag probe on (test brokers have it off): its histogram appears with the first PUBLISH's probe.
        await using var broker = await BrokerInstance.StartAsync(new Dictionary<string, string?> { ["Broker:Limits:EngineLagMilliseconds"] = "20" });
        using var scraper = new MetricsScraper(broker);
        // A connect and a publish, so that the histograms recorded per event have samples too; retained, so that the
        // persistent store commits it (mqtt_persistence_commit_duration_seconds).
        using (var client = await MqttClients.ConnectAsync(broker, V500))
        {
            await client.PublishAsync(new MQTTnet.MqttApplicationMessageBuilder().WithTopic("docs/check").WithPayload("x")
                .WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).WithRetainFlag().Build(), TestContext.Current.CancellationToken);
        }
        // A takeover: a connection proven dead gives mqtt_connection_idle_before_death_seconds a sample.
        using (var first = await MqttClients.ConnectAsync(broker, V500, "docs-takeover"))
        using (var second = await MqttClients.ConnectAsync(broker, V500, "docs-takeover"))
        {
        }
        var samples = await scraper.WaitUntilAsync(
            s => MetricsScraper.Value(s, "mqtt_keepalive_negotiated_seconds_count") >= 1 && MetricsScraper.Value(s, "mqtt_timer_wheel_tick_lag_seconds_count") >= 1
                && MetricsScraper.Value(s, "mqtt_connection_idle_before_death_seconds_count") >= 1
                && MetricsScraper.Value(s, "mqtt_persistence_commit_duration_seconds_count") >= 1
                && MetricsScraper.Value(s, "mqtt_socket_engine_lag_seconds_count") >= 1,
            "one negotiated keep-alive, one wheel beat (the first comes a tick after start), one takeover, one store commit and one engine-lag probe");
        using var response = await scraper.GetAsync("metrics");
        string exposition = await response.Content.ReadAsStringAsync();
        var names = samples.Select(s => s.Name).ToHashSet(StringComparer.Ordinal);
        // Histogram and counter family names as "# TYPE" declares them ("..._seconds" for "..._seconds_bucket").
        names.UnionWith(TypeLine().Matches(exposition).Select(m => m.Groups[1].Value));

        var problems = new List<string>();
        int checkedNames = 0;
        foreach (var file in RepositoryFiles.Documents(".json", ".yml"))
        {
            string text = File.ReadAllText(file);
            string relative = Path.GetRelativePath(RepositoryFiles.Root, file);
            foreach (Match m in MetricReference().Matches(text))
            {
                string name = m.Groups["name"].Value;
                checkedNames++;
                if (!names.Contains(name))
                {
                    problems.Add($"{relative}: {name} is not in the exporter's output");
                    continue;
                }
                foreach (Match label in ExactLabel().Matches(m.Groups["labels"].Value))
                {
                    string key = label.Groups[1].Value, value = label.Groups[2].Value;
                    if (key is "le" or "job" or "instance" || value.Contains('$'))
                    {
                        continue; // scrape labels, bucket bounds and dashboard variables
                    }
                    string family = Family(name);
                    if (!samples.Any(s => Family(s.Name) == family && s.Labels.TryGetValue(key, out var v) && v == value))
                    {
                        problems.Add($"{relative}: {name}{{{key}=\"{value}\"}} has no such series");
                    }
                }
            }
            foreach (Match m in InstrumentName().Matches(text))
            {
                problems.Add($"{relative}: `{m.Groups[1].Value}` is an OpenTelemetry instrument name; operators query the Prometheus name");
            }
        }
        Assert.True(checkedNames > 50, $"only {checkedNames} metric references found: is the pattern still right?");
        Assert.True(problems.Count == 0, string.Join("\n", problems.Distinct()));
    }

    private static string Family(string name)
    {
        foreach (var suffix in new[] { "_bucket", "_count", "_sum" })
        {
            if (name.EndsWith(suffix, StringComparison.Ordinal))
            {
                return name[..^suffix.Length];
            }
        }
        return name;
    }

    [GeneratedRegex(@"^# TYPE (\S+) ", RegexOptions.Multiline)]
    private static partial Regex TypeLine();

    // mqtt_*, process_* and dotnet_* names, with an optional {label matchers} block right after.
    [GeneratedRegex(@"(?<![\w.-])(?<name>(?:mqtt|process|dotnet)_[a-z0-9_]*[a-z0-9])(?![\w.-])(?:\{(?<labels>[^}]*)\})?")]
    private static partial Regex MetricReference();

    // key="value" with an exact match (not =~ or !=); inside JSON the quotes are escaped.
    [GeneratedRegex(@"(?<![!=~])\b([a-z_]+)=\\?""([^""\\]*)\\?""")]
    private static partial Regex ExactLabel();

    // `mqtt.connect.attempts`: an instrument name where a Prometheus name belongs.
    [GeneratedRegex(@"`(mqtt\.[a-z_]+\.[a-z_.]+)`")]
    private static partial Regex InstrumentName();
}
