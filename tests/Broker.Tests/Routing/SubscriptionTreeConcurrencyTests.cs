using Broker.Routing;
using Xunit;

namespace Broker.Tests.Routing;

public sealed class SubscriptionTreeConcurrencyTests
{
    [Fact]
    public async Task Matching_while_subscribing_and_unsubscribing_sees_stable_subscriptions_and_ends_consistent()
    {
        var tree = new SubscriptionTree<string>();
        string[] stableFilters = ["a/#", "+/b", "$share/g/a/+"];
        foreach (string filter in stableFilters)
        {
            tree.Subscribe(filter, "stable", filter);
        }

        int writersRunning = 2;
        var writers = Enumerable.Range(0, 2).Select(writer => Task.Run(() =>
        {
            try
            {
                var random = new RandomTopics(seed: 100 + writer);
                var kept = new List<string>();
                for (int i = 0; i < 3000; i++)
                {
                    string clientId = $"w{writer}";
                    string filter = random.Random.Next(4) == 0 ? $"$share/s{writer}/{random.NextNonEmptyFilter()}" : random.NextFilter();
                    tree.Subscribe(filter, clientId, filter);
                    if (i % 10 == 0)
                    {
                        kept.Add(filter);
                    }
                    else if (!kept.Contains(filter))
                    {
                        tree.Unsubscribe(filter, clientId);
                    }
                }

                return kept.Distinct().ToList();
            }
            finally
            {
                Interlocked.Decrement(ref writersRunning);
            }
        })).ToArray();

        var readers = Enumerable.Range(0, 2).Select(reader => Task.Run(() =>
        {
            var random = new RandomTopics(seed: 200 + reader);
            int matches = 0;
            while (Volatile.Read(ref writersRunning) > 0 || matches < 100)
            {
                // Topics "a/b/..." are always matched by every stable filter, whatever the writers do.
                string topic = "a/b" + (random.Random.Next(2) == 0 ? "" : "/" + random.NextTopic());
                var stable = tree.MatchAll(topic).Where(d => d.ClientId == "stable").Select(d => d.Value);
                string[] expected = topic == "a/b" ? ["$share/g/a/+", "+/b", "a/#"] : ["a/#"];
                Assert.Equal(expected, stable.Order(StringComparer.Ordinal));
                matches++;
            }
        })).ToArray();

        await Task.WhenAll([.. writers, .. readers]).WaitAsync(TimeSpan.FromSeconds(60), TestContext.Current.CancellationToken);

        var keptByWriter = writers.Select(w => w.Result).ToArray();
        Assert.Equal(stableFilters.Length + keptByWriter.Sum(k => k.Count), tree.Count);

        var random = new RandomTopics(seed: 300);
        for (int i = 0; i < 500; i++)
        {
            string topic = random.NextTopic();
            var deliveries = tree.MatchAll(topic);
            for (int writer = 0; writer < keptByWriter.Length; writer++)
            {
                string[] expected = [.. keptByWriter[writer].Where(f => MatchesFilter(f, topic)).Order(StringComparer.Ordinal)];
                string[] actual = [.. deliveries.Where(d => d.ClientId == $"w{writer}").Select(d => d.Value).Order(StringComparer.Ordinal)];
                Assert.Equal(expected, actual);
            }
        }

        tree.RemoveClient("stable", stableFilters);
        for (int writer = 0; writer < keptByWriter.Length; writer++)
        {
            Assert.Equal(keptByWriter[writer].Count, tree.RemoveClient($"w{writer}", keptByWriter[writer]));
        }

        Assert.Equal(0, tree.Count);
        Assert.Equal(0, tree.CountNodes());
    }

    private static bool MatchesFilter(string filter, string topic)
    {
        const string sharePrefix = "$share/";
        if (filter.StartsWith(sharePrefix, StringComparison.Ordinal))
        {
            filter = filter[(filter.IndexOf('/', sharePrefix.Length) + 1)..];
        }

        return TopicMatcher.Matches(filter, topic);
    }
}
