using System.Collections.Concurrent;
using System.Net;
using Broker.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Conformance.Infrastructure;

/// <summary>
/// The real broker host started in-process on 127.0.0.1 and an ephemeral port, with optional configuration
/// overrides. Log lines are collected so tests can assert on them (and on the absence of errors). Persistence is on,
/// as in production, with a store directory of its own under the temp directory (tests run in parallel, and two
/// brokers never share a store), removed at dispose; a test that does not need it passes
/// <c>Broker:Persistence:Enabled=false</c>.
/// </summary>
internal sealed class BrokerInstance : IAsyncDisposable
{
    private readonly IHost _host;
    private readonly string? _storeDirectory;

    private BrokerInstance(IHost host, IPEndPoint endPoint, LogCollector logs, string? storeDirectory)
    {
        _host = host;
        EndPoint = endPoint;
        Logs = logs;
        _storeDirectory = storeDirectory;
    }

    /// <summary>A new, empty store directory under the temp directory (not created yet); the caller removes it.</summary>
    public static string NewStoreDirectory() => Path.Combine(Path.GetTempPath(), "broker-test-stores", Guid.NewGuid().ToString("N"));

    /// <summary>Removes a store directory, if any (a broker that failed to start may have left nothing).</summary>
    public static void DeleteStoreDirectory(string? directory)
    {
        if (directory is not null && Directory.Exists(directory))
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    public IPEndPoint EndPoint { get; }
    public int Port => EndPoint.Port;
    public IServiceProvider Services => _host.Services;
    public LogCollector Logs { get; }

    /// <param name="minimumLogLevel">Debug by default; the load smoke tests keep only warnings, so that logging
    /// hundreds of connects does not become what they measure.</param>
    public static async Task<BrokerInstance> StartAsync(IDictionary<string, string?>? settings = null,
        Action<IServiceCollection>? configureServices = null, LogLevel minimumLogLevel = LogLevel.Debug)
    {
        var logs = new LogCollector();
        string? storeDirectory = null;
        string? enabled = null;
        if (settings?.ContainsKey("Broker:Persistence:Path") != true
            && (settings is null || !settings.TryGetValue("Broker:Persistence:Enabled", out enabled) || !string.Equals(enabled, "false", StringComparison.OrdinalIgnoreCase)))
        {
            storeDirectory = NewStoreDirectory();
        }
        var builder = BrokerHost.CreateBuilder([], b =>
        {
            var overrides = new Dictionary<string, string?>
            {
                ["Broker:Tcp:Address"] = "127.0.0.1",
                ["Broker:Tcp:Port"] = "0",
                // Never the default 9464: tests run in parallel and next to a broker started by hand.
                ["Broker:Metrics:Address"] = "127.0.0.1",
                ["Broker:Metrics:Port"] = "0",
                // Off unless a test turns it on: every broker of this test process shares the runtime's one socket
                // engine thread, so its lag is every parallel test's load, and holding publishers for it would make
                // the timing of unrelated tests depend on what runs beside them (EngineOverloadTests turns it on).
                ["Broker:Limits:EngineLagMilliseconds"] = "0",
            };
            if (storeDirectory is not null)
            {
                overrides["Broker:Persistence:Path"] = storeDirectory;
            }
            if (ReplacesClock(configureServices))
            {
                // A fake clock that the test advances by hand would also hold the store's flush interval (a timer on
                // that clock) for ever: commit as soon as the writer is free instead (still group commit).
                overrides["Broker:Persistence:FlushIntervalMilliseconds"] = "0";
            }
            if (settings is not null)
            {
                foreach (var (key, value) in settings)
                {
                    overrides[key] = value;
                }
            }
            b.Configuration.AddInMemoryCollection(overrides);
            b.Logging.ClearProviders();
            b.Logging.AddProvider(logs);
            b.Logging.SetMinimumLevel(minimumLogLevel);
            configureServices?.Invoke(b.Services);
        });
        var host = builder.Build();
        try
        {
            await host.StartAsync();
            var failures = host.Services.GetRequiredService<StartupFailures>();
            if (failures.Any)
            {
                throw new InvalidOperationException("the broker did not start: " + string.Join("; ", failures.Messages));
            }
        }
        catch
        {
            host.Dispose();
            DeleteStoreDirectory(storeDirectory);
            throw;
        }
        var server = host.Services.GetRequiredService<BrokerServer>();
        return new BrokerInstance(host, server.LocalEndPoint, logs, storeDirectory);
    }

    private static bool ReplacesClock(Action<IServiceCollection>? configureServices)
    {
        if (configureServices is null)
        {
            return false;
        }
        var probe = new ServiceCollection();
        configureServices(probe);
        return probe.Any(d => d.ServiceType == typeof(TimeProvider));
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
            DeleteStoreDirectory(_storeDirectory);
        }
    }
}

/// <summary>Keeps every log line of the broker under test.</summary>
internal sealed class LogCollector : ILoggerProvider
{
    private readonly ConcurrentQueue<(LogLevel Level, string Category, EventId EventId, string Message)> _entries = new();
    private TaskCompletionSource _appended = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public IReadOnlyList<(LogLevel Level, string Category, EventId EventId, string Message)> Entries => [.. _entries];

    public IReadOnlyList<string> Errors => [.. _entries.Where(e => e.Level >= LogLevel.Error).Select(e => $"{e.Category}[{e.EventId.Id}] {e.Message}")];

    public IEnumerable<string> Messages(int eventId) => _entries.Where(e => e.EventId.Id == eventId).Select(e => e.Message);

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    /// <summary>
    /// Waits (bounded) for a log line with <paramref name="eventId"/> whose message contains <paramref name="text"/>:
    /// the way a test learns that the broker finished something it cannot observe on the wire.
    /// </summary>
    public async Task<string> WaitForAsync(int eventId, string text, TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        while (true)
        {
            var appended = Volatile.Read(ref _appended);
            foreach (var message in Messages(eventId))
            {
                if (message.Contains(text, StringComparison.Ordinal))
                {
                    return message;
                }
            }
            try
            {
                await appended.Task.WaitAsync(cts.Token);
            }
            catch (OperationCanceledException)
            {
                throw new TimeoutException($"no log event {eventId} containing '{text}' within {timeout}");
            }
        }
    }

    private void Append((LogLevel, string, EventId, string) entry)
    {
        _entries.Enqueue(entry);
        Interlocked.Exchange(ref _appended, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
    }

    public void Dispose()
    {
    }

    private sealed class Logger(LogCollector owner, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            => owner.Append((logLevel, category, eventId, formatter(state, exception) + (exception is null ? "" : " " + exception)));
    }
}
