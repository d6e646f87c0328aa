using Broker.Connections.KeepAlive;
using Broker.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Xunit;

namespace Broker.Tests.KeepAlive;

public sealed class KeepAliveOptionsTests
{
    [Fact]
    public void Defaults_are_valid_and_documented_values()
    {
        var options = new KeepAliveOptions();

        Assert.Equal(65535, options.MaxSeconds);
        Assert.True(options.AllowZero);
        Assert.Null(options.ServerKeepAliveSeconds);
        Assert.Equal(10, options.ConnectTimeoutSeconds);
        Assert.Equal(100, options.TickMilliseconds);
        Assert.Equal(1.5, options.GraceMultiplier);
        Assert.True(new KeepAliveOptionsValidator().Validate(null, options).Succeeded);
    }

    [Fact]
    public void Binds_from_the_broker_keep_alive_section()
    {
        var options = Bind(new()
        {
            ["Broker:KeepAlive:MaxSeconds"] = "300",
            ["Broker:KeepAlive:AllowZero"] = "false",
            ["Broker:KeepAlive:ServerKeepAliveSeconds"] = "60",
            ["Broker:KeepAlive:ConnectTimeoutSeconds"] = "5",
            ["Broker:KeepAlive:TickMilliseconds"] = "250",
            ["Broker:KeepAlive:GraceMultiplier"] = "2",
        });

        Assert.Equal(
            new KeepAliveOptions { MaxSeconds = 300, AllowZero = false, ServerKeepAliveSeconds = 60, ConnectTimeoutSeconds = 5, TickMilliseconds = 250, GraceMultiplier = 2 },
            options);
    }

    [Theory]
    [InlineData("MaxSeconds", "0", "Broker:KeepAlive:MaxSeconds must be between 1 and 65535 (was 0).")]
    [InlineData("MaxSeconds", "65536", "Broker:KeepAlive:MaxSeconds must be between 1 and 65535 (was 65536).")]
    [InlineData("ServerKeepAliveSeconds", "0", "Broker:KeepAlive:ServerKeepAliveSeconds must be between 1 and 65535 when set (was 0).")]
    [InlineData("ServerKeepAliveSeconds", "70000", "Broker:KeepAlive:ServerKeepAliveSeconds must be between 1 and 65535 when set (was 70000).")]
    [InlineData("ConnectTimeoutSeconds", "0", "Broker:KeepAlive:ConnectTimeoutSeconds must be greater than 0 (was 0).")]
    [InlineData("TickMilliseconds", "9", "Broker:KeepAlive:TickMilliseconds must be between 10 and 1000 (was 9).")]
    [InlineData("TickMilliseconds", "1001", "Broker:KeepAlive:TickMilliseconds must be between 10 and 1000 (was 1001).")]
    [InlineData("GraceMultiplier", "0.9", "Broker:KeepAlive:GraceMultiplier must be between 1.0 and 10.0 (was 0.9).")]
    [InlineData("GraceMultiplier", "NaN", "Broker:KeepAlive:GraceMultiplier must be between 1.0 and 10.0 (was NaN).")]
    public void Each_bad_value_is_reported_with_its_full_key(string key, string value, string message)
    {
        var options = Bind(new() { ["Broker:KeepAlive:" + key] = value });

        var result = new KeepAliveOptionsValidator().Validate(null, options);

        Assert.True(result.Failed);
        Assert.Equal([message], result.Failures);
    }

    [Fact]
    public void Server_keep_alive_above_max_is_rejected()
    {
        var result = new KeepAliveOptionsValidator().Validate(null, new KeepAliveOptions { MaxSeconds = 60, ServerKeepAliveSeconds = 120 });

        Assert.Equal(["Broker:KeepAlive:ServerKeepAliveSeconds must not exceed Broker:KeepAlive:MaxSeconds (60) (was 120)."], result.Failures);
    }

    [Fact]
    public void All_failures_are_reported_at_once()
    {
        var result = new KeepAliveOptionsValidator().Validate(null, new KeepAliveOptions { MaxSeconds = 0, ConnectTimeoutSeconds = -1, TickMilliseconds = 0 });

        Assert.Equal(3, result.Failures!.Count());
    }

    [Fact]
    public void Registration_validates_and_builds_the_engine()
    {
        using var bad = Services(new() { ["Broker:KeepAlive:TickMilliseconds"] = "5" });
        var error = Assert.Throws<OptionsValidationException>(() => bad.GetRequiredService<IOptions<KeepAliveOptions>>().Value);
        Assert.Contains("Broker:KeepAlive:TickMilliseconds must be between 10 and 1000 (was 5).", error.Message);

        using var good = Services(new() { ["Broker:KeepAlive:TickMilliseconds"] = "200" });
        Assert.Equal(TimeSpan.FromMilliseconds(200), good.GetRequiredService<TimerWheel>().Tick);
        Assert.Equal(TimeSpan.FromSeconds(10), good.GetRequiredService<KeepAlivePolicy>().ConnectTimeout);
    }

    private static KeepAliveOptions Bind(Dictionary<string, string?> values) =>
        new ConfigurationBuilder().AddInMemoryCollection(values).Build()
            .GetSection(KeepAliveOptions.SectionName).Get<KeepAliveOptions>() ?? new KeepAliveOptions();

    private static ServiceProvider Services(Dictionary<string, string?> values) =>
        new ServiceCollection()
            .AddKeepAliveEngine(new ConfigurationBuilder().AddInMemoryCollection(values).Build())
            .BuildServiceProvider();
}
