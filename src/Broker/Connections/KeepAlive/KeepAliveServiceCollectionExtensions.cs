using Broker.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Broker.Connections.KeepAlive;

internal static class KeepAliveServiceCollectionExtensions
{
    /// <summary>
    /// Binds and validates <see cref="KeepAliveOptions"/> (at start-up), and registers the policy, the one
    /// wheel and its heartbeat.
    /// </summary>
    public static IServiceCollection AddKeepAliveEngine(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<KeepAliveOptions>()
            .Bind(configuration.GetSection(KeepAliveOptions.SectionName))
            .ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<KeepAliveOptions>, KeepAliveOptionsValidator>());
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton(sp => new KeepAlivePolicy(sp.GetRequiredService<IOptions<KeepAliveOptions>>().Value));
        services.TryAddSingleton(sp => new TimerWheel(
            sp.GetRequiredService<TimeProvider>(),
            TimeSpan.FromMilliseconds(sp.GetRequiredService<IOptions<KeepAliveOptions>>().Value.TickMilliseconds)));
        services.AddHostedService<KeepAliveHeartbeat>();
        return services;
    }
}
