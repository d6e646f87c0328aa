using System.Diagnostics;
using Conformance.Infrastructure;
using MQTTnet;
using MQTTnet.Protocol;
using Xunit;
using static Conformance.Infrastructure.TestClients;

namespace Conformance;

/// <summary>
/// Interoperability with clients nobody here wrote: mosquitto_sub / mosquitto_pub (Debian mosquitto-clients)
/// against the in-process broker, both protocol versions and every QoS.
/// </summary>
public sealed class InteropTests
{
    private static readonly TimeSpan ProcessTimeout = TimeSpan.FromSeconds(10);

    /// <summary>The tool's path; skips the test without it, or fails it in CI (see <see cref="InteropTools"/>).</summary>
    private static string RequireTool(string name)
        => InteropTools.Find(name) ?? InteropTools.Missing($"{name} not found: apt-get install mosquitto-clients");

    /// <summary>
    /// Starts the tool with line-buffered stdout (through stdbuf when present): into a pipe, stdio would hold the
    /// SUBACK line the test waits for until the process exits.
    /// </summary>
    private static Process Start(string file, params string[] args)
    {
        const string stdbuf = "/usr/bin/stdbuf";
        bool lineBuffered = File.Exists(stdbuf);
        var info = new ProcessStartInfo(lineBuffered ? stdbuf : file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        if (lineBuffered)
        {
            info.ArgumentList.Add("-oL");
            info.ArgumentList.Add(file);
        }
        foreach (var a in args)
        {
            info.ArgumentList.Add(a);
        }
        return Process.Start(info) ?? throw new InvalidOperationException("could not start " + file);
    }

    private static async Task<(int ExitCode, string Output)> WaitAsync(Process process, Task<string>? stdout = null)
    {
        stdout ??= process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(ProcessTimeout);
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{process.StartInfo.FileName} still running after {ProcessTimeout}");
        }
        return (process.ExitCode, await stdout + await stderr);
    }

    /// <summary>Reads stdout lines until one contains <paramref name="marker"/> (bounded); returns all output read so far.</summary>
    private static async Task WaitForLineAsync(Process process, string marker, System.Text.StringBuilder seen)
    {
        using var cts = new CancellationTokenSource(ProcessTimeout);
        while (true)
        {
            string? line;
            try
            {
                line = await process.StandardOutput.ReadLineAsync(cts.Token);
            }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
                throw new TimeoutException($"no '{marker}' from {process.StartInfo.FileName}; output: {seen}");
            }
            if (line is null)
            {
                throw new InvalidOperationException($"{process.StartInfo.FileName} exited before '{marker}': {seen}{await process.StandardError.ReadToEndAsync()}");
            }
            seen.AppendLine(line);
            if (line.Contains(marker, StringComparison.Ordinal))
            {
                return;
            }
        }
    }

    [Theory]
    [InlineData("mqttv311", 0)]
    [InlineData("mqttv311", 1)]
    [InlineData("mqttv311", 2)]
    [InlineData("mqttv5", 0)]
    [InlineData("mqttv5", 1)]
    [InlineData("mqttv5", 2)]
    public async Task Interop_mosquitto_pub_to_mosquitto_sub(string protocol, int qos)
    {
        string sub = RequireTool("mosquitto_sub");
        string pub = RequireTool("mosquitto_pub");
        await using var broker = await BrokerInstance.StartAsync();
        string port = broker.Port.ToString();
        using var subscriber = Start(sub, "-h", "127.0.0.1", "-p", port, "-V", protocol, "-q", qos.ToString(),
            "-t", "interop/#", "-C", "1", "-v", "-d", "-i", "mosq-sub");
        var seen = new System.Text.StringBuilder();
        await WaitForLineAsync(subscriber, "SUBACK", seen);

        using var publisher = Start(pub, "-h", "127.0.0.1", "-p", port, "-V", protocol, "-q", qos.ToString(),
            "-t", "interop/t", "-m", $"hello-{protocol}-{qos}", "-i", "mosq-pub");
        var (pubExit, pubOutput) = await WaitAsync(publisher);
        Assert.True(pubExit == 0, pubOutput);

        var (subExit, subOutput) = await WaitAsync(subscriber, subscriber.StandardOutput.ReadToEndAsync());
        Assert.True(subExit == 0, seen + subOutput);
        Assert.Contains($"interop/t hello-{protocol}-{qos}", subOutput);
    }

    [Theory]
    [InlineData("mqttv311")]
    [InlineData("mqttv5")]
    public async Task Interop_mosquitto_pub_retained_to_MQTTnet_and_MQTTnet_to_mosquitto_sub(string protocol)
    {
        string sub = RequireTool("mosquitto_sub");
        string pub = RequireTool("mosquitto_pub");
        await using var broker = await BrokerInstance.StartAsync();
        string port = broker.Port.ToString();

        using var publisher = Start(pub, "-h", "127.0.0.1", "-p", port, "-V", protocol, "-q", "1", "-r",
            "-t", "interop/retained", "-m", "from-mosquitto");
        var (pubExit, pubOutput) = await WaitAsync(publisher);
        Assert.True(pubExit == 0, pubOutput);
        var (client, messages) = await SubscriberAsync(broker, protocol == "mqttv5" ? V500 : V311, "interop/retained");
        using var _ = client;
        var retained = await messages.NextAsync();
        Assert.Equal("from-mosquitto", retained.ConvertPayloadToString());
        Assert.True(retained.Retain);

        // mosquitto_sub receives the retained message and then a live one from MQTTnet (-C 2).
        using var subscriber = Start(sub, "-h", "127.0.0.1", "-p", port, "-V", protocol, "-q", "2",
            "-t", "interop/retained", "-C", "2", "-d");
        var seen = new System.Text.StringBuilder();
        await WaitForLineAsync(subscriber, "SUBACK", seen);
        await client.PublishAsync("interop/retained", "from-mqttnet", MqttQualityOfServiceLevel.ExactlyOnce);
        var (subExit, subOutput) = await WaitAsync(subscriber, subscriber.StandardOutput.ReadToEndAsync());
        string all = seen + subOutput;
        Assert.True(subExit == 0, all);
        Assert.Contains("from-mosquitto", all);
        Assert.Contains("from-mqttnet", all);
    }
}
