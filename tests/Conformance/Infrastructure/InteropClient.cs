using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Threading.Channels;
using Xunit;

namespace Conformance.Infrastructure;

/// <summary>The client libraries the interoperability tests drive through a script.</summary>
public enum InteropLibrary
{
    /// <summary>MQTT.js (npm package <c>mqtt</c> 5.x) under Node, from tests/Conformance/Interop/mqttjs.</summary>
    MqttJs,
    /// <summary>paho-mqtt for Python (Debian's python3-paho-mqtt) under /usr/bin/python3.</summary>
    Paho,
}

/// <summary>A message a script client received, as it reported it.</summary>
internal sealed record InteropMessage(string Client, string Topic, byte[] Payload, int QoS, bool Retain,
    string? ResponseTopic, byte[]? CorrelationData, IReadOnlyList<(string Key, string Value)> UserProperties, uint? MessageExpiry);

/// <summary>
/// One client-library process (MQTT.js or paho-mqtt) that runs commands sent as JSON lines on its stdin and reports
/// acknowledgements, received messages and closed connections as JSON lines on stdout; the scripts are
/// tests/Conformance/Interop/*/client.*. One process can hold several named connections. Every wait is bounded;
/// disposing kills the process (after SIGCONT, should the test have frozen it).
/// </summary>
internal sealed class InteropClient : IAsyncDisposable
{
    private static readonly TimeSpan CommandTimeout = TimeSpan.FromSeconds(15);
    private const int SigKill = 9;
    private const int SigCont = 18;
    private const int SigStop = 19;

    private readonly Process _process;
    private readonly Channel<JsonObject> _acks = Channel.CreateUnbounded<JsonObject>();
    private readonly Channel<InteropMessage> _messages = Channel.CreateUnbounded<InteropMessage>();
    private readonly Channel<string> _closed = Channel.CreateUnbounded<string>();
    private readonly System.Text.StringBuilder _stderr = new();
    private readonly Task _reader;
    private int _seq;

    private InteropClient(Process process, InteropLibrary library)
    {
        _process = process;
        Library = library;
        _process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                lock (_stderr)
                {
                    _stderr.AppendLine(e.Data);
                }
            }
        };
        _process.BeginErrorReadLine();
        _reader = Task.Run(ReadEventsAsync);
    }

    public InteropLibrary Library { get; }

    public int ProcessId => _process.Id;

    /// <summary>Starts the library's script for <paramref name="protocolLevel"/> (4 or 5) against <paramref name="broker"/>;
    /// skips the test (fails it in CI) when the library is not installed.</summary>
    public static InteropClient Start(InteropLibrary library, BrokerInstance broker, int protocolLevel)
    {
        var (file, args) = InteropTools.Command(library);
        var info = new ProcessStartInfo(file)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in args)
        {
            info.ArgumentList.Add(a);
        }
        info.ArgumentList.Add(broker.Port.ToString());
        info.ArgumentList.Add(protocolLevel.ToString());
        var process = Process.Start(info) ?? throw new InvalidOperationException("could not start " + file);
        return new InteropClient(process, library);
    }

    public async Task<bool> ConnectAsync(string client, string clientId, bool clean = true, int keepAlive = 60, uint? sessionExpiry = null,
        (string Topic, byte[] Payload, int QoS, bool Retain)? will = null)
    {
        var command = new JsonObject { ["client"] = client, ["clientId"] = clientId, ["clean"] = clean, ["keepalive"] = keepAlive };
        if (sessionExpiry is { } e)
        {
            command["sessionExpiry"] = e;
        }
        if (will is { } w)
        {
            command["will"] = new JsonObject { ["topic"] = w.Topic, ["payload"] = Convert.ToBase64String(w.Payload), ["qos"] = w.QoS, ["retain"] = w.Retain };
        }
        var ack = await RunAsync("connect", command);
        return ack["sessionPresent"]?.GetValue<bool>() ?? false;
    }

    public Task SubscribeAsync(string client, string filter, int qos)
        => RunAsync("subscribe", new JsonObject { ["client"] = client, ["filter"] = filter, ["qos"] = qos });

    /// <summary>Completes when the library reports the exchange for the QoS complete (PUBACK, PUBCOMP, or sent for QoS 0).</summary>
    public Task PublishAsync(string client, string topic, byte[] payload, int qos, bool retain = false, string? responseTopic = null,
        byte[]? correlationData = null, IEnumerable<(string Key, string Value)>? userProperties = null, uint? messageExpiry = null)
    {
        var command = new JsonObject
        {
            ["client"] = client, ["topic"] = topic, ["payload"] = Convert.ToBase64String(payload), ["qos"] = qos, ["retain"] = retain,
        };
        if (responseTopic is not null || correlationData is not null || userProperties is not null || messageExpiry is not null)
        {
            var props = new JsonObject();
            if (responseTopic is not null) props["responseTopic"] = responseTopic;
            if (correlationData is not null) props["correlationData"] = Convert.ToBase64String(correlationData);
            if (messageExpiry is { } m) props["messageExpiry"] = m;
            if (userProperties is not null)
            {
                props["userProperties"] = new JsonArray([.. userProperties.Select(p => (JsonNode)new JsonArray(p.Key, p.Value))]);
            }
            command["properties"] = props;
        }
        return RunAsync("publish", command);
    }

    public Task DisconnectAsync(string client) => RunAsync("disconnect", new JsonObject { ["client"] = client });

    public async Task<InteropMessage> NextMessageAsync(TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? CommandTimeout);
        try
        {
            return await _messages.Reader.ReadAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"{Library}: no message within {timeout ?? CommandTimeout}{Diagnostics()}");
        }
    }

    /// <summary>Waits for the library to report that <paramref name="client"/>'s connection closed.</summary>
    public async Task WaitForClosedAsync(string client, TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            while (await _closed.Reader.ReadAsync(cts.Token) != client)
            {
            }
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"{Library}: connection '{client}' still open after {timeout}{Diagnostics()}");
        }
    }

    /// <summary>Whether the library reported any connection closed so far.</summary>
    public bool AnyClosed => _closed.Reader.TryPeek(out _);

    /// <summary>SIGSTOP: the whole client process stops, sockets open and silent, as a hung device.</summary>
    public void Freeze() => Signal(SigStop);

    /// <summary>SIGKILL: the process dies without a DISCONNECT; the kernel closes its sockets.</summary>
    public async Task KillAsync()
    {
        Signal(SigKill);
        using var cts = new CancellationTokenSource(CommandTimeout);
        await _process.WaitForExitAsync(cts.Token);
    }

    private void Signal(int signal)
    {
        if (kill(_process.Id, signal) != 0)
        {
            throw new InvalidOperationException($"kill({_process.Id}, {signal}) failed: errno {Marshal.GetLastPInvokeError()}");
        }
    }

    private async Task<JsonObject> RunAsync(string op, JsonObject command)
    {
        int seq = ++_seq;
        command["seq"] = seq;
        command["op"] = op;
        await _process.StandardInput.WriteLineAsync(command.ToJsonString());
        await _process.StandardInput.FlushAsync();
        using var cts = new CancellationTokenSource(CommandTimeout);
        try
        {
            while (true)
            {
                var ack = await _acks.Reader.ReadAsync(cts.Token);
                if (ack["seq"]?.GetValue<int>() != seq)
                {
                    continue;
                }
                if (ack["event"]?.GetValue<string>() == "error")
                {
                    throw new Xunit.Sdk.XunitException($"{Library} {op}: {ack["message"]}{Diagnostics()}");
                }
                return ack;
            }
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"{Library} {op} not done within {CommandTimeout}{Diagnostics()}");
        }
        catch (ChannelClosedException)
        {
            throw new Xunit.Sdk.XunitException($"{Library} exited during {op}{Diagnostics()}");
        }
    }

    private async Task ReadEventsAsync()
    {
        try
        {
            string? line;
            while ((line = await _process.StandardOutput.ReadLineAsync()) is not null)
            {
                if (JsonNode.Parse(line) is not JsonObject e)
                {
                    continue;
                }
                switch (e["event"]?.GetValue<string>())
                {
                    case "ok" or "error":
                        _acks.Writer.TryWrite(e);
                        break;
                    case "closed":
                        _closed.Writer.TryWrite(e["client"]!.GetValue<string>());
                        break;
                    case "message":
                        _messages.Writer.TryWrite(ParseMessage(e));
                        break;
                }
            }
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException or IOException)
        {
            lock (_stderr)
            {
                _stderr.AppendLine("unreadable output: " + ex.Message);
            }
        }
        finally
        {
            _acks.Writer.TryComplete();
            _messages.Writer.TryComplete();
        }
    }

    private static InteropMessage ParseMessage(JsonObject e)
    {
        var props = e["properties"] as JsonObject;
        var user = new List<(string, string)>();
        if (props?["userProperties"] is JsonArray pairs)
        {
            foreach (var pair in pairs.OfType<JsonArray>())
            {
                user.Add((pair[0]!.GetValue<string>(), pair[1]!.GetValue<string>()));
            }
        }
        return new InteropMessage(
            e["client"]!.GetValue<string>(),
            e["topic"]!.GetValue<string>(),
            Convert.FromBase64String(e["payload"]?.GetValue<string>() ?? ""),
            e["qos"]!.GetValue<int>(),
            e["retain"]?.GetValue<bool>() ?? false,
            props?["responseTopic"]?.GetValue<string>(),
            props?["correlationData"]?.GetValue<string>() is { } c ? Convert.FromBase64String(c) : null,
            user,
            props?["messageExpiry"]?.GetValue<uint>());
    }

    private string Diagnostics()
    {
        lock (_stderr)
        {
            return _stderr.Length == 0 ? "" : $"; stderr: {_stderr}";
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            // A frozen process cannot act on SIGKILL any later than now, but SIGCONT first keeps no stopped zombie around.
            _ = kill(_process.Id, SigCont);
            _process.Kill(entireProcessTree: true);
        }
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        try
        {
            await _process.WaitForExitAsync(cts.Token);
            await _reader.WaitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
        }
        _process.Dispose();
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int kill(int pid, int signal);
}

/// <summary>
/// Finds the interoperability clients. Outside CI a missing client skips the test with a message saying how to
/// install it; in CI (CI=true, or BROKER_INTEROP_REQUIRED=1 as .ci/run sets) it fails the test, so an interop
/// test can never pass by not running.
/// </summary>
internal static class InteropTools
{
    private static readonly Lazy<string?> PahoProblem = new(() => Probe("/usr/bin/python3", "-c", "import paho.mqtt.client"));

    public static bool Required =>
        string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase)
        || Environment.GetEnvironmentVariable("BROKER_INTEROP_REQUIRED") == "1";

    /// <summary>tests/Conformance/Interop in the source tree (the scripts and node_modules are not copied to the output).</summary>
    public static string InteropDirectory
    {
        get
        {
            var dir = new DirectoryInfo(AppContext.BaseDirectory);
            while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Broker.sln")))
            {
                dir = dir.Parent;
            }
            return dir is null ? throw new InvalidOperationException("Broker.sln not found above " + AppContext.BaseDirectory)
                : Path.Combine(dir.FullName, "tests", "Conformance", "Interop");
        }
    }

    public static (string File, string[] Args) Command(InteropLibrary library)
    {
        switch (library)
        {
            case InteropLibrary.MqttJs:
            {
                string node = Find("node") ?? Missing("node (nodejs) is not installed");
                string dir = Path.Combine(InteropDirectory, "mqttjs");
                if (!File.Exists(Path.Combine(dir, "node_modules", "mqtt", "package.json")))
                {
                    Missing($"MQTT.js is not installed: run 'npm ci' in {dir}");
                }
                return (node, [Path.Combine(dir, "client.js")]);
            }
            case InteropLibrary.Paho:
            {
                if (PahoProblem.Value is { } problem)
                {
                    Missing("paho-mqtt for /usr/bin/python3 is not installed (apt-get install python3-paho-mqtt): " + problem);
                }
                return ("/usr/bin/python3", [Path.Combine(InteropDirectory, "paho", "client.py")]);
            }
            default:
                throw new ArgumentOutOfRangeException(nameof(library));
        }
    }

    /// <summary>The full path of <paramref name="name"/> on PATH, or null.</summary>
    public static string? Find(string name)
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator))
        {
            var path = Path.Combine(dir, name);
            if (dir.Length > 0 && File.Exists(path))
            {
                return path;
            }
        }
        return null;
    }

    /// <summary>Fails (CI) or skips (elsewhere) the current test; never returns.</summary>
    public static string Missing(string why)
    {
        if (Required)
        {
            Assert.Fail(why + " (interoperability clients are required in CI; .ci/run installs them)");
        }
        Assert.Skip(why);
        return why;
    }

    /// <summary>Runs a command to see whether a tool works; null when it exits 0, else what it said.</summary>
    private static string? Probe(string file, params string[] args)
    {
        if (!File.Exists(file))
        {
            return file + " not found";
        }
        var info = new ProcessStartInfo(file) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var a in args)
        {
            info.ArgumentList.Add(a);
        }
        using var process = Process.Start(info)!;
        string error = process.StandardError.ReadToEnd();
        if (!process.WaitForExit(10_000))
        {
            process.Kill();
            return "timed out";
        }
        return process.ExitCode == 0 ? null : error.Trim();
    }
}
