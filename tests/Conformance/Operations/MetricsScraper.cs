using System.Globalization;
using System.Net;
using Broker.Hosting;
using Conformance.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace Conformance.Operations;

/// <summary>Reads the broker's HTTP endpoint and parses the Prometheus text format into samples.</summary>
internal sealed class MetricsScraper : IDisposable
{
    private readonly HttpClient _http;

    public MetricsScraper(BrokerInstance broker)
    {
        var endPoint = broker.Services.GetRequiredService<MetricsEndpoint>().LocalEndPoint
            ?? throw new InvalidOperationException("the metrics endpoint is not listening");
        // The first scrape compiles the exporter and the process and runtime instrumentations: seconds on a busy machine.
        _http = new HttpClient { BaseAddress = new Uri($"http://{endPoint}/"), Timeout = TimeSpan.FromSeconds(20) };
    }

    public Task<HttpResponseMessage> GetAsync(string path) => _http.GetAsync(path);

    public async Task<IReadOnlyList<Sample>> ScrapeAsync()
    {
        using var response = await _http.GetAsync("metrics");
        response.EnsureSuccessStatusCode();
        string text = await response.Content.ReadAsStringAsync();
        var samples = new List<Sample>();
        foreach (var line in text.Split('\n'))
        {
            if (line.Length == 0 || line[0] == '#')
            {
                continue;
            }
            samples.Add(Sample.Parse(line));
        }
        return samples;
    }

    /// <summary>The sum of the samples named <paramref name="name"/> that carry every given label; 0 when none (not yet recorded).</summary>
    public static double Value(IReadOnlyList<Sample> samples, string name, params (string Key, string Value)[] labels)
        => samples.Where(s => s.Name == name && labels.All(l => s.Labels.TryGetValue(l.Key, out var v) && v == l.Value)).Sum(s => s.Value);

    /// <summary>Scrapes every 100 ms until <paramref name="condition"/> holds; fails after 10 s with the last scrape.</summary>
    public async Task<IReadOnlyList<Sample>> WaitUntilAsync(Func<IReadOnlyList<Sample>, bool> condition, string what)
    {
        using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(100));
        IReadOnlyList<Sample> samples = [];
        try
        {
            do
            {
                samples = await ScrapeAsync().WaitAsync(bound.Token);
                if (condition(samples))
                {
                    return samples;
                }
            }
            while (await timer.WaitForNextTickAsync(bound.Token));
        }
        catch (OperationCanceledException) when (bound.IsCancellationRequested)
        {
        }
        throw new Xunit.Sdk.XunitException($"within 10 s: {what}. Last scrape:\n" + string.Join("\n", samples.Where(s => s.Name.StartsWith("mqtt_", StringComparison.Ordinal))));
    }

    public void Dispose() => _http.Dispose();

    internal sealed record Sample(string Name, IReadOnlyDictionary<string, string> Labels, double Value)
    {
        /// <summary>One exposition line: <c>name{k="v",...} value [timestamp]</c>. Label values here never contain '"' or ','.</summary>
        public static Sample Parse(string line)
        {
            int brace = line.IndexOf('{');
            int space = line.IndexOf(' ', brace < 0 ? 0 : line.IndexOf('}'));
            string name = line[..(brace < 0 ? space : brace)];
            var labels = new Dictionary<string, string>(StringComparer.Ordinal);
            if (brace >= 0)
            {
                foreach (var pair in line[(brace + 1)..line.IndexOf('}')].Split(',', StringSplitOptions.RemoveEmptyEntries))
                {
                    int eq = pair.IndexOf('=');
                    labels[pair[..eq]] = pair[(eq + 1)..].Trim('"');
                }
            }
            string value = line[(space + 1)..].Split(' ')[0];
            return new Sample(name, labels, value switch
            {
                "+Inf" => double.PositiveInfinity,
                "-Inf" => double.NegativeInfinity,
                _ => double.Parse(value, CultureInfo.InvariantCulture),
            });
        }

        public override string ToString() => $"{Name}{{{string.Join(",", Labels.Select(l => $"{l.Key}=\"{l.Value}\""))}}} {Value}";
    }
}
