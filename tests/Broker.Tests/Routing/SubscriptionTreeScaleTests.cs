using Broker.Routing;
using Xunit;

namespace Broker.Tests.Routing;

/// <summary>
/// Fleet-sized nodes: 100,000 clients on one filter, in one shared group, or in 100,000 groups. Each
/// change must cost O(1) amortized: the bound of 20 s (the work takes a fraction of a second on an idle
/// machine, 2 s on a heavily shared one) is one a linear search and copy per change misses by far (the
/// old list took 2 s for 10,000 clients and grows with the square), and the slot arrays must give their
/// memory back as clients leave.
/// </summary>
public sealed class SubscriptionTreeScaleTests
{
    private const int Clients = 100_000;
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(20);

    [Fact]
    public void One_hundred_thousand_subscribers_on_one_filter_are_added_replaced_and_removed_in_linear_time()
    {
        var tree = new SubscriptionTree<string>();
        string[] ids = [.. Enumerable.Range(0, Clients).Select(i => "device-" + i)];
        long start = TimeProvider.System.GetTimestamp();

        foreach (string id in ids)
        {
            Assert.True(tree.Subscribe("fleet/cmd", id, "v1"));
        }

        foreach (string id in ids)
        {
            Assert.False(tree.Subscribe("fleet/cmd", id, "v2")); // [MQTT-3.8.4-3] replaces
        }

        var deliveries = tree.MatchAll("fleet/cmd");
        Assert.Equal(Clients, deliveries.Count);
        Assert.All(deliveries, d => Assert.Equal("v2", d.Value));
        Assert.Equal(Clients, deliveries.Select(d => d.ClientId).Distinct().Count());

        // Every other client first (tombstones everywhere), then the rest from the end backwards.
        for (int i = 0; i < Clients; i += 2)
        {
            Assert.True(tree.Unsubscribe("fleet/cmd", ids[i]));
        }

        Assert.InRange(tree.SubscriberCapacity("fleet/cmd"), Clients / 2, 2 * Clients);
        for (int i = Clients - 1; i >= 1000; i -= 2)
        {
            Assert.True(tree.Unsubscribe("fleet/cmd", ids[i]));
        }

        // 500 left: compaction gave the array back down to about twice the live entries.
        Assert.Equal(500, tree.Count);
        Assert.InRange(tree.SubscriberCapacity("fleet/cmd"), 500, 4 * 500);
        Assert.Equal(ids.Take(1000).Where((_, i) => i % 2 == 1).Order(StringComparer.Ordinal),
            tree.MatchAll("fleet/cmd").Select(d => d.ClientId).Order(StringComparer.Ordinal));

        Assert.Equal(500, tree.RemoveClient("unused", []) + ids.Take(1000).Count(id => tree.Unsubscribe("fleet/cmd", id)));
        Assert.Equal(0, tree.Count);
        Assert.Equal(0, tree.CountNodes());
        Assert.True(TimeProvider.System.GetElapsedTime(start) < Bound, $"took {TimeProvider.System.GetElapsedTime(start)}");
    }

    [Fact]
    public void One_hundred_thousand_members_of_one_shared_group_each_get_one_turn_and_leave_in_linear_time()
    {
        var tree = new SubscriptionTree<string>();
        long start = TimeProvider.System.GetTimestamp();
        for (int i = 0; i < Clients; i++)
        {
            Assert.True(tree.Subscribe("$share/workers/jobs/+", "w" + i, "w" + i));
        }

        // Round-robin: as many messages as members reach each member once.
        var chosen = new HashSet<string>();
        for (int i = 0; i < Clients; i++)
        {
            chosen.Add(Assert.Single(tree.MatchAll("jobs/1")).ClientId);
        }

        Assert.Equal(Clients, chosen.Count);

        for (int i = Clients - 1; i >= 0; i--)
        {
            if (i != 77)
            {
                Assert.True(tree.Unsubscribe("$share/workers/jobs/+", "w" + i));
            }
        }

        Assert.Equal("w77", Assert.Single(tree.MatchAll("jobs/1")).ClientId);
        Assert.True(tree.Unsubscribe("$share/workers/jobs/+", "w77"));
        Assert.Empty(tree.MatchAll("jobs/1"));
        Assert.Equal(0, tree.CountNodes());
        Assert.True(TimeProvider.System.GetElapsedTime(start) < Bound, $"took {TimeProvider.System.GetElapsedTime(start)}");
    }

    [Fact]
    public void One_hundred_thousand_shared_groups_on_one_filter_are_added_and_removed_in_linear_time()
    {
        var tree = new SubscriptionTree<string>();
        long start = TimeProvider.System.GetTimestamp();
        for (int i = 0; i < Clients; i++)
        {
            Assert.True(tree.Subscribe($"$share/g{i}/t", "c", "g" + i));
        }

        Assert.Equal(Clients, tree.MatchAll("t").Count);
        for (int i = 0; i < Clients; i++)
        {
            Assert.True(tree.Unsubscribe($"$share/g{i}/t", "c"));
        }

        Assert.Equal(0, tree.Count);
        Assert.Equal(0, tree.CountNodes());
        Assert.True(TimeProvider.System.GetElapsedTime(start) < Bound, $"took {TimeProvider.System.GetElapsedTime(start)}");
    }
}
