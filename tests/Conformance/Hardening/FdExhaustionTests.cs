using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Broker.Protocol;
using Conformance.Infrastructure;
using Xunit;

namespace Conformance.Hardening;

/// <summary>
/// Issue #11, "resource exhaustion is back-pressure, not a crash": a broker process whose open-files limit is used up
/// by idle MQTT connections stays up, does not spin, still answers its HTTP probes, counts the condition, and accepts
/// again by itself once descriptors are freed. The broker runs as a child process with `ulimit -n` so that only its
/// own descriptors run out.
/// </summary>
public sealed class FdExhaustionTests
{
    // Enough for the runtime, the HTTP listener and a few hundred clients; small enough to exhaust in a second.
    private const int OpenFilesLimit = 512;

    [Fact]
    public async Task Out_of_descriptors_the_broker_pauses_accepting_without_spinning_answers_readyz_and_accepts_again_once_some_are_freed()
    {
        if (!OperatingSystem.IsLinux())
        {
            Assert.Skip("Needs Linux: the broker's descriptors are limited with ulimit and its CPU read from /proc.");
        }
        var cancel = TestContext.Current.CancellationToken;
        using var broker = ChildBroker.StartWithOpenFilesLimit(OpenFilesLimit, "--Broker:Sys:IntervalSeconds=0");
        var mqtt = await broker.EndPoint.WaitAsync(TimeSpan.FromSeconds(60), cancel);
        var http = await broker.HttpEndPoint.WaitAsync(TimeSpan.FromSeconds(60), cancel);
        // The first scrape compiles the exporter: done before the descriptors run out, so that the later ones are quick.
        Assert.Equal(HttpStatusCode.OK, (await GetAsync(http, "metrics", cancel)).Status);

        var clients = new List<(Socket Socket, Task<bool> ConnAck)>();
        static bool Accepted(Task<bool> connAck) => connAck.IsCompletedSuccessfully && connAck.GetAwaiter().GetResult();
        try
        {
            // More connections than the broker has descriptors for, each with a CONNECT (Keep Alive 0: they stay).
            for (int i = 0; i < OpenFilesLimit + 100; i++)
            {
                var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                await socket.ConnectAsync(mqtt, cancel);
                await socket.SendAsync(Connect($"fd-{i}"), SocketFlags.None, cancel);
                clients.Add((socket, ReadConnAckAsync(socket)));
            }

            // Exhausted: the listener reports it (the headroom check or EMFILE), and pauses. Every request from here on
            // opens a connection of its own, as a kubelet probe does: one opened before would hide a listener that
            // cannot accept.
            double acceptErrors = 0;
            var waited = Stopwatch.StartNew();
            using (var poll = new PeriodicTimer(TimeSpan.FromMilliseconds(200)))
            {
                while ((acceptErrors = Metric((await GetAsync(http, "metrics", cancel)).Body, "mqtt_accept_errors_total")) == 0)
                {
                    Assert.True(waited.Elapsed < TimeSpan.FromSeconds(20), "mqtt_accept_errors_total stayed 0 with more connections than descriptors");
                    await poll.WaitForNextTickAsync(cancel);
                }
            }
            int accepted = clients.Count(c => Accepted(c.ConnAck));
            Assert.InRange(accepted, 1, OpenFilesLimit - 1);

            // While exhausted it does not spin (CPU time over 3 s, a /readyz probe arriving meanwhile), and /readyz
            // answers (503 while accepting is paused) instead of timing out.
            var cpuBefore = broker.CpuSeconds();
            var window = Stopwatch.StartNew();
            var ready = GetAsync(http, "readyz", cancel);
            using (var timer = new PeriodicTimer(TimeSpan.FromSeconds(3)))
            {
                await timer.WaitForNextTickAsync(cancel);
            }
            double cpuPerSecond = (broker.CpuSeconds() - cpuBefore) / window.Elapsed.TotalSeconds;
            var (readyStatus, _) = await ready;
            double readyMs = window.Elapsed.TotalMilliseconds;
            Assert.True(cpuPerSecond < 0.5, $"the broker used {cpuPerSecond:F2} s of CPU per second while out of descriptors");
            Assert.True(readyStatus is HttpStatusCode.OK or HttpStatusCode.ServiceUnavailable, $"/readyz answered {readyStatus}");
            var (_, metrics) = await GetAsync(http, "metrics", cancel);
            Assert.True(Metric(metrics, "process_open_fds") > OpenFilesLimit - 64, "process_open_fds does not show the exhaustion");
            Assert.Equal(OpenFilesLimit, Metric(metrics, "process_max_fds"));

            // Descriptors free up: the connections still waiting in the backlog and 50 accepted ones leave.
            int closedAccepted = 0;
            foreach (var (socket, connAck) in clients)
            {
                if (!Accepted(connAck) || closedAccepted++ < 50)
                {
                    socket.Close(0);
                }
            }
            await using var fresh = await RawClient.ConnectAsync(mqtt);
            var connack = await fresh.HandshakeAsync(MqttProtocolVersion.V311, "after-exhaustion", 30);
            Assert.Equal(0, connack.ReasonCode);
            Assert.DoesNotContain("Out of memory", broker.Output, StringComparison.Ordinal);
            Assert.False(broker.HasExited);
            TestContext.Current.SendDiagnosticMessage(
                $"{accepted} connections accepted of {clients.Count}; accept errors {acceptErrors}; CPU {cpuPerSecond:F3} s/s while exhausted; /readyz {(int)readyStatus}");
        }
        finally
        {
            foreach (var (socket, _) in clients)
            {
                socket.Dispose();
            }
        }
    }

    /// <summary>A GET on a connection of its own, bounded to 20 s (the first scrape compiles the exporter; a timeout fails the test).</summary>
    private static async Task<(HttpStatusCode Status, string Body)> GetAsync(IPEndPoint http, string path, CancellationToken cancel)
    {
        using var client = new HttpClient { Timeout = TimeSpan.FromSeconds(20) };
        using var response = await client.GetAsync($"http://{http}/{path}", cancel);
        return (response.StatusCode, await response.Content.ReadAsStringAsync(cancel));
    }

    private static byte[] Connect(string clientId)
    {
        var writer = new System.Buffers.ArrayBufferWriter<byte>();
        MqttPacketWriter.Write(writer, new ConnectPacket { ProtocolVersion = MqttProtocolVersion.V311, ClientId = clientId, KeepAliveSeconds = 0, CleanStart = true },
            MqttProtocolVersion.V311);
        return writer.WrittenSpan.ToArray();
    }

    /// <summary>True once a CONNACK (its first byte) arrived; false when the connection closed first.</summary>
    private static async Task<bool> ReadConnAckAsync(Socket socket)
    {
        var first = new byte[4];
        try
        {
            return await socket.ReceiveAsync(first, SocketFlags.None) > 0 && first[0] == 0x20;
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            return false;
        }
    }

    private static double Metric(string text, string name)
    {
        double sum = 0;
        foreach (var line in text.Split('\n'))
        {
            if (line.StartsWith(name, StringComparison.Ordinal) && line.Length > name.Length && line[name.Length] is ' ' or '{')
            {
                sum += double.Parse(line[(line.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture);
            }
        }
        return sum;
    }
}
