using BenchmarkDotNet.Attributes;
using Broker.Routing;

namespace Broker.Benchmarks;

/// <summary>
/// N clients subscribing to one filter (and joining one shared group), then all of them leaving in
/// arrival order. Each change must be O(1) amortized: the time per client must not grow with N.
/// </summary>
[MemoryDiagnoser]
public class SubscriberListBenchmarks
{
    private string[] _clientIds = [];

    [Params(1_000, 10_000, 100_000)]
    public int Clients { get; set; }

    [GlobalSetup]
    public void Setup() => _clientIds = [.. Enumerable.Range(0, Clients).Select(i => "device-" + i)];

    [Benchmark]
    public int OneFilterSubscribeThenUnsubscribeAll()
    {
        var tree = new SubscriptionTree<int>();
        foreach (string id in _clientIds)
        {
            tree.Subscribe("fleet/cmd", id, 1);
        }

        int removed = 0;
        foreach (string id in _clientIds)
        {
            removed += tree.Unsubscribe("fleet/cmd", id) ? 1 : 0;
        }

        return removed;
    }

    [Benchmark]
    public int OneSharedGroupJoinThenLeaveAll()
    {
        var tree = new SubscriptionTree<int>();
        foreach (string id in _clientIds)
        {
            tree.Subscribe("$share/workers/jobs/+", id, 1);
        }

        int removed = 0;
        foreach (string id in _clientIds)
        {
            removed += tree.Unsubscribe("$share/workers/jobs/+", id) ? 1 : 0;
        }

        return removed;
    }
}
