using Broker.Routing;
using Xunit;

namespace Broker.Tests.Routing;

public sealed class SubscriptionTreeTests
{
    [Theory]
    [MemberData(nameof(TopicMatcherTests.SpecExamples), MemberType = typeof(TopicMatcherTests))]
    public void Match_follows_the_specification_examples(string filter, string topic, bool expected)
    {
        var tree = new SubscriptionTree<string>();
        tree.Subscribe(filter, "c1", filter);

        var deliveries = tree.MatchAll(topic);

        Delivery[] expectedDeliveries = expected ? [new Delivery("c1", filter, null)] : [];
        Assert.Equal(expectedDeliveries, deliveries);
    }

    [Fact]
    public void Overlapping_filters_visit_the_client_once_per_filter()
    {
        var tree = new SubscriptionTree<string>();
        tree.Subscribe("sport/#", "c1", "sport/#");
        tree.Subscribe("sport/+/player1", "c1", "sport/+/player1");
        tree.Subscribe("sport/tennis/player1", "c1", "sport/tennis/player1");
        tree.Subscribe("#", "c2", "#");
        tree.Subscribe("sport/tennis/player2", "c2", "sport/tennis/player2");

        var deliveries = tree.MatchAll("sport/tennis/player1");

        Assert.Equal(
            ["c1:sport/#", "c1:sport/+/player1", "c1:sport/tennis/player1", "c2:#"],
            deliveries.Select(d => $"{d.ClientId}:{d.Value}").Order(StringComparer.Ordinal));
        Assert.Equal(5, tree.Count);
    }

    [Fact]
    public void Resubscribing_to_the_same_filter_replaces_the_subscription() // [MQTT-3.8.4-3]
    {
        var tree = new SubscriptionTree<string>();

        Assert.True(tree.Subscribe("a/+", "c1", "qos0"));
        Assert.False(tree.Subscribe("a/+", "c1", "qos1"));
        Assert.True(tree.Subscribe("a/+", "c2", "qos2"));

        Assert.Equal(2, tree.Count);
        Assert.Equal([new Delivery("c1", "qos1", null), new Delivery("c2", "qos2", null)], tree.MatchAll("a/b"));
    }

    [Fact]
    public void Unsubscribe_removes_only_that_client_and_filter()
    {
        var tree = new SubscriptionTree<string>();
        tree.Subscribe("a/b", "c1", "a/b");
        tree.Subscribe("a/b", "c2", "a/b");
        tree.Subscribe("a/#", "c1", "a/#");

        Assert.True(tree.Unsubscribe("a/b", "c1"));
        Assert.False(tree.Unsubscribe("a/b", "c1"));
        Assert.False(tree.Unsubscribe("a/c", "c1"));
        Assert.False(tree.Unsubscribe("a/+", "c2"));

        Assert.Equal(2, tree.Count);
        Assert.Equal([new Delivery("c1", "a/#", null), new Delivery("c2", "a/b", null)],
            tree.MatchAll("a/b").OrderBy(d => d.ClientId, StringComparer.Ordinal));
    }

    [Fact]
    public void Unsubscribing_everything_prunes_every_node()
    {
        var tree = new SubscriptionTree<string>();
        string[] filters = ["a/b/c", "a/b", "a/+/c", "a/#", "#", "+", "/a", "a//b", "$SYS/x", "$share/g/a/b/c"];
        foreach (string filter in filters)
        {
            tree.Subscribe(filter, "c1", filter);
            tree.Subscribe(filter, "c2", filter);
        }

        Assert.True(tree.CountNodes() > 0);
        tree.Unsubscribe("a/b/c", "c1");
        tree.Unsubscribe("a/b/c", "c2");
        Assert.Equal(
            ["#", "#", "a/#", "a/#", "a/+/c", "a/+/c"],
            tree.MatchAll("a/b/c").Where(d => d.ShareName is null).Select(d => d.Value).Order(StringComparer.Ordinal));
        Assert.Single(tree.MatchAll("a/b/c"), d => d.ShareName == "g");

        Assert.Equal(filters.Length - 1, tree.RemoveClient("c1", filters));
        Assert.Equal(filters.Length - 1, tree.RemoveClient("c2", filters));

        Assert.Equal(0, tree.Count);
        Assert.Equal(0, tree.CountNodes());
        Assert.Empty(tree.MatchAll("a/b/c"));
    }

    [Fact]
    public void Pruning_keeps_nodes_that_still_lead_to_subscriptions()
    {
        var tree = new SubscriptionTree<string>();
        tree.Subscribe("a/b/c/d", "c1", "a/b/c/d");
        tree.Subscribe("a/b", "c1", "a/b");

        Assert.Equal(2, tree.CountNodes()); // "a/b" and "c/d" below it: levels without a branch share a node

        tree.Unsubscribe("a/b", "c1");
        Assert.Equal(1, tree.CountNodes()); // "a/b" lost its subscriber and joined its only child
        Assert.Equal(["a/b/c/d"], tree.MatchedValues("a/b/c/d"));
        Assert.Empty(tree.MatchedValues("a/b"));
        Assert.Empty(tree.MatchedValues("a/b/c"));

        tree.Unsubscribe("a/b/c/d", "c1");
        Assert.Equal(0, tree.CountNodes());
    }

    [Fact]
    public void Many_clients_on_one_filter_survive_interleaved_adds_replacements_and_removals()
    {
        var tree = new SubscriptionTree<string>();
        var model = new SortedDictionary<string, string>(StringComparer.Ordinal);
        var random = new Random(5);
        for (int i = 0; i < 600; i++)
        {
            string clientId = "c" + random.Next(200);
            if (random.Next(3) == 0)
            {
                Assert.Equal(model.Remove(clientId), tree.Unsubscribe("t/+", clientId));
            }
            else
            {
                string value = $"{clientId}.{i}";
                Assert.Equal(model.TryAdd(clientId, value), tree.Subscribe("t/+", clientId, value));
                model[clientId] = value;
            }

            var deliveries = tree.MatchAll("t/x");
            Assert.Equal(model.Values, deliveries.Select(d => d.Value).Order(StringComparer.Ordinal));
        }
    }

    [Fact]
    public void Shared_group_delivers_to_one_member_per_message_round_robin()
    {
        var tree = new SubscriptionTree<string>();
        tree.Subscribe("$share/g/sensors/+", "c1", "v1");
        tree.Subscribe("$share/g/sensors/+", "c2", "v2");
        tree.Subscribe("$share/g/sensors/+", "c3", "v3");

        var chosen = new List<string>();
        for (int i = 0; i < 9; i++)
        {
            var delivery = Assert.Single(tree.MatchAll("sensors/t1"));
            Assert.Equal("g", delivery.ShareName);
            Assert.Equal("v" + delivery.ClientId[1..], delivery.Value);
            chosen.Add(delivery.ClientId);
        }

        Assert.Equal(["c1", "c2", "c3", "c1", "c2", "c3", "c1", "c2", "c3"], chosen);
        Assert.Equal(3, tree.Count);
    }

    [Fact]
    public void Shared_group_skips_members_the_visitor_does_not_prefer_and_falls_back_to_round_robin()
    {
        var tree = new SubscriptionTree<string>();
        tree.Subscribe("$share/g/sensors/+", "c1", "v1");
        tree.Subscribe("$share/g/sensors/+", "c2", "v2");
        tree.Subscribe("$share/g/sensors/+", "c3", "v3");

        // Only c2 is preferred (in the broker: only c2 is connected): it gets every message.
        for (int i = 0; i < 6; i++)
        {
            var visitor = new CollectingVisitor { PreferredValues = ["v2"] };
            tree.Match("sensors/t1", ref visitor);
            Assert.Equal("c2", Assert.Single(visitor.Deliveries).ClientId);
        }

        // Nobody preferred: each message still goes to exactly one member, in turn.
        var chosen = new HashSet<string>();
        for (int i = 0; i < 3; i++)
        {
            var visitor = new CollectingVisitor { PreferredValues = [] };
            tree.Match("sensors/t1", ref visitor);
            chosen.Add(Assert.Single(visitor.Deliveries).ClientId);
        }

        Assert.Equal(["c1", "c2", "c3"], chosen.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void Shared_groups_and_ordinary_subscriptions_each_receive_the_message()
    {
        var tree = new SubscriptionTree<string>();
        tree.Subscribe("a/b", "c1", "plain");
        tree.Subscribe("$share/g1/a/b", "c1", "g1");
        tree.Subscribe("$share/g1/a/b", "c2", "g1");
        tree.Subscribe("$share/g2/a/b", "c3", "g2");
        tree.Subscribe("$share/g1/a/#", "c4", "g1#"); // same share name, other filter: another group

        var deliveries = tree.MatchAll("a/b");

        Assert.Equal(4, deliveries.Count);
        Assert.Single(deliveries, d => d.ShareName is null && d.ClientId == "c1");
        Assert.Single(deliveries, d => d.ShareName == "g1" && d.Value == "g1");
        Assert.Single(deliveries, d => d is { ShareName: "g2", ClientId: "c3" });
        Assert.Single(deliveries, d => d is { ShareName: "g1", ClientId: "c4", Value: "g1#" });
    }

    [Fact]
    public void Shared_member_resubscribe_replaces_and_unsubscribe_leaves_the_others()
    {
        var tree = new SubscriptionTree<string>();
        Assert.True(tree.Subscribe("$share/g/t", "c1", "old"));
        Assert.False(tree.Subscribe("$share/g/t", "c1", "new"));
        Assert.True(tree.Subscribe("$share/g/t", "c2", "v2"));
        Assert.False(tree.Unsubscribe("t", "c1")); // the shared subscription is not the plain one
        Assert.False(tree.Unsubscribe("$share/other/t", "c1"));

        Assert.True(tree.Unsubscribe("$share/g/t", "c2"));

        Assert.Equal(1, tree.Count);
        for (int i = 0; i < 3; i++)
        {
            Assert.Equal([new Delivery("c1", "new", "g")], tree.MatchAll("t"));
        }
    }

    [Fact]
    public void Shared_filters_follow_the_dollar_rule_of_their_topic_filter() // [MQTT-4.7.2-1]
    {
        var tree = new SubscriptionTree<string>();
        tree.Subscribe("$share/g/#", "c1", "#");
        tree.Subscribe("$share/g/$SYS/#", "c2", "$SYS/#");

        Assert.Equal([new Delivery("c2", "$SYS/#", "g")], tree.MatchAll("$SYS/load"));
        Assert.Equal([new Delivery("c1", "#", "g")], tree.MatchAll("load"));
    }

    [Theory]
    [InlineData("$share/")]
    [InlineData("$share/g")]
    [InlineData("$share/g/")]
    [InlineData("$share//a")]
    public void Malformed_shared_filter_is_rejected(string filter) =>
        Assert.Throws<ArgumentException>(() => new SubscriptionTree<string>().Subscribe(filter, "c1", "v"));

    [Fact]
    public void Topic_with_many_empty_levels_is_matched_without_recursion_per_level()
    {
        var tree = new SubscriptionTree<string>();
        string deep = new('/', 65_000);
        tree.Subscribe(deep, "c1", "deep");
        tree.Subscribe("#", "c2", "all");

        Assert.Equal(["all", "deep"], tree.MatchedValues(deep));
    }

    [Fact]
    public void Deep_filters_cost_one_node_and_memory_in_proportion_to_their_bytes() // issue #11: +345 MB for 975 KB
    {
        string[] filters = [.. Enumerable.Range(0, 15).Select(i => i % 2 == 0
            ? $"{i:D2}" + string.Concat(Enumerable.Repeat("/+", 32_499))
            : $"{i:D2}" + new string('/', 64_998))];
        var tree = new SubscriptionTree<string>();

        long before = GC.GetAllocatedBytesForCurrentThread();
        foreach (string filter in filters)
        {
            tree.Subscribe(filter, "c", filter);
        }

        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        long input = filters.Sum(f => (long)f.Length);
        Assert.True(allocated < 3 * input, $"{allocated} bytes for {input} bytes of filters");
        Assert.Equal(filters.Length, tree.CountNodes());

        // A topic of 32,500 levels matches the '+' filter level by level, without recursion or allocation.
        string topic = "00" + string.Concat(Enumerable.Repeat("/x", 32_499));
        Assert.Equal([filters[0]], tree.MatchedValues(topic));
        Assert.Equal([filters[1]], tree.MatchedValues(filters[1]));
        Assert.Empty(tree.MatchedValues(topic + "/x"));
        var visitor = new DeepCountingVisitor();
        tree.Match(topic, ref visitor); // warm-up: JIT and tiering
        long matchAllocated = long.MaxValue;
        for (int attempt = 0; attempt < 3 && matchAllocated != 0; attempt++)
        {
            long beforeMatch = GC.GetAllocatedBytesForCurrentThread();
            tree.Match(topic, ref visitor);
            matchAllocated = GC.GetAllocatedBytesForCurrentThread() - beforeMatch;
        }

        Assert.Equal(0, matchAllocated);
    }

    [Fact]
    public void Plus_levels_inside_a_shared_label_split_where_filters_part()
    {
        var tree = new SubscriptionTree<string>();
        tree.Subscribe("a/+/b/+/c", "c1", "a/+/b/+/c");
        Assert.Equal(1, tree.CountNodes());
        tree.Subscribe("a/+/b/d", "c1", "a/+/b/d");
        tree.Subscribe("a/+/b/#", "c1", "a/+/b/#");
        tree.Subscribe("+/+", "c1", "+/+");
        Assert.Equal(5, tree.CountNodes()); // "a/+/b" -> "+/c", "d", "#"; and "+/+"

        Assert.Equal(["+/+"], tree.MatchedValues("a/x"));
        Assert.Equal(["a/+/b/#"], tree.MatchedValues("a/x/b"));
        Assert.Equal(["a/+/b/#", "a/+/b/d"], tree.MatchedValues("a/x/b/d"));
        Assert.Equal(["a/+/b/#", "a/+/b/+/c"], tree.MatchedValues("a/x/b/y/c"));
        Assert.Empty(tree.MatchedValues("$a/x")); // [MQTT-4.7.2-1] also for a label that starts with '+'

        tree.Unsubscribe("a/+/b/d", "c1");
        tree.Unsubscribe("a/+/b/#", "c1");
        Assert.Equal(2, tree.CountNodes()); // "a/+/b" and "+/c" joined again
        Assert.Equal(["a/+/b/+/c"], tree.MatchedValues("a/x/b/y/c"));
        tree.Unsubscribe("+/+", "c1");
        tree.Unsubscribe("a/+/b/+/c", "c1");
        Assert.Equal(0, tree.CountNodes());
    }

    private struct DeepCountingVisitor : ISubscriptionVisitor<string>
    {
        public int Visits;

        public readonly bool PrefersSharedMember(string value) => true;

        public void Visit(string clientId, string value, string? shareName) => Visits++;
    }
}

public sealed class SubscriptionTreeAllocationTests
{
    private ref struct CountingVisitor : ISubscriptionVisitor<int>
    {
        public int Visits;
        public int ValueSum;

        public bool PrefersSharedMember(int value) => true;


        public void Visit(string clientId, int value, string? shareName)
        {
            Visits++;
            ValueSum += value;
        }
    }

    [Fact]
    public void Match_does_not_allocate()
    {
        var tree = new SubscriptionTree<int>();
        for (int i = 0; i < 100; i++)
        {
            tree.Subscribe($"devices/{i}/telemetry", $"c{i}", 1);
            tree.Subscribe("devices/+/telemetry", $"c{i}", 1);
            tree.Subscribe($"$share/workers/devices/#", $"w{i}", 1);
        }

        tree.Subscribe("#", "all", 1);
        ReadOnlySpan<char> topic = "devices/42/telemetry".AsSpan();

        var visitor = new CountingVisitor();
        for (int i = 0; i < 3; i++)
        {
            tree.Match(topic, ref visitor); // warm-up: JIT and tiering
        }

        // Best of three runs: a one-off runtime allocation (tiered re-JIT) may land in one; a per-match one shows in all.
        long allocated = long.MaxValue;
        for (int attempt = 0; attempt < 3 && allocated != 0; attempt++)
        {
            visitor = new CountingVisitor();
            long before = GC.GetAllocatedBytesForCurrentThread();
            for (int i = 0; i < 1000; i++)
            {
                tree.Match(topic, ref visitor);
            }

            allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        }

        Assert.Equal(0, allocated);
        Assert.Equal(1000 * (1 + 100 + 1 + 1), visitor.Visits);
    }
}
