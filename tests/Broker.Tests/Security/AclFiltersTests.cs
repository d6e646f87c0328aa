using Broker.Routing;
using Broker.Security;
using Xunit;

namespace Broker.Tests.Security;

public sealed class AclFiltersTests
{
    [Theory]
    [InlineData("a/b", "a/b", true)]
    [InlineData("a/b", "a/c", false)]
    [InlineData("a/+", "+/b", true)]
    [InlineData("a/#", "a", true)]
    [InlineData("a/b/#", "a", false)]
    [InlineData("#", "a/b/c", true)]
    [InlineData("#", "$SYS/x", false)]
    [InlineData("+/x", "$SYS/x", false)]
    [InlineData("$SYS/#", "$SYS/broker/load", true)]
    [InlineData("a/+/c", "a/b/#", true)]
    [InlineData("a/+", "a/b/c", false)]
    public void Intersect_tells_whether_one_topic_matches_both(string a, string b, bool expected)
    {
        Assert.Equal(expected, AclFilters.Intersect(a, b));
        Assert.Equal(expected, AclFilters.Intersect(b, a));
    }

    [Theory]
    [InlineData("#", "a/b", true)]
    [InlineData("#", "#", true)]
    [InlineData("#", "$SYS/x", false)]
    [InlineData("a/#", "a", true)]
    [InlineData("a/#", "a/+/c", true)]
    [InlineData("a/+", "a/#", false)]
    [InlineData("a/+", "a/+", true)]
    [InlineData("a/b", "a/+", false)]
    [InlineData("a/+/#", "a/#", false)]
    [InlineData("a/b", "a/b/#", false)]
    [InlineData("+/+", "a/b", true)]
    [InlineData("$SYS/#", "#", false)]
    public void Covers_tells_whether_every_topic_of_the_inner_filter_matches_the_outer(string outer, string inner, bool expected) =>
        Assert.Equal(expected, AclFilters.Covers(outer, inner));

    /// <summary>
    /// The definitions checked exhaustively over a small universe: every filter and every topic of up to three
    /// levels over {a, b, $s, empty}. Intersect is "some topic matches both", Covers is "every topic that matches
    /// the inner also matches the outer", both by <see cref="TopicMatcher"/>, the broker's reference matcher.
    /// </summary>
    [Fact]
    public void Both_agree_with_brute_force_over_a_small_universe()
    {
        string[] names = ["a", "b", "$s", ""];
        var topics = Levels(names, 3).Where(t => t.Length > 0).ToList();
        var filters = Levels([.. names, "+", "#"], 3).Where(f => f.Length > 0 && Broker.Protocol.TopicRules.IsValidTopicFilter(f)).ToList();
        // Deeper topics, so that "#" and "a/#" are not judged only by topics the universe happens to contain.
        topics.AddRange(topics.Select(t => t + "/a/b").ToList());

        foreach (var x in filters)
        {
            var matchesX = topics.Where(t => TopicMatcher.Matches(x, t)).ToHashSet();
            foreach (var y in filters)
            {
                var matchesY = topics.Where(t => TopicMatcher.Matches(y, t)).ToList();
                Assert.True(matchesY.Any(matchesX.Contains) == AclFilters.Intersect(x, y), $"Intersect({x}, {y})");
                Assert.True(matchesY.All(matchesX.Contains) == AclFilters.Covers(x, y), $"Covers({x}, {y})");
            }
        }
    }

    /// <summary>Every "l1/l2/..." of 1 to <paramref name="depth"/> levels, where a "$" name only stands first.</summary>
    private static IEnumerable<string> Levels(string[] names, int depth)
    {
        IEnumerable<string> current = names;
        var all = new List<string>(names);
        for (int d = 2; d <= depth; d++)
        {
            current = current.Where(p => !p.EndsWith('#')).SelectMany(p => names.Where(n => !n.StartsWith('$')).Select(n => p + "/" + n)).ToList();
            all.AddRange(current);
        }
        return all;
    }
}
