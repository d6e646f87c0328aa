using Broker.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;
using Xunit;

namespace Broker.Tests.Transport;

public sealed class TcpOptionsTests
{
    [Fact]
    public void Defaults_are_valid()
    {
        Assert.True(new TcpOptionsValidator().Validate(null, new TcpOptions()).Succeeded);
        Assert.True(new TcpKeepAliveOptionsValidator().Validate(null, new TcpKeepAliveOptions()).Succeeded);
    }

    [Theory]
    [InlineData("Port", "70000", "Broker:Tcp:Port must be between 0 and 65535 (was 70000)")]
    [InlineData("Port", "-1", "Broker:Tcp:Port must be between 0 and 65535 (was -1)")]
    [InlineData("Address", "not-an-ip", "Broker:Tcp:Address must be an IPv4 or IPv6 address (was 'not-an-ip')")]
    [InlineData("Backlog", "0", "Broker:Tcp:Backlog must be greater than 0 (was 0)")]
    [InlineData("MaxPendingOutputBytes", "0", "Broker:Tcp:MaxPendingOutputBytes must be greater than 0 (was 0)")]
    [InlineData("MaxInputBufferBytes", "-5", "Broker:Tcp:MaxInputBufferBytes must be greater than 0 (was -5)")]
    public void Tcp_validation_names_the_key(string key, string value, string expected)
    {
        TcpOptions options = Bind<TcpOptions>(TcpOptions.SectionName, key, value);

        ValidateOptionsResult result = new TcpOptionsValidator().Validate(null, options);

        Assert.True(result.Failed);
        Assert.Equal([expected], result.Failures);
    }

    [Theory]
    [InlineData("IdleSeconds", "0", "Broker:TcpKeepAlive:IdleSeconds must be between 1 and 32767 (was 0)")]
    [InlineData("IntervalSeconds", "40000", "Broker:TcpKeepAlive:IntervalSeconds must be between 1 and 32767 (was 40000)")]
    [InlineData("ProbeCount", "128", "Broker:TcpKeepAlive:ProbeCount must be between 1 and 127 (was 128)")]
    public void Keep_alive_validation_names_the_key(string key, string value, string expected)
    {
        TcpKeepAliveOptions options = Bind<TcpKeepAliveOptions>(TcpKeepAliveOptions.SectionName, key, value);

        ValidateOptionsResult result = new TcpKeepAliveOptionsValidator().Validate(null, options);

        Assert.Equal([expected], result.Failures);
    }

    [Fact]
    public void Binds_every_key_from_configuration()
    {
        IConfiguration configuration = new ConfigurationBuilder()
            .AddInMemoryCollection(new Dictionary<string, string?>
            {
                ["Broker:Tcp:Address"] = "::",
                ["Broker:Tcp:Port"] = "8883",
                ["Broker:Tcp:Backlog"] = "128",
                ["Broker:Tcp:MaxPendingOutputBytes"] = "65536",
                ["Broker:Tcp:MaxInputBufferBytes"] = "32768",
                ["Broker:TcpKeepAlive:Enabled"] = "false",
                ["Broker:TcpKeepAlive:IdleSeconds"] = "30",
                ["Broker:TcpKeepAlive:IntervalSeconds"] = "5",
                ["Broker:TcpKeepAlive:ProbeCount"] = "3",
            })
            .Build();

        Assert.Equal(
            new TcpOptions { Address = "::", Port = 8883, Backlog = 128, MaxPendingOutputBytes = 65536, MaxInputBufferBytes = 32768 },
            configuration.GetSection(TcpOptions.SectionName).Get<TcpOptions>());
        Assert.Equal(
            new TcpKeepAliveOptions { Enabled = false, IdleSeconds = 30, IntervalSeconds = 5, ProbeCount = 3 },
            configuration.GetSection(TcpKeepAliveOptions.SectionName).Get<TcpKeepAliveOptions>());
    }

    private static T Bind<T>(string section, string key, string value)
        where T : new()
    {
        IConfiguration configuration = new ConfigurationBuilder()
            .AddInMemoryCollection(new Dictionary<string, string?> { [$"{section}:{key}"] = value })
            .Build();
        return configuration.GetSection(section).Get<T>() ?? new T();
    }
}
