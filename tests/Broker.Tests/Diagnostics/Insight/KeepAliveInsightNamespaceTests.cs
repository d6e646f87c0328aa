using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text.Json;
using Broker.Hosting;
using Broker.Tests.Transport;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Xunit;

namespace Broker.Tests.Diagnostics.Insight;

/// <summary>
/// End to end over a real network path: MQTT 5.0 clients in a network namespace connect to the in-process
/// broker, go idle, lose their path silently (the namespace's link goes down, no FIN, no RST), and reconnect
/// with the same client ids once it is back, as a device behind an evicting NAT does. The broker must see the
/// takeovers as half-open deaths at the idle age of the cut, name it in the per-network view, the advice and
/// the histogram, and then tell a new 5.0 client from that network a Server Keep Alive below it.
/// </summary>
public sealed class KeepAliveInsightNamespaceTests
{
    private const int Clients = 6;
    private const ushort KeepAlive = 60;
    private static readonly TimeSpan Idle = TimeSpan.FromSeconds(3);
    // Generous: starting python in the namespace took over 5 s on a loaded two-core machine.
    private static readonly TimeSpan StepTimeout = TimeSpan.FromSeconds(20);

    // Connects N MQTT 5.0 clients (ids <prefix>-<i>), then obeys commands on stdin: "reconnect" connects the same
    // ids again (the old sockets stay open, as on a device that never learned its path died), "probe" connects
    // one more client and reports the Server Keep Alive of its CONNACK. Every socket operation is bounded.
    private const string Client = """
        import socket, sys
        host, port, count, keepalive, prefix = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]

        def vbi(n):
            out = bytearray()
            while True:
                b, n = n % 128, n // 128
                out.append(b | (0x80 if n else 0))
                if not n:
                    return bytes(out)

        def read_exact(s, n):
            data = b''
            while len(data) < n:
                chunk = s.recv(n - len(data))
                if not chunk:
                    raise EOFError('closed by the broker')
                data += chunk
            return data

        def read_vbi(data, i):
            value, shift = 0, 0
            while True:
                b = data[i]; i += 1
                value |= (b & 0x7f) << shift
                if not b & 0x80:
                    return value, i
                shift += 7

        SIZES = {1: (0x01, 0x17, 0x19, 0x24, 0x25, 0x28, 0x29, 0x2A), 2: (0x13, 0x21, 0x22, 0x23), 4: (0x02, 0x11, 0x18, 0x27)}

        def server_keep_alive(props):
            i = 0
            while i < len(props):
                pid = props[i]; i += 1
                if pid == 0x13:
                    return int.from_bytes(props[i:i + 2], 'big')
                size = next((n for n, ids in SIZES.items() if pid in ids), None)
                if size is not None:
                    i += size
                elif pid == 0x0B:
                    _, i = read_vbi(props, i)
                elif pid == 0x26:
                    for _ in range(2):
                        i += 2 + int.from_bytes(props[i:i + 2], 'big')
                else:
                    i += 2 + int.from_bytes(props[i:i + 2], 'big')
            return None

        def send_connect(client_id):
            s = socket.create_connection((host, port), timeout=10)
            cid = client_id.encode()
            body = b'\x00\x04MQTT\x05\x02' + keepalive.to_bytes(2, 'big') + b'\x00' + len(cid).to_bytes(2, 'big') + cid
            s.sendall(b'\x10' + vbi(len(body)) + body)
            return s

        def read_connack(s):
            first = read_exact(s, 1)[0]
            length, shift = 0, 0
            while True:
                b = read_exact(s, 1)[0]
                length |= (b & 0x7f) << shift
                if not b & 0x80:
                    break
                shift += 7
            ack = read_exact(s, length)
            if first != 0x20 or ack[1] != 0:
                raise ValueError('no successful CONNACK: %r' % ack)
            plen, i = read_vbi(ack, 2)
            return server_keep_alive(ack[i:i + plen])

        def connect_all():
            # Every CONNECT goes out before the first CONNACK is awaited: the broker sees the whole round at once.
            sockets = [send_connect('%s-%d' % (prefix, i)) for i in range(count)]
            for s in sockets:
                read_connack(s)
            return sockets

        held = connect_all()
        print('connected', flush=True)
        for line in sys.stdin:
            command = line.strip()
            if command == 'reconnect':
                held += connect_all()
                print('reconnected', flush=True)
            elif command == 'probe':
                s = send_connect(prefix + '-probe')
                held.append(s)
                print('server-keep-alive %s' % read_connack(s), flush=True)
        """;

    [Fact]
    public async Task Clients_whose_path_dies_at_an_idle_age_are_named_in_the_view_the_advice_and_the_histogram_and_5_0_clients_adapt()
    {
        var ct = TestContext.Current.CancellationToken;
        await using VethNamespace ns = await VethNamespace.CreateOrSkipAsync();
        using IHost host = await StartBrokerAsync(ns.HostAddress, ct);
        int mqttPort = host.Services.GetRequiredService<BrokerServer>().LocalEndPoint.Port;
        IPEndPoint metrics = host.Services.GetRequiredService<MetricsEndpoint>().LocalEndPoint!;
        using var http = new HttpClient { BaseAddress = new Uri($"http://{metrics}"), Timeout = StepTimeout };

        using Process client = ns.StartInNamespace("python3", "-c", Client, ns.HostAddress,
            mqttPort.ToString(CultureInfo.InvariantCulture), Clients.ToString(CultureInfo.InvariantCulture),
            KeepAlive.ToString(CultureInfo.InvariantCulture), "insight");
        try
        {
            Assert.Equal("connected", await ReadLineAsync(client, ct));

            // Real time on purpose: the idle age is measured by the broker on a real path, not on a fake clock.
            await Task.Delay(Idle, TimeProvider.System, ct);
            await ns.CutLinkAsync();
            await ns.RestoreLinkAsync();
            await client.StandardInput.WriteLineAsync("reconnect".AsMemory(), ct);
            Assert.Equal("reconnected", await ReadLineAsync(client, ct));

            string networkName = string.Join('.', ns.NamespaceAddress.Split('.')[..3]) + ".0/24";
            using var view = JsonDocument.Parse(await http.GetStringAsync(KeepAliveInsightHosting.NetworksRoute, ct));
            JsonElement network = view.RootElement.GetProperty("networks").EnumerateArray()
                .Single(n => n.GetProperty("network").GetString() == networkName);
            Assert.Equal(2 * Clients, network.GetProperty("connections").GetInt64());
            Assert.Equal(Clients, network.GetProperty("deathsByCause").GetProperty("takeover").GetInt64());

            JsonElement cluster = network.GetProperty("cluster");
            double from = cluster.GetProperty("fromSeconds").GetDouble();
            // Never below the idle time the test waited; above it by the cut, the restore and the reconnect,
            // which take a few hundred milliseconds on a loaded machine.
            Assert.InRange(from, Idle.TotalSeconds, Idle.TotalSeconds + 2.5);
            Assert.InRange(cluster.GetProperty("toSeconds").GetDouble(), from, from + 1);
            Assert.Equal(Clients, cluster.GetProperty("deaths").GetInt32());
            Assert.Equal(KeepAlive, cluster.GetProperty("keepAlive").GetUInt16());
            Assert.Equal(from, network.GetProperty("learnedTimeoutSeconds").GetDouble());
            string advice = network.GetProperty("advice").GetString()!;
            Assert.StartsWith($"clients from {networkName}: {Clients} of {2 * Clients} connections died half-open after {from:0.0}", advice);
            Assert.Contains("with K = 60: a middlebox evicts idle flows at ~", advice);

            string scrape = await http.GetStringAsync("/metrics", ct);
            Assert.Equal(0, TakeoverBucket(scrape, "2"));
            Assert.Equal(Clients, TakeoverBucket(scrape, "5"));

            await client.StandardInput.WriteLineAsync("probe".AsMemory(), ct);
            int expected = Math.Max(1, (int)Math.Floor(from * 0.8));
            Assert.Equal($"server-keep-alive {expected}", await ReadLineAsync(client, ct));
        }
        finally
        {
            if (!client.HasExited)
            {
                client.Kill(entireProcessTree: true);
            }
            using var stopTimeout = new CancellationTokenSource(StepTimeout);
            await host.StopAsync(stopTimeout.Token);
        }
    }

    private static async Task<IHost> StartBrokerAsync(string address, CancellationToken ct)
    {
        var builder = BrokerHost.CreateBuilder([], b =>
        {
            b.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
            {
                ["Broker:Tcp:Address"] = address,
                ["Broker:Tcp:Port"] = "0",
                ["Broker:Metrics:Address"] = "127.0.0.1",
                ["Broker:Metrics:Port"] = "0",
                // The client is in a network namespace, not on loopback: anonymous is loopback-only by default.
                ["Broker:Auth:AllowAnonymous"] = "true",
                // Keep-alive insight only: no store (two brokers never share one, and this one needs none).
                ["Broker:Persistence:Enabled"] = "false",
                ["Broker:KeepAlive:Adaptive"] = "true",
                ["Broker:KeepAlive:AdaptiveFloorSeconds"] = "1",
                // One round of six clients is the whole sample here.
                ["Broker:KeepAlive:Insight:MinSamples"] = "4",
                ["Broker:KeepAlive:Insight:MinDeathFraction"] = "0.1",
                ["Broker:KeepAlive:Insight:LogIntervalSeconds"] = "0",
            });
            b.Logging.ClearProviders();
        });
        IHost host = builder.Build();
        await host.StartAsync(ct);
        return host;
    }

    /// <summary>The cumulative takeover count of one bucket in the Prometheus text.</summary>
    private static long TakeoverBucket(string scrape, string le)
    {
        string line = scrape.Split('\n').Single(l => l.StartsWith("mqtt_connection_idle_before_death_seconds_bucket{", StringComparison.Ordinal)
            && l.Contains("cause=\"takeover\"", StringComparison.Ordinal) && l.Contains($"le=\"{le}\"", StringComparison.Ordinal));
        return long.Parse(line[(line.IndexOf('}') + 1)..].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
    }

    private static async Task<string?> ReadLineAsync(Process process, CancellationToken ct)
    {
        string? line = await process.StandardOutput.ReadLineAsync(ct).AsTask().WaitAsync(StepTimeout, ct);
        if (line is null)
        {
            Assert.Fail("The client in the namespace stopped: " + await process.StandardError.ReadToEndAsync(ct));
        }
        return line;
    }
}
