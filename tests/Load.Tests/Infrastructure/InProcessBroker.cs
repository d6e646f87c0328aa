using System.Collections.Concurrent;
using Broker.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Broker.Load.Tests.Infrastructure;

/// <summary>
/// Our broker's real host, in this process on 127.0.0.1 and an ephemeral port. Only warnings and
/// errors are kept: per-connection log lines for hundreds of clients would measure the logger.
/// </summary>
internal sealed class InProcessBroker : IAsyncDisposable
{
    private readonly IHost _host;

    private InProcessBroker(IHost host, int port, WarningCollector logs)
    {
        _host = host;
        Port = port;
        Logs = logs;
    }

    public int Port { get; }
    public WarningCollector Logs { get; }

    public static async Task<InProcessBroker> StartAsync(IDictionary<string, string?>? settings = null)
    {
        var logs = new WarningCollector();
        var builder = BrokerHost.CreateBuilder([], b =>
        {
            var overrides = new Dictionary<string, string?>
            {
                ["Broker:Tcp:Address"] = "127.0.0.1",
                ["Broker:Tcp:Port"] = "0",
                // The Prometheus endpoint stays on (as shipped) but must not take a fixed port.
                ["Broker:Metrics:Address"] = "127.0.0.1",
                ["Broker:Metrics:Port"] = "0",
            };
            foreach ((string key, string? value) in settings ?? new Dictionary<string, string?>())
            {
                overrides[key] = value;
            }

            b.Configuration.AddInMemoryCollection(overrides);
            b.Logging.ClearProviders();
            b.Logging.AddProvider(logs);
            b.Logging.SetMinimumLevel(LogLevel.Warning);
        });
        IHost host = builder.Build();
        await host.StartAsync();
        int port = host.Services.GetRequiredService<BrokerServer>().LocalEndPoint.Port;
        return new InProcessBroker(host, port, logs);
    }

    public async ValueTask DisposeAsync()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        try
        {
            await _host.StopAsync(timeout.Token);
        }
        finally
        {
            _host.Dispose();
        }
    }
}

/// <summary>Keeps the broker's warning and error lines.</summary>
internal sealed class WarningCollector : ILoggerProvider
{
    private readonly ConcurrentQueue<(LogLevel Level, string Line)> _entries = new();

    public IReadOnlyList<string> Errors => [.. _entries.Where(e => e.Level >= LogLevel.Error).Select(e => e.Line)];

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public void Dispose()
    {
    }

    private sealed class Logger(WarningCollector owner, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Warning;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (IsEnabled(logLevel))
            {
                owner._entries.Enqueue((logLevel, $"{logLevel} {category}[{eventId.Id}] {formatter(state, exception)} {exception}"));
            }
        }
    }
}
