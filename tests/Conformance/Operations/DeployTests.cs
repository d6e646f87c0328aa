using System.Diagnostics;
using System.Text.Json;
using Xunit;

namespace Conformance.Operations;

/// <summary>deploy/: the alert rules pass promtool (syntax and their own unit tests), the dashboard parses, the unit sets the descriptor limit.</summary>
public sealed class DeployTests
{
    [Fact]
    public async Task Alert_rules_pass_promtool_check_rules()
        => await PromtoolAsync("check", "rules", "alerts.yml");

    [Fact]
    public async Task Alert_rules_fire_in_promtools_unit_tests_and_not_on_a_healthy_broker()
        => await PromtoolAsync("test", "rules", "alerts.test.yml");

    [Fact]
    public void Dashboard_is_json_with_queries_on_a_templated_datasource()
    {
        using var dashboard = JsonDocument.Parse(File.ReadAllText(RepositoryFiles.PathOf("deploy/grafana/dashboards/mqtt-broker.json")));
        var panels = dashboard.RootElement.GetProperty("panels").EnumerateArray().Where(p => p.GetProperty("type").GetString() != "row").ToList();
        Assert.True(panels.Count >= 12, $"{panels.Count} panels");
        Assert.All(panels, p => Assert.NotEmpty(p.GetProperty("targets").EnumerateArray()));
        string text = dashboard.RootElement.GetRawText();
        foreach (var subject in new[] { "mqtt_clients_connected", "mqtt_disconnects_total", "mqtt_keepalive_expiries_total",
            "mqtt_timer_wheel_tick_lag_seconds_bucket", "mqtt_messages_dropped_total", "mqtt_messages_pending", "process_open_fds", "process_memory_usage_bytes" })
        {
            Assert.Contains(subject, text);
        }
    }

    [Fact]
    public void Systemd_unit_raises_the_descriptor_limit_and_does_not_restart_on_configuration_errors()
    {
        var lines = File.ReadAllLines(RepositoryFiles.PathOf("deploy/systemd/mqtt-broker.service")).Select(l => l.Trim()).ToList();
        Assert.Contains("LimitNOFILE=1048576", lines);
        Assert.Contains("RestartPreventExitStatus=2 3", lines);
        Assert.Contains(lines, l => l.StartsWith("ExecStart=", StringComparison.Ordinal) && l.EndsWith("Broker.dll", StringComparison.Ordinal));
        // ProtectSystem=strict makes the install directory read-only: the store lives in the service's state directory.
        string state = lines.Single(l => l.StartsWith("StateDirectory=", StringComparison.Ordinal))["StateDirectory=".Length..];
        Assert.Contains($"Environment=Broker__Persistence__Path=/var/lib/{state}", lines);
    }

    [Fact]
    public void Compose_file_mounts_files_that_exist()
    {
        string compose = File.ReadAllText(RepositoryFiles.PathOf("deploy/docker-compose.yml"));
        foreach (System.Text.RegularExpressions.Match m in System.Text.RegularExpressions.Regex.Matches(compose, @"- \./(\S+?):"))
        {
            string path = RepositoryFiles.PathOf(Path.Combine("deploy", m.Groups[1].Value));
            Assert.True(File.Exists(path) || Directory.Exists(path), $"docker-compose.yml mounts ./{m.Groups[1].Value}, which does not exist");
        }
    }

    private static async Task PromtoolAsync(params string[] args)
    {
        string? promtool = FindOnPath("promtool");
        if (promtool is null)
        {
            // CI installs it (.ci/run); elsewhere: apt-get install prometheus.
            Assert.SkipWhen(Environment.GetEnvironmentVariable("CI") != "true", "promtool not installed (Debian package prometheus)");
            Assert.Fail("promtool is not installed, but CI must run this test: .ci/run installs the prometheus package");
        }
        var start = new ProcessStartInfo(promtool!)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = RepositoryFiles.PathOf("deploy/prometheus"),
        };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }
        using var process = Process.Start(start)!;
        using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var output = process.StandardOutput.ReadToEndAsync(bound.Token);
        var error = process.StandardError.ReadToEndAsync(bound.Token);
        await process.WaitForExitAsync(bound.Token);
        Assert.True(process.ExitCode == 0, $"promtool {string.Join(' ', args)} exited {process.ExitCode}:\n{await output}\n{await error}");
    }

    private static string? FindOnPath(string name)
        => (Environment.GetEnvironmentVariable("PATH") ?? string.Empty).Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Select(dir => Path.Combine(dir, name)).FirstOrDefault(File.Exists);
}
