namespace Broker.Tests.Routing;

/// <summary>
/// Random topics and filters over a tiny alphabet of levels, so that they collide often; with more
/// levels, long shared prefixes exercise the tries' path compression (splits and merges).
/// </summary>
internal sealed class RandomTopics(int seed, int maxLevels = 4)
{
    private static readonly string[] TopicLevels = ["", "$x", "a", "b"];

    private readonly Random _random = new(seed);

    public Random Random => _random;

    public string NextTopic()
    {
        int levels = _random.Next(1, maxLevels + 1);
        var parts = new string[levels];
        for (int i = 0; i < levels; i++)
        {
            parts[i] = TopicLevels[_random.Next(TopicLevels.Length)];
        }

        return string.Join('/', parts);
    }

    /// <summary>A filter that is valid after "$share/{name}/", which "" (one empty level) is not [MQTT-4.7.3-1].</summary>
    public string NextNonEmptyFilter()
    {
        string filter;
        do
        {
            filter = NextFilter();
        }
        while (filter.Length == 0);

        return filter;
    }

    public string NextFilter()
    {
        int levels = _random.Next(1, maxLevels + 1);
        var parts = new string[levels];
        for (int i = 0; i < levels; i++)
        {
            int pick = _random.Next(TopicLevels.Length + 2);
            parts[i] = pick < TopicLevels.Length ? TopicLevels[pick]
                : pick == TopicLevels.Length ? "+"
                : i == levels - 1 ? "#" : "+"; // '#' only as the last level
        }

        return string.Join('/', parts);
    }
}
