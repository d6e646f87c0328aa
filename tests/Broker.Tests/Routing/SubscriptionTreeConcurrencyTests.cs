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

    [Fact]
    public async Task Matching_during_mass_unsubscribe_sees_stable_subscribers_once_and_no_client_twice()
    {
        const int Transients = 20_000;
        var tree = new SubscriptionTree<string>();
        tree.Subscribe("fleet/cmd", "stable", "stable");
        tree.Subscribe("$share/g/fleet/cmd", "stable", "stable");

        int writerRunning = 1;
        var writer = Task.Run(() =>
        {
            try
            {
                var random = new Random(42);
                for (int round = 0; round < 3; round++)
                {
                    string[] ids = [.. Enumerable.Range(0, Transients).Select(i => $"t{i}")];
                    foreach (string id in ids)
                    {
                        tree.Subscribe("fleet/cmd", id, id);
                        tree.Subscribe("$share/g/fleet/cmd", id, id);
                    }

                    // Removed in random order; every tenth comes back at once and leaves again at the
                    // end, so a matcher may meet the same client in an emptied slot and in a new one.
                    random.Shuffle(ids);
                    foreach (string id in ids)
                    {
                        tree.Unsubscribe("fleet/cmd", id);
                        tree.Unsubscribe("$share/g/fleet/cmd", id);
                        if (id.EndsWith('7'))
                        {
                            tree.Subscribe("fleet/cmd", id, id);
                            tree.Subscribe("$share/g/fleet/cmd", id, id);
                        }
                    }

                    foreach (string id in ids.Where(id => id.EndsWith('7')))
                    {
                        tree.Unsubscribe("fleet/cmd", id);
                        tree.Unsubscribe("$share/g/fleet/cmd", id);
                    }
                }
            }
            finally
            {
                Volatile.Write(ref writerRunning, 0);
            }
        }, TestContext.Current.CancellationToken);

        var readers = Enumerable.Range(0, 2).Select(_ => Task.Run(() =>
        {
            int matches = 0;
            while (Volatile.Read(ref writerRunning) == 1 || matches < 50)
            {
                var deliveries = tree.MatchAll("fleet/cmd");
                var ordinary = deliveries.Where(d => d.ShareName is null).Select(d => d.ClientId).ToList();
                Assert.Single(ordinary, "stable");
                Assert.Equal(ordinary.Count, ordinary.Distinct().Count());
                Assert.Single(deliveries, d => d.ShareName == "g"); // one member per message, whoever leaves meanwhile
                matches++;
            }
        })).ToArray();

        await Task.WhenAll([writer, .. readers]).WaitAsync(TimeSpan.FromSeconds(60), TestContext.Current.CancellationToken);

        Assert.Equal(2, tree.Count);
        Assert.Equal([new Delivery("stable", "stable", null), new Delivery("stable", "stable", "g")],
            tree.MatchAll("fleet/cmd").OrderBy(d => d.ShareName, StringComparer.Ordinal));
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
