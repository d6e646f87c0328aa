using System.Diagnostics;
using Broker.Hosting;
using Broker.Transport;
using Xunit;

namespace Broker.Tests.Transport;

public sealed class HalfOpenKeepAliveTests
{
    // Connects, reports it, then holds the socket without sending; bounded so it can never outlive the test by much.
    private const string SilentClient =
        "import socket, sys, time\n" +
        "s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)\n" +
        "print('connected', flush=True)\n" +
        "time.sleep(60)\n";

    [Fact]
    public async Task Kernel_keep_alive_ends_a_connection_whose_peer_vanished()
    {
        const int idle = 1, interval = 1, probes = 2;
        TimeSpan bound = TimeSpan.FromSeconds(idle + interval * probes + 3);

        await using VethNamespace ns = await VethNamespace.CreateOrSkipAsync();
        using SocketListener listener = LoopbackConnection.StartListener(
            new TcpOptions { Address = ns.HostAddress, Port = 0 },
            new TcpKeepAliveOptions { Enabled = true, IdleSeconds = idle, IntervalSeconds = interval, ProbeCount = probes });

        Process? client = null;
        SocketConnection? server = null;
        try
        {
            using var acceptTimeout = LoopbackConnection.NewTimeoutSource();
            ValueTask<SocketConnection?> accept = listener.AcceptAsync(acceptTimeout.Token);
            client = ns.StartInNamespace("python3", "-c", SilentClient, ns.HostAddress, listener.LocalEndPoint.Port.ToString());
            server = await accept;
            Assert.True(server is not null, "The client in the namespace did not connect: " + await ReadErrorsAsync(client));

            await ns.CutLinkAsync();
            Assert.Equal(TransportEndReason.None, server.EndReason);

            // Real time on purpose: this is the kernel's timer, which no fake clock drives.
            await server.Closed.WaitAsync(bound, TestContext.Current.CancellationToken);

            Assert.Contains(server.EndReason, new[] { TransportEndReason.TimedOut, TransportEndReason.SocketError });
        }
        finally
        {
            if (client is { HasExited: false })
            {
                client.Kill(entireProcessTree: true);
            }

            client?.Dispose();
            server?.Abort("test finished");
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
}
