using Broker.Hosting;
using Xunit;

namespace Broker.Tests.Hosting;

/// <summary>Configuration overrides are taken apart from the command line's own options before parsing.</summary>
public sealed class ConfigurationArgumentsTests
{
    [Fact]
    public void Both_dotnet_forms_become_key_equals_value_and_options_stay()
    {
        var result = ConfigurationArguments.Split(["--help", "--Broker:Tcp:Port=18990", "--Broker:Metrics:Port", "9000", "-p", "1", "Logging:LogLevel:Default=Debug"]);
        Assert.Equal(["--Broker:Tcp:Port=18990", "--Broker:Metrics:Port=9000", "--Logging:LogLevel:Default=Debug"], result.Overrides);
        Assert.Equal(["--help", "-p", "1"], result.Remaining);
        Assert.Empty(result.Errors);
    }

    [Fact]
    public void A_value_may_look_like_an_option_or_be_empty()
    {
        var result = ConfigurationArguments.Split(["--Broker:KeepAlive:ServerKeepAliveSeconds", "--help", "--Broker:Admin:Token="]);
        Assert.Equal(["--Broker:KeepAlive:ServerKeepAliveSeconds=--help", "--Broker:Admin:Token="], result.Overrides);
        Assert.Empty(result.Remaining);
    }

    [Fact]
    public void A_key_without_a_value_at_the_end_is_an_error()
    {
        var result = ConfigurationArguments.Split(["--Broker:Tcp:Port"]);
        Assert.Single(result.Errors);
        Assert.Empty(result.Overrides);
    }

    [Fact]
    public void Words_without_a_section_and_subcommand_arguments_are_left_to_the_parser()
    {
        var result = ConfigurationArguments.Split(["passwd", "--file", "/etc/broker/passwd", "alice", "--bogus", "C:x"]);
        Assert.Empty(result.Overrides);
        Assert.Equal(["passwd", "--file", "/etc/broker/passwd", "alice", "--bogus", "C:x"], result.Remaining);
    }
}
