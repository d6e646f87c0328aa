using Microsoft.Extensions.Configuration;

namespace Broker.Hosting;

/// <summary>
/// <c>dotnet Broker.dll --healthcheck</c>: GETs /healthz of a running broker and exits 0 (healthy) or 1. It lets
/// the container's HEALTHCHECK use the runtime already in the image instead of installing curl.
/// </summary>
internal static class HealthCheckCommand
{
    public const string Switch = "--healthcheck";

    public static async Task<int> RunAsync(string[] args)
    {
        // The port comes from the same sources as the broker's (appsettings.json, Broker__Metrics__Port, command line).
        var configuration = new ConfigurationBuilder()
            .AddJsonFile(Path.Combine(AppContext.BaseDirectory, "appsettings.json"), optional: true)
            .AddEnvironmentVariables()
            .AddCommandLine(args.Where(a => a != Switch).ToArray())
            .Build();
        int port = configuration.GetValue(MetricsOptions.SectionName + ":" + nameof(MetricsOptions.Port), 9464);
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(3) };
        try
        {
            using var response = await http.GetAsync($"http://127.0.0.1:{port}/healthz");
            return response.IsSuccessStatusCode ? 0 : 1;
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
        {
            Console.Error.WriteLine($"healthcheck: {ex.Message}");
            return 1;
        }
    }
}
