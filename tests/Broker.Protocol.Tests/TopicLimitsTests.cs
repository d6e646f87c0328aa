using System.Text;

namespace Broker.Protocol.Tests;

/// <summary>Broker:Limits:MaxTopicLength / MaxTopicLevels as the pure check the connection calls.</summary>
public sealed class TopicLimitsTests
{
    private static readonly TopicLimits Limits = new(MaxLength: 10, MaxLevels: 3);

    [Theory]
    [InlineData("a", true)]
    [InlineData("a/b/c", true)]
    [InlineData("//", true)] // three empty levels
    [InlineData("a/b/c/d", false)]
    [InlineData("///", false)]
    public void Topic_names_are_limited_in_levels(string topic, bool allowed)
    {
        var utf8 = Encoding.UTF8.GetBytes(topic);
        Assert.Equal(allowed, Limits.IsTopicNameAllowed(utf8, out var error));
        Assert.Equal(allowed, Limits.IsTopicNameAllowed(topic, out var charError));
        Assert.Equal(allowed, Limits.IsTopicNameAllowed(TestBuffers.OneBytePerSegment(utf8), out var segmentedError));
        Assert.Equal(allowed ? default : TopicLimits.TopicNameTooDeep, error);
        Assert.Equal(error, charError);
        Assert.Equal(error, segmentedError);
    }

    [Theory]
    [InlineData("abcdefghij", true)]
    [InlineData("abcdefghijk", false)]
    [InlineData("ééééé", true)] // 10 UTF-8 bytes
    [InlineData("éééééa", false)] // 6 characters, 11 bytes: the limit is in bytes
    public void Topic_names_are_limited_in_utf8_bytes(string topic, bool allowed)
    {
        var utf8 = Encoding.UTF8.GetBytes(topic);
        Assert.Equal(allowed, Limits.IsTopicNameAllowed(utf8, out var error));
        Assert.Equal(allowed, Limits.IsTopicNameAllowed(topic, out var charError));
        Assert.Equal(allowed, Limits.IsTopicNameAllowed(TestBuffers.SplitAt(utf8, 3), out var segmentedError));
        Assert.Equal(allowed ? default : TopicLimits.TopicNameTooLong, error);
        Assert.Equal(error, charError);
        Assert.Equal(error, segmentedError);
    }

    [Theory]
    [InlineData("a/+/#", true)]
    [InlineData("a/+/b/#", false)]
    [InlineData("$share/g/a/+/#", true)] // the share prefix is not part of the filter's levels
    [InlineData("$share/g/a/+/b/#", false)]
    public void Topic_filters_are_limited_in_levels_after_the_share_prefix(string filter, bool allowed)
    {
        var limits = new TopicLimits(MaxLength: 100, MaxLevels: 3);
        Assert.Equal(allowed, limits.IsTopicFilterAllowed(filter, out var error));
        Assert.Equal(allowed ? default : TopicLimits.TopicFilterTooDeep, error);
    }

    [Fact]
    public void Filters_are_limited_in_length_including_the_share_prefix()
    {
        Assert.True(Limits.IsTopicFilterAllowed("$share/g/a", out _));
        Assert.False(Limits.IsTopicFilterAllowed("$share/gg/a", out var error));
        Assert.Equal(TopicLimits.TopicFilterTooLong, error);
    }

    [Fact]
    public void Violations_carry_topic_name_invalid_or_topic_filter_invalid()
    {
        Assert.Equal(ReasonCode.TopicNameInvalid, TopicLimits.TopicNameTooLong.Code);
        Assert.Equal(ReasonCode.TopicNameInvalid, TopicLimits.TopicNameTooDeep.Code);
        Assert.Equal(ReasonCode.TopicFilterInvalid, TopicLimits.TopicFilterTooLong.Code);
        Assert.Equal(ReasonCode.TopicFilterInvalid, TopicLimits.TopicFilterTooDeep.Code);
    }

    [Fact]
    public void No_limit_allows_the_longest_topic_the_encoding_can_carry()
    {
        var deepest = Encoding.UTF8.GetBytes(new string('/', 65_535));
        Assert.True(TopicLimits.None.IsTopicNameAllowed(deepest, out _));
        Assert.False(new TopicLimits(65_535, 128).IsTopicNameAllowed(deepest, out var error));
        Assert.Equal(TopicLimits.TopicNameTooDeep, error);
    }
}
