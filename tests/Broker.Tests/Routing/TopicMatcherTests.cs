using Broker.Routing;
using Xunit;

namespace Broker.Tests.Routing;

public sealed class TopicMatcherTests
{
    // Examples of the MQTT 3.1.1 / 5.0 specification, section 4.7.
    public static TheoryData<string, string, bool> SpecExamples => new()
    {
        // [MQTT-4.7.1-2] '#' matches the parent level and any number of child levels.
        { "sport/tennis/player1/#", "sport/tennis/player1", true },
        { "sport/tennis/player1/#", "sport/tennis/player1/ranking", true },
        { "sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", true },
        { "sport/tennis/player1/#", "sport/tennis/player2", false },
        { "sport/#", "sport", true },
        { "sport/#", "sport/", true },
        { "#", "sport/tennis", true },
        { "#", "/", true },
        // '+' matches exactly one level, which may be empty.
        { "sport/tennis/+", "sport/tennis/player1", true },
        { "sport/tennis/+", "sport/tennis/player1/ranking", false },
        { "sport/+", "sport", false },
        { "sport/+", "sport/", true },
        { "+", "finance", true },
        { "+", "/finance", false },
        { "+/+", "/finance", true },
        { "/+", "/finance", true },
        { "+/tennis/#", "sport/tennis", true },
        { "+/+/#", "a", false },
        // Empty levels are levels.
        { "a//b", "a//b", true },
        { "a/+/b", "a//b", true },
        { "a/b", "a//b", false },
        { "a", "a/", false },
        { "a/", "a", false },
        // [MQTT-4.7.2-1] wildcards at the first level do not match '$' topics.
        { "#", "$SYS/monitor/Clients", false },
        { "+/monitor/Clients", "$SYS/monitor/Clients", false },
        { "+", "$SYS", false },
        { "$SYS/#", "$SYS/monitor/Clients", true },
        { "$SYS/monitor/+", "$SYS/monitor/Clients", true },
        { "$SYS/#", "$SYS", true },
        { "a/+", "a/$b", true },
        { "a/#", "a/$b/c", true },
    };

    [Theory]
    [MemberData(nameof(SpecExamples))]
    public void Matches_follows_the_specification_examples(string filter, string topic, bool expected) =>
        Assert.Equal(expected, TopicMatcher.Matches(filter, topic));
}
