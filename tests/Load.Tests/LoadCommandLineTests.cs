using Xunit;

namespace Broker.Load.Tests;

/// <summary>The load tool's command line (System.CommandLine): the flag names scripts use, the errors and the worker form.</summary>
public sealed class LoadCommandLineTests
{
    [Fact]
    public void Every_documented_flag_parses_to_its_setting()
    {
        var o = LoadOptionsParser.Parse(["pubsub", "--host", "127.0.0.1", "--port", "18831", "--clients", "40", "--keepalive", "30", "--mqtt", "5",
            "--duration", "2.5", "--rate", "100", "--max-pending", "7", "--connect-timeout", "3", "--qos", "1", "--payload", "32", "--mode", "fan-out",
            "--publishers", "2", "--subscribers", "9", "--max-inflight", "4", "--drain", "1", "--json-out", "r.json", "--report", "r.html",
            "--deadline", "60", "--no-progress", "--clean-start", "false"]);
        Assert.Equal(Scenario.PubSub, o.Scenario);
        Assert.False(o.CleanStart);
        Assert.Equal(18831, o.Port);
        Assert.Equal(40, o.Clients);
        Assert.Equal(30, o.KeepAliveSeconds);
        Assert.Equal(Wire.Mqtt5, o.ProtocolVersion);
        Assert.Equal(2.5, o.DurationSeconds);
        Assert.Equal(100, o.Rate);
        Assert.Equal(7, o.MaxPendingConnects);
        Assert.Equal(1, o.Qos);
        Assert.Equal(PubSubMode.FanOut, o.Mode);
        Assert.Equal(2, o.Publishers);
        Assert.Equal(9, o.Subscribers);
        Assert.Equal("r.json", o.JsonOut);
        Assert.Equal("r.html", o.ReportPath);
        Assert.Equal(60, o.DeadlineSeconds);
        Assert.False(o.Progress);

        var storm = LoadOptionsParser.Parse(["reconnect-storm", "--drop", "fin", "--workers", "2", "--clients-per-worker", "100",
            "--source-base", "127.0.0.5", "--silent-fraction", "0.2", "--silence-window", "2", "--broker-pid", "1"]);
        Assert.False(storm.AbortiveDrop);
        Assert.Equal(2, storm.Workers);
        Assert.Equal("127.0.0.5", storm.SourceBase.ToString());
    }

    [Fact]
    public void A_worker_takes_the_last_value_of_a_repeated_flag_and_its_hidden_flags()
    {
        var o = LoadOptionsParser.Parse(["worker", "hold", "--rate", "1000", "--clients", "10", "--worker-index", "1", "--client-offset", "5",
            "--client-count", "5", "--source-address", "127.0.0.3", "--run-id", "abc", "--rate", "500"]);
        Assert.True(o.IsWorker);
        Assert.Equal(500, o.Rate);
        Assert.Equal(1, o.WorkerIndex);
        Assert.Equal(5, o.ClientOffset);
        Assert.Equal("abc", o.RunId);
    }

    [Theory]
    [InlineData("unknown scenario 'holdx'", "holdx")]
    [InlineData("a scenario is required", "--port", "1")]
    [InlineData("--port must be an integer in [1, 65535], not '0'", "hold", "--port", "0")]
    [InlineData("'--bogus'", "hold", "--bogus")]
    [InlineData("--port", "hold", "--port")]
    [InlineData("only loopback targets", "hold", "--host", "10.0.0.1")]
    [InlineData("--mode must be fan-in, fan-out or pairs", "pubsub", "--mode", "star")]
    public void Errors_name_the_flag(string expected, params string[] args)
    {
        var error = Assert.Throws<OptionsException>(() => LoadOptionsParser.Parse(args));
        Assert.Contains(expected, error.Message);
    }

    [Fact]
    public void Help_lists_every_flag_scripts_use()
    {
        using var writer = new StringWriter();
        LoadOptionsParser.WriteHelp(writer);
        string help = writer.ToString();
        foreach (var flag in new[] { "--host", "--port", "--clients", "--keepalive", "--mqtt", "--duration", "--rate", "--max-pending", "--connect-timeout",
            "--silent-fraction", "--silence-window", "--broker-pid", "--qos", "--payload", "--mode", "--publishers", "--subscribers", "--max-inflight",
            "--drain", "--drop", "--workers", "--clients-per-worker", "--source-base", "--json-out", "--report", "--deadline", "--no-progress",
            "--clean-start" })
        {
            Assert.Contains(flag, help);
        }
        Assert.DoesNotContain("--worker-index", help);
        Assert.Contains("reconnect-storm", help);
    }
}
