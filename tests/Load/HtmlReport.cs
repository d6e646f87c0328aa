using System.Globalization;
using System.Net;
using System.Text;

namespace Broker.Load;

/// <summary>
/// <c>--report FILE.html</c>: one self-contained page (inline SVG, no scripts, no external files) with the summary
/// and four charts: connects over time, PINGRESP latency over time, when silent clients were closed, throughput.
/// </summary>
internal static class HtmlReport
{
    private const int Width = 720;
    private const int Height = 260;
    private const int Left = 64;
    private const int Right = 16;
    private const int Top = 28;
    private const int Bottom = 40;

    private static readonly string[] Colors = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd"];

    public sealed record Series(string Name, IReadOnlyList<(double X, double Y)> Points);

    public static void Write(string path, LoadOptions options, WorkerResult merged, string summary)
        => File.WriteAllText(path, Build(options, merged, summary), Encoding.UTF8);

    public static string Build(LoadOptions options, WorkerResult merged, string summary)
    {
        var timeline = merged.Timeline ?? [];
        var html = new StringBuilder();
        string title = $"Broker.Load {LoadOptions.ScenarioName(options.Scenario)}: {options.TotalClients} clients";
        html.Append("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>").Append(E(title)).Append("</title>\n<style>")
            .Append("body{font-family:system-ui,sans-serif;margin:2em;max-width:60em;color:#222}pre{background:#f4f4f4;padding:1em;white-space:pre-wrap}")
            .Append("svg{display:block;margin:1em 0 2em}text{font-size:12px;fill:#333}.axis{stroke:#888}.grid{stroke:#e4e4e4}")
            .Append("</style></head><body>\n<h1>").Append(E(title)).Append("</h1>\n<pre>").Append(E(summary)).Append("</pre>\n");

        html.Append("<h2>Connects over time</h2>\n").Append(LineChart("clients", "seconds since start",
        [
            new Series("connected", timeline.Select(p => ((double)p.Second, (double)p.Connected)).ToList()),
            new Series("connects per second", Rate(timeline, p => p.Connects)),
            new Series("failures per second", Rate(timeline, p => p.ConnectFailures)),
        ]));

        html.Append("<h2>PINGRESP latency over time</h2>\n").Append(LineChart("ms", "seconds since start",
        [
            new Series("p50", timeline.Where(p => p.Pings > 0).Select(p => ((double)p.Second, p.PingP50Micros / 1000.0)).ToList()),
            new Series("p99", timeline.Where(p => p.Pings > 0).Select(p => ((double)p.Second, p.PingP99Micros / 1000.0)).ToList()),
            new Series("max", timeline.Where(p => p.Pings > 0).Select(p => ((double)p.Second, p.PingMaxMicros / 1000.0)).ToList()),
        ]));

        html.Append("<h2>Expiry timing</h2>\n");
        if (merged.Histograms.TryGetValue(HistogramNames.SilentClose, out var closeData) && closeData.Count > 0)
        {
            var close = LatencyHistogram.FromData(closeData);
            double k = options.KeepAliveSeconds;
            var cdf = Enumerable.Range(0, 101).Select(p => (close.Percentile(p) / 1e6 / k, (double)p)).ToList();
            html.Append("<p>Time from a silent client's last packet to the broker closing it, in multiples of Keep Alive K; ")
                .Append("the specification's limit is 1.5 K (dashed).</p>\n")
                .Append(LineChart("% of silent clients closed", "time since last packet / K", [new Series("closed", cdf)], verticalMarker: 1.5));
        }
        else
        {
            html.Append("<p>No silent clients in this run (the <code>silent</code> scenario measures this).</p>\n");
        }

        html.Append("<h2>Throughput</h2>\n").Append(LineChart("per second", "seconds since start",
        [
            new Series("published", Rate(timeline, p => p.Published)),
            new Series("delivered", Rate(timeline, p => p.Delivered)),
            new Series("unexpected disconnects", Rate(timeline, p => p.Dropped)),
            new Series("silent clients closed", Rate(timeline, p => p.SilentClosed)),
        ]));
        html.Append("<p>Latency figures per second are the worst worker's when several processes ran.</p>\n</body></html>\n");
        return html.ToString();
    }

    /// <summary>Per-second differences of a cumulative counter.</summary>
    private static List<(double X, double Y)> Rate(IReadOnlyList<TimelinePoint> timeline, Func<TimelinePoint, long> counter)
    {
        var points = new List<(double, double)>();
        for (int i = 1; i < timeline.Count; i++)
        {
            double seconds = Math.Max(1, timeline[i].Second - timeline[i - 1].Second);
            points.Add((timeline[i].Second, (counter(timeline[i]) - counter(timeline[i - 1])) / seconds));
        }
        return points;
    }

    /// <summary>An SVG line chart with axes, grid, tick labels and a legend; series without points are left out.</summary>
    public static string LineChart(string yLabel, string xLabel, IReadOnlyList<Series> series, double? verticalMarker = null)
    {
        var drawn = series.Where(s => s.Points.Count > 0).ToList();
        var svg = new StringBuilder();
        svg.Append(CultureInfo.InvariantCulture, $"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{Width}\" height=\"{Height}\" viewBox=\"0 0 {Width} {Height}\" role=\"img\">");
        if (drawn.Count == 0)
        {
            svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{Left}\" y=\"{Height / 2}\">no data in this run</text></svg>\n");
            return svg.ToString();
        }

        double xMin = drawn.Min(s => s.Points.Min(p => p.X)), xMax = drawn.Max(s => s.Points.Max(p => p.X));
        if (verticalMarker is { } marker)
        {
            xMin = Math.Min(xMin, marker);
            xMax = Math.Max(xMax, marker);
        }
        double yMax = NiceCeiling(drawn.Max(s => s.Points.Max(p => p.Y)));
        if (xMax <= xMin)
        {
            xMax = xMin + 1;
        }
        double plotW = Width - Left - Right, plotH = Height - Top - Bottom;
        double X(double x) => Left + ((x - xMin) / (xMax - xMin) * plotW);
        double Y(double y) => Top + plotH - (y / yMax * plotH);

        for (int i = 0; i <= 4; i++)
        {
            double v = yMax * i / 4, y = Y(v);
            svg.Append(CultureInfo.InvariantCulture, $"<line class=\"grid\" x1=\"{Left}\" x2=\"{Width - Right}\" y1=\"{y:F1}\" y2=\"{y:F1}\"/>");
            svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{Left - 6}\" y=\"{y + 4:F1}\" text-anchor=\"end\">{Number(v)}</text>");
            double xv = xMin + ((xMax - xMin) * i / 4);
            svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{X(xv):F1}\" y=\"{Height - Bottom + 16}\" text-anchor=\"middle\">{Number(xv)}</text>");
        }
        svg.Append(CultureInfo.InvariantCulture, $"<line class=\"axis\" x1=\"{Left}\" x2=\"{Left}\" y1=\"{Top}\" y2=\"{Top + plotH}\"/>");
        svg.Append(CultureInfo.InvariantCulture, $"<line class=\"axis\" x1=\"{Left}\" x2=\"{Width - Right}\" y1=\"{Top + plotH}\" y2=\"{Top + plotH}\"/>");
        svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{Left + (plotW / 2)}\" y=\"{Height - 6}\" text-anchor=\"middle\">{E(xLabel)}</text>");
        svg.Append(CultureInfo.InvariantCulture, $"<text x=\"12\" y=\"{Top + (plotH / 2)}\" text-anchor=\"middle\" transform=\"rotate(-90 12 {Top + (plotH / 2)})\">{E(yLabel)}</text>");
        if (verticalMarker is { } m)
        {
            svg.Append(CultureInfo.InvariantCulture, $"<line x1=\"{X(m):F1}\" x2=\"{X(m):F1}\" y1=\"{Top}\" y2=\"{Top + plotH}\" stroke=\"#555\" stroke-dasharray=\"4 3\"/>");
        }

        double legendX = Left + 8;
        for (int i = 0; i < drawn.Count; i++)
        {
            string color = Colors[i % Colors.Length];
            var points = string.Join(' ', drawn[i].Points.Select(p => string.Create(CultureInfo.InvariantCulture, $"{X(p.X):F1},{Y(p.Y):F1}")));
            svg.Append(CultureInfo.InvariantCulture, $"<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"1.8\" points=\"{points}\"><title>{E(drawn[i].Name)}</title></polyline>");
            svg.Append(CultureInfo.InvariantCulture, $"<rect x=\"{legendX:F0}\" y=\"8\" width=\"10\" height=\"10\" fill=\"{color}\"/><text x=\"{legendX + 14:F0}\" y=\"17\">{E(drawn[i].Name)}</text>");
            legendX += 24 + (drawn[i].Name.Length * 7);
        }
        svg.Append("</svg>\n");
        return svg.ToString();
    }

    private static double NiceCeiling(double value)
    {
        if (value <= 0)
        {
            return 1;
        }
        double magnitude = Math.Pow(10, Math.Floor(Math.Log10(value)));
        foreach (double step in new[] { 1, 2, 2.5, 5, 10 })
        {
            if (step * magnitude >= value)
            {
                return step * magnitude;
            }
        }
        return 10 * magnitude;
    }

    private static string Number(double v) => Math.Abs(v) >= 100 || v == Math.Floor(v)
        ? v.ToString("N0", CultureInfo.InvariantCulture)
        : v.ToString("0.##", CultureInfo.InvariantCulture);

    private static string E(string text) => WebUtility.HtmlEncode(text);
}
