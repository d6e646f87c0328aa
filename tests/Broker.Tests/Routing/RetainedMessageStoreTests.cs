using Broker.Routing;
using Xunit;

namespace Broker.Tests.Routing;

public sealed class RetainedMessageStoreTests
{
    private sealed record Message(string Topic, string Payload);

    [Fact]
    public void Set_stores_replaces_and_null_deletes() // [MQTT-3.3.1-5], [MQTT-3.3.1-10], [MQTT-3.3.1-11]
    {
        var store = new RetainedMessageStore<Message>();

        store.Set("a/b", new Message("a/b", "1"));
        store.Set("a/b", new Message("a/b", "2"));
        store.Set("a", new Message("a", "3"));

        Assert.Equal(2, store.Count);
        Assert.True(store.TryGet("a/b", out var message));
        Assert.Equal("2", message.Payload);
        Assert.False(store.TryGet("a/c", out _));
        Assert.False(store.TryGet("a/b/c", out _));

        store.Set("a/b", null);
        store.Set("a/b", null);
        store.Set("never/set", null);

        Assert.Equal(1, store.Count);
        Assert.False(store.TryGet("a/b", out _));
        Assert.True(store.TryGet("a", out _));
    }

    [Fact]
    public void Deleting_every_message_prunes_every_node()
    {
        var store = new RetainedMessageStore<Message>();
        string[] topics = ["a/b/c", "a", "a//b", "/x", "$SYS/y"];
        foreach (string topic in topics)
        {
            store.Set(topic, new Message(topic, "p"));
        }

        store.Set("a", null);
        Assert.True(store.TryGet("a/b/c", out _));

        foreach (string topic in topics)
        {
            store.Set(topic, null);
        }

        Assert.Equal(0, store.Count);
        Assert.Equal(0, store.CountNodes());
    }

    [Theory]
    [InlineData("sport/tennis/player1/#", "sport/tennis/player1,sport/tennis/player1/ranking,sport/tennis/player1/score/wimbledon")]
    [InlineData("sport/#", "sport,sport/,sport/tennis/player1,sport/tennis/player1/ranking,sport/tennis/player1/score/wimbledon")]
    [InlineData("sport/+", "sport/")]
    [InlineData("sport/tennis/+", "sport/tennis/player1")]
    [InlineData("sport", "sport")]
    [InlineData("sport/tennis", "")]
    [InlineData("+", "finance,sport")]
    [InlineData("+/+", "/finance,sport/")]
    [InlineData("/+", "/finance")]
    [InlineData("#", "/finance,finance,sport,sport/,sport/tennis/player1,sport/tennis/player1/ranking,sport/tennis/player1/score/wimbledon")]
    [InlineData("+/monitor/Clients", "")]
    [InlineData("$SYS/#", "$SYS,$SYS/monitor/Clients")]
    [InlineData("$SYS/monitor/+", "$SYS/monitor/Clients")]
    [InlineData("$SYS", "$SYS")]
    public void Match_returns_the_retained_messages_the_filter_matches(string filter, string expectedTopics)
    {
        var store = new RetainedMessageStore<Message>();
        foreach (string topic in (string[])["sport", "sport/", "sport/tennis/player1", "sport/tennis/player1/ranking",
                     "sport/tennis/player1/score/wimbledon", "finance", "/finance", "$SYS", "$SYS/monitor/Clients"])
        {
            store.Set(topic, new Message(topic, "p"));
        }

        var matched = new List<Message>();
        store.Match(filter, matched);

        Assert.Equal(
            expectedTopics.Split(',', StringSplitOptions.RemoveEmptyEntries),
            matched.Select(m => m.Topic).Order(StringComparer.Ordinal));
    }

    [Theory]
    [InlineData(11, 4)]
    [InlineData(12, 4)]
    [InlineData(13, 9)]
    [InlineData(14, 12)]
    public void Match_agrees_with_the_reference_matcher(int seed, int maxLevels)
    {
        var random = new RandomTopics(seed, maxLevels);
        var store = new RetainedMessageStore<Message>();
        var model = new Dictionary<string, Message>();

        for (int round = 0; round < 10; round++)
        {
            for (int i = 0; i < 30; i++)
            {
                string topic = random.NextTopic();
                if (random.Random.Next(4) == 0)
                {
                    model.Remove(topic);
                    store.Set(topic, null);
                }
                else
                {
                    var message = new Message(topic, $"{round}.{i}");
                    model[topic] = message;
                    store.Set(topic, message);
                }
            }

            Assert.Equal(model.Count, store.Count);
            Assert.True(store.CountNodes() <= 2 * model.Count, $"{store.CountNodes()} nodes"); // a topic adds a split and its own node
            for (int i = 0; i < 200; i++)
            {
                string filter = random.NextFilter();
                var matched = new List<Message>();
                store.Match(filter, matched);

                var expected = model.Values.Where(m => TopicMatcher.Matches(filter, m.Topic)).OrderBy(m => m.Topic, StringComparer.Ordinal);
                Assert.True(expected.SequenceEqual(matched.OrderBy(m => m.Topic, StringComparer.Ordinal)), $"filter '{filter}' (seed {seed}, round {round})");
            }
        }

        foreach (string topic in model.Keys)
        {
            store.Set(topic, null);
        }

        Assert.Equal(0, store.CountNodes());
    }

    [Fact]
    public void A_full_store_refuses_new_topics_but_replaces_and_deletes() // Broker:Limits:MaxRetainedMessages
    {
        var store = new RetainedMessageStore<Message>(new RetainedStoreLimits(MaxMessages: 2, MaxBytes: long.MaxValue), m => m.Payload.Length);

        Assert.Equal(RetainOutcome.Stored, store.Set("a", new Message("a", "1")));
        Assert.Equal(RetainOutcome.Stored, store.Set("b", new Message("b", "1")));
        Assert.Equal(RetainOutcome.RefusedCount, store.Set("c", new Message("c", "1")));
        Assert.False(store.TryGet("c", out _));
        Assert.Equal(0, store.CountNodes() - 2); // the refused topic left no node behind

        Assert.Equal(RetainOutcome.Replaced, store.Set("a", new Message("a", "2")));
        Assert.True(store.TryGet("a", out var replaced));
        Assert.Equal("2", replaced.Payload);

        Assert.Equal(RetainOutcome.Deleted, store.Set("b", null));
        Assert.Equal(RetainOutcome.Stored, store.Set("c", new Message("c", "1")));
        Assert.Equal(1, store.Refused);
        Assert.Equal(2, store.Count);
    }

    [Fact]
    public void The_byte_limit_counts_replacements_and_deletes_a_topic_whose_new_message_does_not_fit() // Broker:Limits:MaxRetainedBytes
    {
        var store = new RetainedMessageStore<Message>(new RetainedStoreLimits(MaxMessages: 100, MaxBytes: 10), m => m.Payload.Length);

        Assert.Equal(RetainOutcome.Stored, store.Set("a", new Message("a", "123456")));
        Assert.Equal(RetainOutcome.Stored, store.Set("b", new Message("b", "1234")));
        Assert.Equal(10, store.Bytes);
        Assert.Equal(RetainOutcome.RefusedBytes, store.Set("c", new Message("c", "1")));

        // A replacement that does not grow the total fits, even at the limit.
        Assert.Equal(RetainOutcome.Replaced, store.Set("a", new Message("a", "654321")));
        Assert.Equal(RetainOutcome.Replaced, store.Set("a", new Message("a", "12")));
        Assert.Equal(6, store.Bytes);

        // One that does not fit is refused and the topic's older message goes: a new subscriber must
        // never get an older retained message than one the broker accepted.
        Assert.Equal(RetainOutcome.RefusedBytes, store.Set("b", new Message("b", "123456789")));
        Assert.False(store.TryGet("b", out _));
        Assert.Equal(2, store.Bytes);
        Assert.Equal(1, store.Count);
        Assert.Equal(2, store.Refused);

        Assert.Equal(RetainOutcome.Deleted, store.Set("a", null));
        Assert.Equal(0, store.Bytes);
        Assert.Equal(0, store.CountNodes());
    }

    [Fact]
    public void A_topic_of_65535_slashes_is_one_node_and_matches_like_any_other()
    {
        var store = new RetainedMessageStore<Message>();
        string deep = new('/', 65_535); // 65,536 empty levels
        string shorter = new('/', 65_534);
        store.Set(deep, new Message(deep, "deep"));
        Assert.Equal(1, store.CountNodes());

        store.Set(shorter, new Message(shorter, "shorter"));
        Assert.Equal(2, store.CountNodes()); // the shorter topic ends one level above: a split, not 65,535 nodes

        Assert.True(store.TryGet(deep, out var found));
        Assert.Equal("deep", found.Payload);
        Assert.Equal(["deep", "shorter"], MatchPayloads(store, "#"));
        Assert.Equal(["shorter"], MatchPayloads(store, shorter + "+"));
        Assert.Equal(["deep"], MatchPayloads(store, shorter + "/+"));
        Assert.Equal(["deep", "shorter"], MatchPayloads(store, "+/+/#"));
        Assert.Empty(MatchPayloads(store, "+/+"));

        store.Set(shorter, null);
        Assert.Equal(1, store.CountNodes()); // merged back
        store.Set(deep, null);
        Assert.Equal(0, store.CountNodes());
    }

    [Fact]
    public void Deep_topics_cost_memory_in_proportion_to_their_bytes() // issue #11: +428 MB for 1.3 MB of topics
    {
        string[] topics = [.. Enumerable.Range(0, 20).Select(i => $"{i:D2}" + new string('/', 65_533))];
        var messages = topics.Select(t => new Message(t, "p")).ToArray();

        // Allocated by this thread (a bound on what the store keeps, unaffected by tests running beside it).
        long before = GC.GetAllocatedBytesForCurrentThread();
        var store = new RetainedMessageStore<Message>();
        foreach (var message in messages)
        {
            store.Set(message.Topic, message);
        }

        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        // The labels are copies of the topics (2 bytes per character); 1.3 MB of topics kept 420 MB before.
        long input = topics.Sum(t => (long)t.Length);
        Assert.True(allocated < 3 * input, $"{allocated} bytes for {input} bytes of topics");
    }

    private static string[] MatchPayloads(RetainedMessageStore<Message> store, string filter)
    {
        var matched = new List<Message>();
        store.Match(filter, matched);
        return [.. matched.Select(m => m.Payload).Order(StringComparer.Ordinal)];
    }
}
