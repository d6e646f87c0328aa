using Broker.Hosting;
using Broker.Persistence;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Xunit;

namespace Broker.Tests.Persistence;

public sealed class PersistenceOptionsTests
{
    private static IConfiguration Config(params (string Key, string Value)[] pairs) => new ConfigurationBuilder()
        .AddInMemoryCollection(pairs.Select(p => new KeyValuePair<string, string?>(p.Key, p.Value)))
        .Build();

    [Fact]
    public void Defaults_are_valid_and_on()
    {
        var options = new PersistenceOptions();
        Assert.True(options.Enabled);
        Assert.Equal("./data", options.Path);
        Assert.True(new PersistenceOptionsValidator().Validate(null, options).Succeeded);
    }

    [Theory]
    [InlineData(" ", 2, 1024, 100_000, "Broker:Persistence:Path must name a directory (was ' ')")]
    [InlineData("./data", -1, 1024, 100_000, "Broker:Persistence:FlushIntervalMilliseconds must be between 0 and 1000 (was -1)")]
    [InlineData("./data", 1001, 1024, 100_000, "Broker:Persistence:FlushIntervalMilliseconds must be between 0 and 1000 (was 1001)")]
    [InlineData("./data", 2, 0, 100_000, "Broker:Persistence:MaxBatchSize must be between 1 and 1000000 (was 0)")]
    [InlineData("./data", 2, 1024, 1023, "Broker:Persistence:MaxPendingOperations must be at least MaxBatchSize (1024) (was 1023)")]
    public void Invalid_values_name_the_key(string path, int flushMs, int maxBatch, int maxPending, string expected)
    {
        var result = new PersistenceOptionsValidator().Validate(null, new PersistenceOptions
        {
            Path = path,
            FlushIntervalMilliseconds = flushMs,
            MaxBatchSize = maxBatch,
            MaxPendingOperations = maxPending,
        });
        Assert.Equal([expected], result.Failures!);
    }

    [Fact]
    public void Disabled_persistence_is_not_validated()
    {
        Assert.True(new PersistenceOptionsValidator().Validate(null, new PersistenceOptions { Enabled = false, Path = "" }).Succeeded);
    }

    [Fact]
    public void The_configuration_key_check_accepts_every_persistence_key_and_names_a_typo()
    {
        var config = Config(("Broker:Persistence:Enabled", "true"), ("Broker:Persistence:Path", "/var/lib/broker"),
            ("Broker:Persistence:FlushIntervalMilliseconds", "5"), ("Broker:Persistence:MaxBatchSize", "100"),
            ("Broker:Persistence:MaxPendingOperations", "1000"));
        Assert.Empty(ConfigurationKeyCheck.FindUnknownKeys(config));

        var problem = Assert.Single(ConfigurationKeyCheck.FindUnknownKeys(Config(("Broker:Persistence:Directory", "x"))));
        Assert.StartsWith("Broker:Persistence:Directory is not a known setting", problem);
    }

    [Theory]
    [InlineData("true", true)]
    [InlineData("false", false)]
    public void The_store_is_registered_only_when_enabled(string enabled, bool registered)
    {
        var services = new ServiceCollection();
        BrokerHost.AddBroker(services, Config(("Broker:Persistence:Enabled", enabled)));
        Assert.Equal(registered, services.Any(d => d.ServiceType == typeof(IBrokerStateStore)));
    }

    [Fact]
    public void A_relative_path_is_resolved_against_the_content_root_and_nothing_is_opened_on_resolution()
    {
        string root = Path.Combine(Path.GetTempPath(), "broker-store-tests", Guid.NewGuid().ToString("N"));
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddSingleton<Microsoft.Extensions.Hosting.IHostEnvironment>(new TestEnvironment(root));
        BrokerHost.AddBroker(services, Config(("Broker:Persistence:Path", "state")));
        using var provider = services.BuildServiceProvider();

        var store = Assert.IsType<SqliteBrokerStateStore>(provider.GetRequiredService<IBrokerStateStore>());

        Assert.Equal(Path.Combine(root, "state", SqliteSchema.FileName), store.DatabasePath);
        Assert.Equal(StoreHealth.Closed, store.Health);
        Assert.False(Directory.Exists(root));
    }

    private sealed class TestEnvironment(string root) : Microsoft.Extensions.Hosting.IHostEnvironment
    {
        public string EnvironmentName { get; set; } = "Test";
        public string ApplicationName { get; set; } = "Broker.Tests";
        public string ContentRootPath { get; set; } = root;
        public Microsoft.Extensions.FileProviders.IFileProvider ContentRootFileProvider { get; set; } = new Microsoft.Extensions.FileProviders.NullFileProvider();
    }
}
