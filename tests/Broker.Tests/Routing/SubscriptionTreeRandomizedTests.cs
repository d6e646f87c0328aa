using Broker.Routing;
using Xunit;

namespace Broker.Tests.Routing;

/// <summary>Checks the trie against <see cref="TopicMatcher"/> over random subscriptions, changes and topics.</summary>
public sealed class SubscriptionTreeRandomizedTests
{
    [Theory]
    [InlineData(1, 4)]
    [InlineData(2, 4)]
    [InlineData(3, 4)]
    [InlineData(4, 9)]
    [InlineData(5, 12)]
    public void Match_agrees_with_the_reference_matcher(int seed, int maxLevels)
    {
        var random = new RandomTopics(seed, maxLevels);
        var tree = new SubscriptionTree<string>();
        var model = new Dictionary<(string ClientId, string Filter), string>();

        for (int round = 0; round < 10; round++)
        {
            for (int i = 0; i < 40; i++)
            {
                string clientId = "c" + random.Random.Next(8);
                string filter = random.NextFilter();
                string value = $"{clientId}|{filter}|{round}.{i}";
                bool isNew = !model.ContainsKey((clientId, filter));
                model[(clientId, filter)] = value;
                Assert.Equal(isNew, tree.Subscribe(filter, clientId, value));
            }

            foreach (var key in model.Keys.Where(_ => random.Random.Next(3) == 0).ToList())
            {
                model.Remove(key);
                Assert.True(tree.Unsubscribe(key.Filter, key.ClientId));
            }

            Assert.Equal(model.Count, tree.Count);

            // Path compression: a filter adds at most a split, its own node and a '#' node, and
            // removals merge pass-through nodes, so churn cannot grow the tree beyond that.
            Assert.True(tree.CountNodes() <= 3 * model.Keys.Select(k => k.Filter).Distinct().Count(), $"{tree.CountNodes()} nodes");
            for (int i = 0; i < 300; i++)
            {
                string topic = random.NextTopic();
                string[] expected = [.. model
                    .Where(entry => TopicMatcher.Matches(entry.Key.Filter, topic))
                    .Select(entry => entry.Value)
                    .Order(StringComparer.Ordinal)];

                Assert.True(expected.SequenceEqual(tree.MatchedValues(topic)), $"topic '{topic}' (seed {seed}, round {round})");
            }
        }

        foreach (var key in model.Keys)
        {
            Assert.True(tree.Unsubscribe(key.Filter, key.ClientId));
        }

        Assert.Equal(0, tree.Count);
        Assert.Equal(0, tree.CountNodes());
    }

    [Fact]
    public void Every_matching_shared_group_delivers_exactly_once()
    {
        var random = new RandomTopics(seed: 7);
        var tree = new SubscriptionTree<string>();
        var groups = new HashSet<(string ShareName, string Filter)>();
        for (int i = 0; i < 150; i++)
        {
            string shareName = "g" + random.Random.Next(3);
            string filter = random.NextNonEmptyFilter();
            groups.Add((shareName, filter));
            tree.Subscribe($"$share/{shareName}/{filter}", "c" + random.Random.Next(4), $"{shareName}|{filter}");
        }

        for (int i = 0; i < 2000; i++)
        {
            string topic = random.NextTopic();
            string[] expected = [.. groups
                .Where(group => TopicMatcher.Matches(group.Filter, topic))
                .Select(group => $"{group.ShareName}|{group.Filter}")
                .Order(StringComparer.Ordinal)];

            var deliveries = tree.MatchAll(topic);

            Assert.All(deliveries, d => Assert.StartsWith(d.ShareName + "|", d.Value));
            Assert.True(expected.SequenceEqual(deliveries.Select(d => d.Value).Order(StringComparer.Ordinal)), $"topic '{topic}'");
        }
    }
}
