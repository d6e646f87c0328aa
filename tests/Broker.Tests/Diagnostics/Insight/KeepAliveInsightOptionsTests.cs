using Broker.Diagnostics.Insight;
using Broker.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Xunit;

namespace Broker.Tests.Diagnostics.Insight;

public sealed class KeepAliveInsightOptionsTests
{
    private static KeepAliveOptions Bind(Dictionary<string, string?> settings)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
        var services = new ServiceCollection();
        services.AddOptions<KeepAliveOptions>().Bind(configuration.GetSection(KeepAliveOptions.SectionName));
        using var provider = services.BuildServiceProvider();
        return provider.GetRequiredService<IOptions<KeepAliveOptions>>().Value;
    }

    [Fact]
    public void Defaults_are_valid_and_documented_values()
    {
        var options = new KeepAliveOptions();

        Assert.False(options.Adaptive);
        Assert.Equal(30, options.AdaptiveFloorSeconds);
        Assert.Equal(new KeepAliveInsightOptions
        {
            Enabled = true, PrefixLengthV4 = 24, PrefixLengthV6 = 48, MaxNetworks = 1000, MinSamples = 10,
            MinDeathFraction = 0.02, WindowMinutes = 1440, LogIntervalSeconds = 600,
        }, options.Insight);
        Assert.True(new KeepAliveOptionsValidator().Validate(null, options).Succeeded);
    }

    [Fact]
    public void Binds_from_the_nested_insight_section()
    {
        var options = Bind(new()
        {
            ["Broker:KeepAlive:Adaptive"] = "true",
            ["Broker:KeepAlive:AdaptiveFloorSeconds"] = "45",
            ["Broker:KeepAlive:Insight:PrefixLengthV4"] = "20",
            ["Broker:KeepAlive:Insight:PrefixLengthV6"] = "56",
            ["Broker:KeepAlive:Insight:MaxNetworks"] = "50",
            ["Broker:KeepAlive:Insight:MinSamples"] = "3",
            ["Broker:KeepAlive:Insight:MinDeathFraction"] = "0.1",
            ["Broker:KeepAlive:Insight:WindowMinutes"] = "60",
            ["Broker:KeepAlive:Insight:LogIntervalSeconds"] = "0",
        });

        Assert.True(options.Adaptive);
        Assert.Equal(45, options.AdaptiveFloorSeconds);
        Assert.Equal(new KeepAliveInsightOptions
        {
            PrefixLengthV4 = 20, PrefixLengthV6 = 56, MaxNetworks = 50, MinSamples = 3, MinDeathFraction = 0.1,
            WindowMinutes = 60, LogIntervalSeconds = 0,
        }, options.Insight);
    }

    [Theory]
    [InlineData("Insight:PrefixLengthV4", "33", "Broker:KeepAlive:Insight:PrefixLengthV4 must be between 0 and 32 (was 33).")]
    [InlineData("Insight:PrefixLengthV6", "129", "Broker:KeepAlive:Insight:PrefixLengthV6 must be between 0 and 128 (was 129).")]
    [InlineData("Insight:MaxNetworks", "0", "Broker:KeepAlive:Insight:MaxNetworks must be between 1 and 1000000 (was 0).")]
    [InlineData("Insight:MinSamples", "0", "Broker:KeepAlive:Insight:MinSamples must be between 1 and 128 (was 0).")]
    [InlineData("Insight:MinSamples", "129", "Broker:KeepAlive:Insight:MinSamples must be between 1 and 128 (was 129).")]
    [InlineData("Insight:MinDeathFraction", "1.5", "Broker:KeepAlive:Insight:MinDeathFraction must be between 0 and 1 (was 1.5).")]
    [InlineData("Insight:MinDeathFraction", "NaN", "Broker:KeepAlive:Insight:MinDeathFraction must be between 0 and 1 (was NaN).")]
    [InlineData("Insight:WindowMinutes", "0", "Broker:KeepAlive:Insight:WindowMinutes must be between 1 and 525600 (a year) (was 0).")]
    [InlineData("Insight:LogIntervalSeconds", "-1", "Broker:KeepAlive:Insight:LogIntervalSeconds must be between 0 (off) and 86400 (was -1).")]
    [InlineData("AdaptiveFloorSeconds", "0", "Broker:KeepAlive:AdaptiveFloorSeconds must be between 1 and 65535 (was 0).")]
    public void Each_bad_value_is_reported_with_its_full_key(string key, string value, string message)
    {
        var result = new KeepAliveOptionsValidator().Validate(null, Bind(new() { ["Broker:KeepAlive:" + key] = value }));

        Assert.True(result.Failed);
        Assert.Equal([message], result.Failures!);
    }

    [Fact]
    public void The_adaptive_floor_cannot_exceed_max_seconds_and_adaptive_needs_the_insight()
    {
        var result = new KeepAliveOptionsValidator().Validate(null, new KeepAliveOptions
        {
            MaxSeconds = 60, AdaptiveFloorSeconds = 90, Adaptive = true, Insight = new KeepAliveInsightOptions { Enabled = false },
        });

        Assert.Equal(
        [
            "Broker:KeepAlive:AdaptiveFloorSeconds must not exceed Broker:KeepAlive:MaxSeconds (60) (was 90).",
            "Broker:KeepAlive:Adaptive=true needs Broker:KeepAlive:Insight:Enabled=true: it adapts to what the insight learns.",
        ], result.Failures!);

        // Without adaptive mode the floor is unused: a low MaxSeconds must not need it changed.
        Assert.True(new KeepAliveOptionsValidator().Validate(null, new KeepAliveOptions { MaxSeconds = 10 }).Succeeded);
    }

    [Fact]
    public void Insight_keys_are_known_and_a_misspelt_one_is_named_with_its_full_key()
    {
        var known = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Broker:KeepAlive:Adaptive"] = "true",
            ["Broker:KeepAlive:AdaptiveFloorSeconds"] = "30",
            ["Broker:KeepAlive:Insight:PrefixLengthV4"] = "24",
            ["Broker:KeepAlive:Insight:MaxNetworks"] = "10",
        }).Build();
        Assert.Empty(ConfigurationKeyCheck.FindUnknownKeys(known));

        var misspelt = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Broker:KeepAlive:Insight:PrefixLenghtV4"] = "24",
        }).Build();
        string problem = Assert.Single(ConfigurationKeyCheck.FindUnknownKeys(misspelt));
        Assert.StartsWith("Broker:KeepAlive:Insight:PrefixLenghtV4 is not a known setting (known in Broker:KeepAlive:Insight: Enabled, PrefixLengthV4", problem);
    }
}
