using System.Diagnostics.Metrics;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Broker.Security;

internal static class SecurityServiceCollectionExtensions
{
    /// <summary>
    /// Binds and validates <c>Broker:Auth</c> and <c>Broker:Tls</c> (at start-up, files included), and registers
    /// <see cref="IClientAuthenticator"/>, <see cref="TopicAuthorizer"/>, <see cref="TlsServerOptionsFactory"/>
    /// (only when TLS is enabled) and the start-up report.
    /// </summary>
    /// <param name="plainListeners">The listeners outside this folder (the TCP one), for the anonymous-access warning.</param>
    public static IServiceCollection AddBrokerSecurity(this IServiceCollection services, IConfiguration configuration,
        Func<IServiceProvider, IEnumerable<ListenerAddress>> plainListeners)
    {
        services.AddOptions<AuthOptions>().Bind(configuration.GetSection(AuthOptions.SectionName)).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<AuthOptions>, AuthOptionsValidator>());
        services.AddOptions<TlsOptions>().Bind(configuration.GetSection(TlsOptions.SectionName)).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<TlsOptions>, TlsOptionsValidator>());

        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton(sp => new SecurityMetrics(sp.GetService<IMeterFactory>()));
        services.TryAddSingleton(sp => new ClientAuthenticator(
            sp.GetRequiredService<IOptions<AuthOptions>>().Value,
            sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<ILogger<ClientAuthenticator>>(),
            sp.GetRequiredService<SecurityMetrics>()));
        services.TryAddSingleton<IClientAuthenticator>(sp => sp.GetRequiredService<ClientAuthenticator>());
        services.TryAddSingleton(sp => new TopicAuthorizer(
            sp.GetRequiredService<IOptions<AuthOptions>>().Value,
            sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<ILogger<TopicAuthorizer>>(),
            sp.GetRequiredService<SecurityMetrics>()));

        bool tlsEnabled = configuration.GetValue(TlsOptions.SectionName + ":" + nameof(TlsOptions.Enabled), false);
        if (tlsEnabled)
        {
            services.TryAddSingleton(sp => new TlsServerOptionsFactory(
                sp.GetRequiredService<IOptions<TlsOptions>>().Value,
                sp.GetRequiredService<TimeProvider>(),
                sp.GetRequiredService<ILogger<TlsServerOptionsFactory>>()));
        }

        services.AddHostedService(sp =>
        {
            var tls = sp.GetRequiredService<IOptions<TlsOptions>>().Value;
            var listeners = plainListeners(sp).ToList();
            if (tls.Enabled)
            {
                listeners.Add(new ListenerAddress("TLS", tls.Address));
            }
            return new SecurityStartupReport(
                sp.GetRequiredService<IOptions<AuthOptions>>().Value,
                sp.GetRequiredService<ClientAuthenticator>(),
                sp.GetRequiredService<TopicAuthorizer>(),
                tls.Enabled && tls.HasClientCa,
                listeners,
                sp.GetRequiredService<ILogger<SecurityStartupReport>>());
        });
        return services;
    }
}
