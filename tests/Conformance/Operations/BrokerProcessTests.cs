using System.Diagnostics;
using System.Text.Json;
using System.Text.RegularExpressions;
using Xunit;

namespace Conformance.Operations;

/// <summary>
/// The built broker binary as a child process: what an operator sees on the terminal and in the exit code. Every run
/// is bounded (a broker that starts is killed once the test has read what it needs).
/// </summary>
public sealed partial class BrokerProcessTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);

    private static readonly string[] Local =
    [
        "--Broker:Tcp:Address=127.0.0.1", "--Broker:Tcp:Port=0", "--Broker:Metrics:Address=127.0.0.1", "--Broker:Metrics:Port=0",
        // What the terminal shows, not what the store keeps: no store (the default ./data next to the binary would be
        // shared by parallel tests). The store's own start-up failures are tested in PersistenceRestartTests.
        "--Broker:Persistence:Enabled=false",
    ];

    [Fact]
    public async Task An_unknown_option_exits_2_with_a_message_instead_of_starting_a_broker()
    {
        var run = await RunToEndAsync("--bogus", "--Broker:Tcp:Port=0");
        Assert.Equal(2, run.ExitCode);
        Assert.Contains("'--bogus'", run.Error);
        Assert.DoesNotContain("MQTT listener", run.Output);
    }

    [Fact]
    public async Task Configuration_problems_exit_2_one_line_each_and_no_stack_trace()
    {
        var run = await RunToEndAsync([.. Local, "--Broker:KeepAlive:MaxSeconds=0", "--Broker:Tcp:Backlog=x"]);
        Assert.Equal(2, run.ExitCode);
        var lines = run.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.Equal(2, lines.Length);
        Assert.Contains(lines, l => l.StartsWith("Invalid configuration: Broker:KeepAlive:MaxSeconds", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("Invalid configuration: Broker:Tcp:Backlog", StringComparison.Ordinal));
        Assert.DoesNotMatch(@"\n\s+at ", run.Output + run.Error);
    }

    [Fact]
    public async Task Default_log_is_one_line_per_event_with_a_utc_timestamp()
    {
        var lines = await StartAndReadUntilListeningAsync(Local);
        Assert.All(lines, l => Assert.Matches(TimestampedLine(), l));
        Assert.Contains(lines, l => l.Contains("MQTT broker ", StringComparison.Ordinal) && l.Contains("[31]", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Contains("Limits: keep-alive max", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Json_log_format_writes_one_json_object_per_line()
    {
        var lines = await StartAndReadUntilListeningAsync([.. Local, "--Broker:Logging:Format=json"]);
        foreach (var line in lines)
        {
            using var json = JsonDocument.Parse(line);
            var root = json.RootElement;
            Assert.Matches(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", root.GetProperty("Timestamp").GetString());
            Assert.True(root.TryGetProperty("EventId", out _));
            Assert.True(root.TryGetProperty("LogLevel", out _));
            Assert.True(root.TryGetProperty("Category", out _));
            Assert.True(root.TryGetProperty("Message", out _));
        }
        Assert.Contains(lines, l => l.Contains("MQTT listener on", StringComparison.Ordinal));
    }

    [GeneratedRegex(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (trce|dbug|info|warn|fail|crit): \S+\[\d+\] \S")]
    private static partial Regex TimestampedLine();

    private sealed record Run(int ExitCode, string Output, string Error);

    private static ProcessStartInfo StartInfo(IEnumerable<string> args)
    {
        string dll = typeof(Broker.Hosting.BrokerHost).Assembly.Location;
        var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host : "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = Path.GetDirectoryName(dll)!,
        };
        start.ArgumentList.Add(dll);
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }
        return start;
    }

    private static async Task<Run> RunToEndAsync(params string[] args)
    {
        using var process = Process.Start(StartInfo(args))!;
        using var bound = new CancellationTokenSource(Bound);
        var output = process.StandardOutput.ReadToEndAsync(bound.Token);
        var error = process.StandardError.ReadToEndAsync(bound.Token);
        try
        {
            await process.WaitForExitAsync(bound.Token);
        }
        finally
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
            }
        }
        return new Run(process.ExitCode, await output, await error);
    }

    /// <summary>Starts a broker, returns its standard output lines up to the listener line, then kills it.</summary>
    private static async Task<List<string>> StartAndReadUntilListeningAsync(string[] args)
    {
        using var process = Process.Start(StartInfo(args))!;
        using var bound = new CancellationTokenSource(Bound);
        var lines = new List<string>();
        try
        {
            while (await process.StandardOutput.ReadLineAsync(bound.Token) is { } line)
            {
                lines.Add(line);
                if (line.Contains("MQTT listener on", StringComparison.Ordinal))
                {
                    return lines;
                }
            }
            string error = await process.StandardError.ReadToEndAsync(bound.Token);
            throw new Xunit.Sdk.XunitException($"the broker ended before listening:\n{string.Join('\n', lines)}\n{error}");
        }
        finally
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
                await process.WaitForExitAsync(CancellationToken.None);
            }
        }
    }
}
