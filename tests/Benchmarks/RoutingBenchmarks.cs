using BenchmarkDotNet.Attributes;
using Broker.Routing;

namespace Broker.Benchmarks;

/// <summary>Matching one PUBLISH topic in a tree of 10,000 subscriptions; must allocate 0 B.</summary>
[MemoryDiagnoser]
public class RoutingBenchmarks
{
    private readonly SubscriptionTree<int> _tree = new();

    [GlobalSetup]
    public void Setup()
    {
        // 10,000 subscriptions: per-device exact and wildcard filters, fleet-wide wildcards, shared workers.
        for (int i = 0; i < 2_000; i++)
        {
            _tree.Subscribe($"fleet/{i % 50}/device/{i}/telemetry", $"device-{i}", 1);
            _tree.Subscribe($"fleet/{i % 50}/device/{i}/#", $"device-{i}", 1);
            _tree.Subscribe($"fleet/{i % 50}/device/+/status", $"monitor-{i}", 1);
            _tree.Subscribe($"$share/ingest/fleet/{i % 50}/device/+/telemetry", $"worker-{i}", 1);
            _tree.Subscribe($"alerts/{i}", $"ops-{i}", 1);
        }
    }

    [Benchmark]
    public int MatchTelemetry() => Match("fleet/7/device/1007/telemetry");

    [Benchmark]
    public int MatchStatus() => Match("fleet/7/device/1007/status");

    [Benchmark]
    public int MatchNoSubscriber() => Match("nobody/listens/here");

    private int Match(string topic)
    {
        var visitor = new CountingVisitor();
        _tree.Match(topic.AsSpan(), ref visitor);
        return visitor.Visits;
    }

    private struct CountingVisitor : ISubscriptionVisitor<int>
    {
        public int Visits;

        public bool PrefersSharedMember(int value) => true;


        public void Visit(string clientId, int value, string? shareName) => Visits += value;
    }
}
