using System.Xml.Linq;
using Xunit;

namespace Broker.Load.Tests;

/// <summary>The HTML report is one self-contained page whose charts are well-formed SVG.</summary>
public sealed class HtmlReportTests
{
    [Fact]
    public void Report_has_the_summary_and_four_well_formed_charts_and_loads_nothing_from_elsewhere()
    {
        var close = new LatencyHistogram();
        foreach (long micros in new long[] { 3_000_000, 3_050_000, 3_100_000 })
        {
            close.Record(micros);
        }
        var timeline = Enumerable.Range(0, 5).Select(s => new TimelinePoint(s, 10 * s, 10 * s, 0, 0, 0, 100 * s, 90 * s, 5, 500, 900, 1200)).ToList();
        var result = new WorkerResult(new Dictionary<string, long>(), new Dictionary<string, double>(),
            new Dictionary<string, HistogramData> { [HistogramNames.SilentClose] = close.ToData() }, timeline);
        var options = LoadOptionsParser.Parse(["silent", "--clients", "50", "--keepalive", "2"]);

        string html = HtmlReport.Build(options, result, "silent: 50 clients <&>\n  connect: 50 ok");

        Assert.StartsWith("<!DOCTYPE html>", html);
        Assert.Contains("silent: 50 clients &lt;&amp;&gt;", html);
        Assert.DoesNotContain("<script", html);
        Assert.DoesNotContain("src=", html);
        Assert.DoesNotContain("href=", html);
        var charts = System.Text.RegularExpressions.Regex.Matches(html, "<svg.*?</svg>", System.Text.RegularExpressions.RegexOptions.Singleline);
        Assert.Equal(4, charts.Count);
        foreach (System.Text.RegularExpressions.Match chart in charts)
        {
            var svg = XElement.Parse(chart.Value);
            Assert.Equal("svg", svg.Name.LocalName);
        }
        Assert.Contains("polyline", charts[2].Value); // the expiry timing curve
    }

    [Fact]
    public void A_chart_without_data_says_so()
        => Assert.Contains("no data", HtmlReport.LineChart("ms", "s", [new HtmlReport.Series("p99", [])]));

    [Fact]
    public void Summary_table_keeps_every_figure_of_the_text_summary()
    {
        var table = SummaryTable.Build("hold: 10 clients\n  WARNING: the run hit its deadline\n  connect: 10 ok\n  ping: 5 sent\n");
        Assert.Equal(3, table.Rows.Count);
        using var writer = new StringWriter();
        SummaryTable.Write(writer, "hold: 10 clients\n  connect: 10 ok, 0 failed\n", interactive: false);
        string text = writer.ToString();
        Assert.Contains("hold: 10 clients", text);
        Assert.Contains("10 ok, 0 failed", text);
        Assert.DoesNotContain("\u001b[", text); // no ANSI escapes into a log file
    }
}
