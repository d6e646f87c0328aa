using Broker.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Xunit;

namespace Broker.Tests.Hosting;

public sealed class ConfigurationKeyCheckTests
{
    private static IConfiguration Config(params (string Key, string Value)[] pairs) => new ConfigurationBuilder()
        .AddInMemoryCollection(pairs.Select(p => new KeyValuePair<string, string?>(p.Key, p.Value)))
        .Build();

    [Fact]
    public void Known_keys_of_every_section_pass()
    {
        var config = Config(("Broker:Tcp:Port", "1883"), ("Broker:TcpKeepAlive:IdleSeconds", "60"), ("Broker:KeepAlive:MaxSeconds", "600"),
            ("Broker:Limits:MaxPacketSize", "4096"), ("Broker:Limits:OutboundTopicAliases", "false"), ("Broker:Metrics:Enabled", "false"), ("Logging:LogLevel:Default", "Warning"));
        Assert.Empty(ConfigurationKeyCheck.FindUnknownKeys(config));
    }

    [Fact]
    public void Every_key_of_the_shipped_appsettings_json_is_known()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Broker.sln")))
        {
            dir = dir.Parent;
        }
        Assert.NotNull(dir);
        var config = new ConfigurationBuilder().AddJsonFile(Path.Combine(dir.FullName, "appsettings.json")).Build();
        Assert.Empty(ConfigurationKeyCheck.FindUnknownKeys(config));
    }

    [Fact]
    public void A_misspelt_setting_is_named_with_its_full_key()
    {
        var config = Config(("Broker:KeepAlive:MaxSecond", "5"));
        var problem = Assert.Single(ConfigurationKeyCheck.FindUnknownKeys(config));
        Assert.StartsWith("Broker:KeepAlive:MaxSecond is not a known setting", problem);
        Assert.Contains("MaxSeconds", problem);
    }

    [Fact]
    public void A_misspelt_section_is_named()
    {
        var problem = Assert.Single(ConfigurationKeyCheck.FindUnknownKeys(Config(("Broker:Tcpp:Port", "1"))));
        Assert.StartsWith("Broker:Tcpp is not a known section", problem);
    }

    [Fact]
    public void Start_up_validation_reports_the_unknown_key()
    {
        var config = Config(("Broker:Limits:MaxQueuedMessage", "10"));
        var services = new ServiceCollection();
        services.AddOptions<BrokerConfigurationKeys>();
        services.AddSingleton<IValidateOptions<BrokerConfigurationKeys>>(new BrokerConfigurationKeysValidator(config));
        using var provider = services.BuildServiceProvider();
        var ex = Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<IOptions<BrokerConfigurationKeys>>().Value);
        Assert.Contains(ex.Failures, f => f.StartsWith("Broker:Limits:MaxQueuedMessage is not a known setting", StringComparison.Ordinal));
    }
}
