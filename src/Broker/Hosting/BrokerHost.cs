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
using Microsoft.Extensions.Logging.Console;
using Microsoft.Extensions.Options;
using OpenTelemetry.Exporter;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;

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
        ConfigureConsoleLog(builder);
        configure?.Invoke(builder);
        // Before anything opens a socket: the runtime reads these once (see SocketEngineSettings).
        SocketEngineSettings.Apply(builder.Configuration);
        AddBroker(builder.Services, builder.Configuration);
        return builder;
    }

    /// <summary>
    /// The console log an operator expects from a server: one line per event with a UTC timestamp (the runtime's
    /// default is two lines and no time), or one JSON object per line, or journald's format
    /// (<c>Broker:Logging:Format</c>). The standard <c>Logging:Console:*</c> keys still win where they are set.
    /// </summary>
    private static void ConfigureConsoleLog(HostApplicationBuilder builder)
    {
        var configuration = builder.Configuration;
        string format = configuration[BrokerLoggingOptions.SectionName + ":" + nameof(BrokerLoggingOptions.Format)] ?? "simple";
        bool Set(string key) => configuration["Logging:Console:" + key] is not null;
        builder.Services.Configure<ConsoleLoggerOptions>(o =>
        {
            if (!Set("FormatterName") && BrokerLoggingOptions.Formats.Contains(format, StringComparer.OrdinalIgnoreCase))
            {
                o.FormatterName = format.ToLowerInvariant();
            }
        });
        builder.Services.Configure<SimpleConsoleFormatterOptions>(o =>
        {
            if (!Set("FormatterOptions:SingleLine"))
            {
                o.SingleLine = true;
            }
            if (!Set("FormatterOptions:TimestampFormat"))
            {
                o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ ";
            }
            if (!Set("FormatterOptions:UseUtcTimestamp"))
            {
                o.UseUtcTimestamp = true;
            }
        });
        builder.Services.Configure<JsonConsoleFormatterOptions>(o =>
        {
            if (!Set("FormatterOptions:TimestampFormat"))
            {
                o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ";
            }
            if (!Set("FormatterOptions:UseUtcTimestamp"))
            {
                o.UseUtcTimestamp = true;
            }
        });
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
        AddValidatedOptions<SysOptions, SysOptionsValidator>(services, configuration, SysOptions.SectionName);
        AddValidatedOptions<AdminOptions, AdminOptionsValidator>(services, configuration, AdminOptions.SectionName);
        AddValidatedOptions<BrokerLoggingOptions, BrokerLoggingOptionsValidator>(services, configuration, BrokerLoggingOptions.SectionName);
        AddValidatedOptions<MqttWebSocketOptions, MqttWebSocketOptionsValidator>(services, configuration, MqttWebSocketOptions.SectionName);
        services.AddKeepAliveEngine(configuration);
        services.AddBrokerSecurity(configuration, sp =>
        {
            var listeners = new List<ListenerAddress> { new("MQTT", sp.GetRequiredService<IOptions<TcpOptions>>().Value.Address) };
            if (sp.GetRequiredService<IOptions<MqttWebSocketOptions>>().Value is { Enabled: true } webSocket)
            {
                listeners.Add(new ListenerAddress("WebSocket", webSocket.Address));
            }
            return listeners;
        });

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
            sp.GetRequiredService<IClientAuthenticator>(),
            sp.GetRequiredService<TopicAuthorizer>(),
            sp.GetRequiredService<KeepAliveInsight>(),
            sp.GetRequiredService<EngineOverloadGate>()));
        services.TryAddSingleton(sp => new EngineOverloadGate(
            TimeSpan.FromMilliseconds(sp.GetRequiredService<IOptions<BrokerLimitsOptions>>().Value.EngineLagMilliseconds),
            sp.GetRequiredService<BrokerMetrics>(),
            sp.GetRequiredService<ILoggerFactory>().CreateLogger("Broker.Overload")));
        services.TryAddSingleton<BrokerServer>();
        services.TryAddSingleton<StartupFailures>();
        services.TryAddSingleton<StartupReport>();
        services.TryAddSingleton<IClientDirectory, ConnectionClientDirectory>();
        services.TryAddSingleton<MeterTotals>();
        services.TryAddSingleton(sp => new Lazy<MeterTotals>(sp.GetRequiredService<MeterTotals>));
        bool persistence = AddPersistence(services, configuration);
        AddMetricsEndpoint(services, configuration);
        if (persistence)
        {
            // After /healthz (alive while a large store is read), before $SYS and the MQTT listener: every session and
            // retained message is back before the first client or the first $SYS publication can see the broker.
            services.AddHostedService(sp => sp.GetRequiredService<PersistenceStartup>());
        }
        // Before the MQTT listener: their in-process totals start before the first connection can arrive.
        services.AddHostedService<SysTopicPublisher>();
        services.AddHostedService<ConnectionSummaryLog>();
        services.AddHostedService(sp => new GuardedBrokerServer(sp.GetRequiredService<BrokerServer>(), sp.GetRequiredService<StartupFailures>(),
            sp.GetRequiredService<IOptions<TcpOptions>>()));
        // After the TCP listener: they start once it is bound and stop accepting before its stop closes every client.
        if (configuration.GetValue(TlsOptions.SectionName + ":" + nameof(TlsOptions.Enabled), false))
        {
            services.TryAddSingleton<TlsServer>();
            services.AddHostedService(sp => sp.GetRequiredService<TlsServer>());
        }
        if (configuration.GetValue(MqttWebSocketOptions.SectionName + ":" + nameof(MqttWebSocketOptions.Enabled), false))
        {
            services.TryAddSingleton<WebSocketServer>();
            services.AddHostedService(sp => sp.GetRequiredService<WebSocketServer>());
        }
        services.AddHostedService<BrokerStateObserver>();
    }

    /// <summary>
    /// The store (issue #14, docs/persistence.md), opened and restored at start-up by <see cref="PersistenceStartup"/>;
    /// the router, the sessions and the wills write to it through <see cref="SessionJournal"/>. Nothing of it is
    /// registered when Broker:Persistence:Enabled is false: everything then lives in memory only. Two brokers never
    /// share a Broker:Persistence:Path (the store's lock file refuses the second).
    /// </summary>
    private static bool AddPersistence(IServiceCollection services, IConfiguration configuration)
    {
        if (!configuration.GetValue(PersistenceOptions.SectionName + ":" + nameof(PersistenceOptions.Enabled), true))
        {
            return false;
        }
        services.TryAddSingleton(sp => new SessionJournal(sp.GetRequiredService<IBrokerStateStore>(), sp.GetRequiredService<TimeProvider>()));
        // Restored sessions get their owner's ACL back, as the connection computes it at CONNECT.
        services.TryAddSingleton(sp => new StateRestorer(
            sp.GetRequiredService<SessionStore>(),
            sp.GetRequiredService<Router>(),
            sp.GetRequiredService<WillPublisher>(),
            sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<ILogger<StateRestorer>>(),
            sp.GetRequiredService<TopicAuthorizer>().ForClient));
        services.TryAddSingleton<PersistenceStartup>();
        services.TryAddSingleton<IBrokerStateStore>(sp =>
        {
            var options = sp.GetRequiredService<IOptions<PersistenceOptions>>().Value;
            // Relative to the content root (where appsettings.json is), not to whatever directory the service starts in.
            string root = sp.GetService<IHostEnvironment>()?.ContentRootPath ?? Directory.GetCurrentDirectory();
            return new SqliteBrokerStateStore(options with { Path = Path.GetFullPath(options.Path, root) },
                sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<BrokerMetrics>(),
                sp.GetRequiredService<ILogger<SqliteBrokerStateStore>>());
        });
        return true;
    }

    /// <summary>
    /// Registered before the MQTT listener so that it starts first (/readyz answers 503 until the listener is
    /// bound) and stops last (/readyz turns 503 as soon as the listener stops accepting).
    /// </summary>
    private static void AddMetricsEndpoint(IServiceCollection services, IConfiguration configuration)
    {
        services.TryAddSingleton<MetricsEndpoint>();
        services.AddHostedService(sp => sp.GetRequiredService<MetricsEndpoint>());
        // Without /metrics nobody reads the instruments, so nothing listens to them either and recording
        // costs one "enabled?" check.
        if (!configuration.GetValue(MetricsOptions.SectionName + ":" + nameof(MetricsOptions.Enabled), true))
        {
            return;
        }
        services.AddOpenTelemetry()
            // service_name, not "unknown_service:Broker"; the instance is the host, as Prometheus' own "instance" label is.
            .ConfigureResource(r => r.AddService(BrokerVersion.Product, serviceVersion: BrokerVersion.Version, autoGenerateServiceInstanceId: false,
                serviceInstanceId: Environment.MachineName))
            .WithMetrics(m =>
            {
                m.AddMeter(BrokerMetrics.MeterName)
                    .AddProcessInstrumentation()
                    .AddRuntimeInstrumentation()
                    // One broker per target: the scope label on every series says nothing a query needs.
                    .AddPrometheusExporter(o => o.ScopeInfoEnabled = false);
                // The SDK listens by meter name process-wide: with several brokers in one process (the
                // in-process tests) it would also pick up the others' "MqttBroker" instruments, and keep the
                // first of each name. Only the broker instruments of this container's meter factory are kept.
                ((IDeferredMeterProviderBuilder)m).Configure((sp, builder) =>
                {
                    var ownFactory = sp.GetRequiredService<IMeterFactory>();
                    builder.AddView(instrument => instrument.Meter.Name != BrokerMetrics.MeterName || ReferenceEquals(instrument.Meter.Scope, ownFactory)
                        ? null
                        : MetricStreamConfiguration.Drop);
                    // The process instrumentation's descriptor count duplicates process_open_fds, which pairs with
                    // process_max_fds under the names Prometheus client libraries use.
                    builder.AddView("process.unix.file_descriptor.count", MetricStreamConfiguration.Drop);
                });
            });
    }

    private static void AddValidatedOptions<TOptions, TValidator>(IServiceCollection services, IConfiguration configuration, string section)
        where TOptions : class
        where TValidator : class, IValidateOptions<TOptions>
    {
        services.AddOptions<TOptions>().Bind(configuration.GetSection(section)).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<TOptions>, TValidator>());
    }
}
