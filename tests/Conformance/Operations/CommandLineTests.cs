using System.Net;
using System.Net.Sockets;
using Broker.Hosting;
using Conformance.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Xunit;

namespace Conformance.Operations;

/// <summary>The broker's command line, called in-process through its entry (<see cref="BrokerCommandLine"/>).</summary>
public sealed class CommandLineTests
{
    // Every run that could start a broker stays on loopback and ephemeral ports, with a quiet log.
    private static readonly string[] Local =
    [
        "--Broker:Tcp:Address=127.0.0.1", "--Broker:Metrics:Address=127.0.0.1", "--Broker:Metrics:Port=0", "--Logging:LogLevel:Default=Warning",
        // No store: the default ./data next to the binary would be shared by tests running in parallel.
        "--Broker:Persistence:Enabled=false",
    ];

    private static async Task<(int ExitCode, string Output, string Error)> RunAsync(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        int code = await new BrokerCommandLine(output, error).RunAsync(args, bound.Token);
        return (code, output.ToString(), error.ToString());
    }

    [Fact]
    public async Task Help_lists_the_options_and_every_configuration_key()
    {
        var (code, output, _) = await RunAsync("--help");
        Assert.Equal(0, code);
        foreach (var text in new[] { "--version", "--print-config", "--healthcheck", "-p, --port", "Broker:Tcp:Port", "Broker:KeepAlive:MaxSeconds",
            "Broker:Sys:IntervalSeconds", "Broker:Admin:Token", "Broker:Logging:Format", "Exit codes" })
        {
            Assert.Contains(text, output);
        }
        Assert.Equal(0, (await RunAsync("-h")).ExitCode);
    }

    [Fact]
    public async Task Help_with_a_configuration_override_still_prints_help_and_does_not_take_the_override_as_its_value()
    {
        var (code, output, error) = await RunAsync("--help", "--Broker:Tcp:Port=18990");
        Assert.Equal(0, code);
        Assert.Contains("Usage:", output);
        Assert.Equal(string.Empty, error);
    }

    [Fact]
    public async Task Version_prints_the_product_and_version()
    {
        var (code, output, _) = await RunAsync("--version");
        Assert.Equal(0, code);
        Assert.StartsWith("mqtt-broker ", output);
    }

    [Theory]
    [InlineData("--bogus")]
    [InlineData("-x")]
    [InlineData("stray")]
    [InlineData("--port")]
    [InlineData("--Broker:Tcp:Port")]
    public async Task Unknown_options_and_missing_values_are_refused_with_a_message_and_exit_code_2(string arg)
    {
        var (code, output, error) = await RunAsync(arg);
        Assert.Equal(2, code);
        Assert.Contains("error:", error);
        Assert.Contains("--help", error);
        Assert.Equal(string.Empty, output);
    }

    [Fact]
    public async Task Print_config_shows_the_effective_values_with_overrides_and_redacts_secrets()
    {
        var (code, output, _) = await RunAsync("--print-config", "-p", "18990", "--Broker:KeepAlive:MaxSeconds", "300",
            "--Broker:Admin:Token=super-secret-token-123", "--Logging:LogLevel:Default=Warning");
        Assert.Equal(0, code);
        var lines = output.Split('\n', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        Assert.Contains("Broker:Tcp:Port = 18990", lines);
        Assert.Contains("Broker:KeepAlive:MaxSeconds = 300", lines);
        Assert.Contains("Broker:KeepAlive:TickMilliseconds = 100", lines); // a default, not set anywhere
        Assert.Contains("Broker:Admin:Token = ***", lines);
        Assert.Contains("Logging:LogLevel:Default = Warning", lines);
        Assert.DoesNotContain("super-secret", output);
    }

    [Fact]
    public async Task Every_configuration_problem_is_reported_at_once_naming_its_key_with_exit_code_2()
    {
        var (code, _, error) = await RunAsync([.. Local, "--Broker:Tcp:Port=abc", "--Broker:KeepAlive:MaxSeconds=0", "--Broker:Metrics:Port", "70000",
            "--Broker:KeepAlive:Typo=1", "--Broker:Logging:Format=xml"]);
        Assert.Equal(2, code);
        var lines = error.Split('\n', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        Assert.All(lines, l => Assert.StartsWith("Invalid configuration: ", l));
        foreach (var key in new[] { "Broker:Tcp:Port", "Broker:KeepAlive:MaxSeconds", "Broker:Metrics:Port", "Broker:KeepAlive:Typo", "Broker:Logging:Format" })
        {
            Assert.Contains(lines, l => l.Contains(key, StringComparison.Ordinal));
        }
        Assert.Equal(5, lines.Length);
    }

    [Fact]
    public async Task A_busy_mqtt_port_is_named_with_its_key_and_exit_code_3()
    {
        using var holder = Hold(out int port);
        var (code, _, error) = await RunAsync([.. Local, "-p", port.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        Assert.Equal(3, code);
        Assert.Contains($"Broker:Tcp:Port {port} is already in use", error);
        Assert.DoesNotContain(" at ", error);
    }

    [Fact]
    public async Task A_busy_metrics_port_is_named_with_its_key_and_exit_code_3()
    {
        using var holder = Hold(out int port);
        var (code, _, error) = await RunAsync([.. Local, "-p", "0", $"--Broker:Metrics:Port={port}"]);
        Assert.Equal(3, code);
        Assert.Contains($"Broker:Metrics:Port {port} is already in use", error);
        Assert.DoesNotContain(" at ", error);
    }

    [Fact]
    public async Task Healthcheck_reads_the_configured_address_and_port_and_exits_0_when_healthy_else_1()
    {
        await using var broker = await BrokerInstance.StartAsync();
        int port = broker.Services.GetRequiredService<MetricsEndpoint>().LocalEndPoint!.Port;
        Assert.Equal(0, (await RunAsync("--healthcheck", "--Broker:Metrics:Address=127.0.0.1", $"--Broker:Metrics:Port={port}")).ExitCode);

        Hold(out int silent).Dispose(); // a port taken and released again: nobody listens there
        var (code, _, error) = await RunAsync("--healthcheck", "--Broker:Metrics:Address=127.0.0.1", $"--Broker:Metrics:Port={silent}");
        Assert.Equal(1, code);
        Assert.Contains("healthcheck:", error);
    }

    [Fact]
    public async Task Healthcheck_prefers_the_endpoint_file_the_running_broker_wrote()
    {
        string file = Path.Combine(Path.GetTempPath(), "mqtt-broker-endpoint-" + Guid.NewGuid().ToString("N"));
        try
        {
            await using var broker = await BrokerInstance.StartAsync(new Dictionary<string, string?> { ["Broker:Metrics:EndpointFile"] = file });
            int port = broker.Services.GetRequiredService<MetricsEndpoint>().LocalEndPoint!.Port;
            Assert.Equal($"http://127.0.0.1:{port}/healthz", File.ReadAllText(file).Trim());
            // The configured port (the default 9464) is not the broker's: only the file knows where it listens.
            Assert.Equal(0, (await RunAsync("--healthcheck", $"--Broker:Metrics:EndpointFile={file}")).ExitCode);
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Theory]
    [InlineData("0.0.0.0", 9464, "http://127.0.0.1:9464/healthz")]
    [InlineData("::", 9464, "http://[::1]:9464/healthz")]
    [InlineData("10.1.2.3", 9000, "http://10.1.2.3:9000/healthz")]
    public void Health_url_uses_the_bound_address_or_loopback_for_every_address(string address, int port, string url)
        => Assert.Equal(url, MetricsEndpoint.HealthUrl(address, port));

    [Fact]
    public async Task Run_with_a_cancelled_token_starts_and_stops_cleanly_with_exit_code_0()
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(2));
        int code = await new BrokerCommandLine(output, error).RunAsync([.. Local, "-p", "0"], stop.Token);
        Assert.Equal(0, code);
        Assert.Equal(string.Empty, error.ToString());
    }

    private static Socket Hold(out int port)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        socket.Listen();
        port = ((IPEndPoint)socket.LocalEndPoint!).Port;
        return socket;
    }
}
