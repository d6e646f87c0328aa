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
}
