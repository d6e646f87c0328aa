using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Broker.Hosting;

/// <summary>
/// The small Kestrel apps the broker runs inside its own host (the HTTP endpoint, the WebSocket listener): only the
/// endpoints each configures (no ASPNETCORE_URLS), no second console logger, no second Ctrl+C handler.
/// </summary>
internal static class InnerWebApp
{
    public static WebApplicationBuilder CreateBuilder(ILoggerFactory brokerLoggers)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [] });
        builder.Logging.ClearProviders();
        // The broker's log, without the inner host's "Hosting failed to start" and its stack trace: a bind failure is
        // reported once, as one line naming the key (StartupFailures).
        builder.Services.Replace(ServiceDescriptor.Singleton<ILoggerFactory>(new BrokerLoggers(brokerLoggers)));
        builder.Services.Replace(ServiceDescriptor.Singleton<IHostLifetime, OwnedLifetime>());
        return builder;
    }

    private sealed class BrokerLoggers(ILoggerFactory broker) : ILoggerFactory
    {
        private const string HostCategory = "Microsoft.Extensions.Hosting.Internal.Host";

        public ILogger CreateLogger(string categoryName)
            => categoryName == HostCategory ? Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance : broker.CreateLogger(categoryName);

        public void AddProvider(ILoggerProvider provider) => broker.AddProvider(provider);

        public void Dispose()
        {
            // The broker's factory belongs to the broker's host.
        }
    }

    /// <summary>The broker's host owns the process lifetime; an inner app starts and stops when told.</summary>
    private sealed class OwnedLifetime : IHostLifetime
    {
        public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
