using System.Diagnostics;
using System.Diagnostics.Metrics;
using Broker.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Xunit;

namespace Broker.Tests.Transport;

public sealed class HalfOpenKeepAliveTests
{
    // Connects, sends a 3.1.1 CONNECT with Keep Alive 0 (so only the kernel can notice the peer vanish), waits for
    // CONNACK, reports it, then holds the socket without sending; bounded so it can never outlive the test by much.
    private const string SilentClient =
        "import socket, sys, time\n" +
        "s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)\n" +
        "s.sendall(bytes([0x10, 13, 0, 4]) + b'MQTT' + bytes([4, 2, 0, 0, 0, 1]) + b'h')\n" +
        "ack = s.recv(4)\n" +
        "print('connected' if ack[:2] == bytes([0x20, 2]) and ack[3] == 0 else 'refused', flush=True)\n" +
        "time.sleep(60)\n";

    [Fact]
    public async Task Kernel_keep_alive_ends_a_connection_whose_peer_vanished_and_says_so_in_the_disconnect_cause()
    {
        const int idle = 1, interval = 1, probes = 2;
        TimeSpan bound = TimeSpan.FromSeconds(idle + interval * probes + 5);

        await using VethNamespace ns = await VethNamespace.CreateOrSkipAsync();
        var builder = BrokerHost.CreateBuilder([], b =>
        {
            b.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
            {
                ["Broker:Tcp:Address"] = ns.HostAddress,
                ["Broker:Tcp:Port"] = "0",
                ["Broker:Metrics:Address"] = "127.0.0.1",
                ["Broker:Metrics:Port"] = "0",
                // The client is in a network namespace, not on loopback: anonymous is loopback-only by default.
                ["Broker:Auth:AllowAnonymous"] = "true",
                // Kernel keep-alive only: no store (two brokers never share one, and this one needs none).
                ["Broker:Persistence:Enabled"] = "false",
                ["Broker:TcpKeepAlive:IdleSeconds"] = idle.ToString(),
                ["Broker:TcpKeepAlive:IntervalSeconds"] = interval.ToString(),
                ["Broker:TcpKeepAlive:ProbeCount"] = probes.ToString(),
            });
            b.Logging.ClearProviders();
        });
        using var host = builder.Build();
        using var causes = new DisconnectCauses(host.Services.GetRequiredService<IMeterFactory>());
        await host.StartAsync(TestContext.Current.CancellationToken);
        Process? client = null;
        try
        {
            int port = host.Services.GetRequiredService<BrokerServer>().LocalEndPoint.Port;
            client = ns.StartInNamespace("python3", "-c", SilentClient, ns.HostAddress, port.ToString());
            string? line = await client.StandardOutput.ReadLineAsync().WaitAsync(ListenerFixture.Timeout, TestContext.Current.CancellationToken);
            Assert.True(line == "connected", $"The client in the namespace did not connect ({line}): " + await ReadErrorsAsync(client));

            await ns.CutLinkAsync();
            Assert.Empty(causes.Seen);

            // Real time on purpose: this is the kernel's timer, which no fake clock drives.
            string cause = await causes.First.WaitAsync(bound, TestContext.Current.CancellationToken);
            Assert.Equal("transport_timeout", cause);
        }
        finally
        {
            if (client is { HasExited: false })
            {
                client.Kill(entireProcessTree: true);
            }

            client?.Dispose();
            await host.StopAsync(CancellationToken.None);
        }
    }

    private static async Task<string> ReadErrorsAsync(Process process)
    {
        if (!process.HasExited)
        {
            return "(client still running)";
        }

        return await process.StandardError.ReadToEndAsync();
    }

    /// <summary>The cause tag of every mqtt.disconnects increment of one broker (its own meter factory).</summary>
    private sealed class DisconnectCauses : IDisposable
    {
        private readonly MeterListener _listener = new();
        private readonly TaskCompletionSource<string> _first = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly System.Collections.Concurrent.ConcurrentQueue<string> _seen = new();

        public DisconnectCauses(IMeterFactory factory)
        {
            _listener.InstrumentPublished = (instrument, listener) =>
            {
                if (instrument.Name == "mqtt.disconnects" && ReferenceEquals(instrument.Meter.Scope, factory))
                {
                    listener.EnableMeasurementEvents(instrument);
                }
            };
            _listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
            {
                if (value == 0)
                {
                    return; // the series declared at zero at start-up
                }
                foreach (var tag in tags)
                {
                    if (tag.Key == "cause")
                    {
                        _seen.Enqueue((string)tag.Value!);
                        _first.TrySetResult((string)tag.Value!);
                    }
                }
            });
            _listener.Start();
        }

        public Task<string> First => _first.Task;

        public IReadOnlyCollection<string> Seen => _seen;

        public void Dispose() => _listener.Dispose();
    }
}
