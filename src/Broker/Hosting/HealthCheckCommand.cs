using Microsoft.Extensions.Configuration;

namespace Broker.Hosting;

/// <summary>
/// <c>dotnet Broker.dll --healthcheck</c>: GETs /healthz of a running broker and exits 0 (healthy) or 1. It lets
/// the container's HEALTHCHECK use the runtime already in the image instead of installing curl.
/// </summary>
/// <remarks>
/// The URL comes from <c>Broker:Metrics:EndpointFile</c> when the running broker wrote one (a HEALTHCHECK process does
/// not see the arguments the broker was started with), else from the same configuration the broker reads
/// (appsettings.json, environment, this command line): <c>Broker:Metrics:Address</c>, or loopback when that is every
/// address (0.0.0.0 or ::), and <c>Broker:Metrics:Port</c>.
/// </remarks>
internal static class HealthCheckCommand
{
    public const string Switch = "--healthcheck";

    public static string ResolveUrl(IConfiguration configuration)
    {
        var options = configuration.GetSection(MetricsOptions.SectionName).Get<MetricsOptions>() ?? new MetricsOptions();
        if (!string.IsNullOrEmpty(options.EndpointFile) && File.Exists(options.EndpointFile))
        {
            string written = File.ReadAllText(options.EndpointFile).Trim();
            if (Uri.TryCreate(written, UriKind.Absolute, out _))
            {
                return written;
            }
        }
        return MetricsEndpoint.HealthUrl(options.Address, options.Port);
    }

    public static async Task<int> RunAsync(IConfiguration configuration, TextWriter error, CancellationToken cancellationToken)
    {
        string url;
        try
        {
            url = ResolveUrl(configuration);
        }
        catch (Exception ex) when (ex is InvalidOperationException or FormatException or IOException)
        {
            await error.WriteLineAsync($"healthcheck: {ex.Message}").ConfigureAwait(false);
            return BrokerCommandLine.ExitFailure;
        }
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(3) };
        try
        {
            using var response = await http.GetAsync(url, cancellationToken).ConfigureAwait(false);
            if (response.IsSuccessStatusCode)
            {
                return BrokerCommandLine.ExitOk;
            }
            await error.WriteLineAsync($"healthcheck: {url} answered {(int)response.StatusCode}").ConfigureAwait(false);
            return BrokerCommandLine.ExitFailure;
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
        {
            await error.WriteLineAsync($"healthcheck: {url}: {ex.Message}").ConfigureAwait(false);
            return BrokerCommandLine.ExitFailure;
        }
    }
}
