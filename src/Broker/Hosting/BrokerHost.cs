using System.Diagnostics.Metrics;
using Broker.Connections;
using Broker.Connections.KeepAlive;
using Broker.Diagnostics;
using Broker.Diagnostics.Insight;
using Broker.Persistence;
using Broker.Routing;
using Broker.Security;
using Broker.Sessions;
using Broker.Transport;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using OpenTelemetry.Metrics;

namespace Broker.Hosting;

/// <summary>Builds the broker's Generic Host; Program and the in-process tests share it.</summary>
internal static class BrokerHost
{
    public static HostApplicationBuilder CreateBuilder(string[] args, Action<HostApplicationBuilder>? configure = null)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings
        {
            Args = args,
            ContentRootPath = FindContentRoot(),
        });
        configure?.Invoke(builder);
        // Before anything opens a socket: the runtime reads these once (see SocketEngineSettings).
        SocketEngineSettings.Apply(builder.Configuration);
        AddBroker(builder.Services, builder.Configuration);
        return builder;
    }

    /// <summary>
    /// The directory holding appsettings.json: the working directory when the README's command runs from the
    /// repository root, else next to the binary (the container copies it there).
    /// </summary>
    private static string FindContentRoot()
    {
        string cwd = Directory.GetCurrentDirectory();
        if (File.Exists(Path.Combine(cwd, "appsettings.json")))
        {
            return cwd;
        }
        return File.Exists(Path.Combine(AppContext.BaseDirectory, "appsettings.json")) ? AppContext.BaseDirectory : cwd;
    }

    public static void AddBroker(IServiceCollection services, IConfiguration configuration)
    {
        services.TryAddSingleton(TimeProvider.System);
        // Unknown keys under Broker (typos) stop start-up with the full key named, like invalid values.
        services.AddOptions<BrokerConfigurationKeys>().ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<BrokerConfigurationKeys>>(new BrokerConfigurationKeysValidator(configuration)));
        AddValidatedOptions<TcpOptions, TcpOptionsValidator>(services, configuration, TcpOptions.SectionName);
        AddValidatedOptions<TcpKeepAliveOptions, TcpKeepAliveOptionsValidator>(services, configuration, TcpKeepAliveOptions.SectionName);
        AddValidatedOptions<BrokerLimitsOptions, BrokerLimitsOptionsValidator>(services, configuration, BrokerLimitsOptions.Section);
        AddValidatedOptions<MetricsOptions, MetricsOptionsValidator>(services, configuration, MetricsOptions.SectionName);
        AddValidatedOptions<PersistenceOptions, PersistenceOptionsValidator>(services, configuration, PersistenceOptions.SectionName);
        services.AddKeepAliveEngine(configuration);
        services.AddBrokerSecurity(configuration,
            sp => [new ListenerAddress("MQTT", sp.GetRequiredService<IOptions<TcpOptions>>().Value.Address)]);

        services.AddMetrics();
        services.TryAddSingleton(sp => new BrokerMetrics(sp.GetService<System.Diagnostics.Metrics.IMeterFactory>()));
        services.AddKeepAliveInsight();
        services.TryAddSingleton<Router>();
        services.TryAddSingleton<SessionStore>();
        services.TryAddSingleton<WillPublisher>();
        services.TryAddSingleton<ConnectionRegistry>();
        services.TryAddSingleton<SocketListener>();
        services.TryAddSingleton(sp => new ConnectionServices(
            sp.GetRequiredService<SessionStore>(),
            sp.GetRequiredService<Router>(),
            sp.GetRequiredService<WillPublisher>(),
            sp.GetRequiredService<TimerWheel>(),
            sp.GetRequiredService<KeepAlivePolicy>(),
            sp.GetRequiredService<IOptions<KeepAliveOptions>>().Value,
            sp.GetRequiredService<IOptions<BrokerLimitsOptions>>().Value,
            sp.GetRequiredService<BrokerMetrics>(),
            sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<ILoggerFactory>().CreateLogger("Broker.Connections"),
            sp.GetRequiredService<ConnectionRegistry>(),
            sp.GetRequiredService<IOptions<TcpOptions>>().Value.MaxPendingOutputBytes,
            sp.GetRequiredService<KeepAliveInsight>()));
        services.TryAddSingleton<BrokerServer>();
        AddPersistence(services, configuration);
        AddMetricsEndpoint(services, configuration);
        services.AddHostedService(sp => sp.GetRequiredService<BrokerServer>());
        services.AddHostedService<BrokerStateObserver>();
    }

    /// <summary>
    /// The store is registered but nothing resolves it yet, so no database is opened at start-up: it is opened
    /// (<see cref="IBrokerStateStore.Open"/>) once the connections restore from it and write to it (issue #14).
    /// In-process tests start many brokers at once, each will then need its own Broker:Persistence:Path.
    /// </summary>
    private static void AddPersistence(IServiceCollection services, IConfiguration configuration)
    {
        if (!configuration.GetValue(PersistenceOptions.SectionName + ":" + nameof(PersistenceOptions.Enabled), true))
        {
            return;
        }
        services.TryAddSingleton<IBrokerStateStore>(sp =>
        {
            var options = sp.GetRequiredService<IOptions<PersistenceOptions>>().Value;
            // Relative to the content root (where appsettings.json is), not to whatever directory the service starts in.
            string root = sp.GetService<IHostEnvironment>()?.ContentRootPath ?? Directory.GetCurrentDirectory();
            return new SqliteBrokerStateStore(options with { Path = Path.GetFullPath(options.Path, root) },
                sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<BrokerMetrics>(),
                sp.GetRequiredService<ILogger<SqliteBrokerStateStore>>());
        });
    }

    /// <summary>
    /// Registered before the MQTT listener so that it starts first (/readyz answers 503 until the listener is
    /// bound) and stops last (/readyz turns 503 as soon as the listener stops accepting).
    /// </summary>
    private static void AddMetricsEndpoint(IServiceCollection services, IConfiguration configuration)
    {
        services.TryAddSingleton<MetricsEndpoint>();
        services.AddHostedService(sp => sp.GetRequiredService<MetricsEndpoint>());
        // Without the endpoint nobody reads the instruments, so nothing listens to them either and recording
        // costs one "enabled?" check.
        if (configuration.GetValue(MetricsOptions.SectionName + ":" + nameof(MetricsOptions.Enabled), true))
        {
            services.AddOpenTelemetry().WithMetrics(m =>
            {
                m.AddMeter(BrokerMetrics.MeterName).AddPrometheusExporter();
                // The SDK listens by meter name process-wide: with several brokers in one process (the
                // in-process tests) it would also pick up the others' "MqttBroker" instruments, and keep the
                // first of each name. Only instruments of this container's meter factory are kept.
                ((IDeferredMeterProviderBuilder)m).Configure((sp, builder) =>
                {
                    var ownFactory = sp.GetRequiredService<IMeterFactory>();
                    builder.AddView(instrument => ReferenceEquals(instrument.Meter.Scope, ownFactory) ? null : MetricStreamConfiguration.Drop);
                });
            });
        }
    }

    private static void AddValidatedOptions<TOptions, TValidator>(IServiceCollection services, IConfiguration configuration, string section)
        where TOptions : class
        where TValidator : class, IValidateOptions<TOptions>
    {
        services.AddOptions<TOptions>().Bind(configuration.GetSection(section)).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<TOptions>, TValidator>());
    }
}
