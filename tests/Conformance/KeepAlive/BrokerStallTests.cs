using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;
using Broker.Protocol;
using Conformance.Infrastructure;
using Xunit;

namespace Conformance.KeepAlive;

/// <summary>
/// A stalled broker (GC pause, SIGSTOP, starved thread pool) must not blame its clients: packets that arrived
/// during the stall wait unread in the kernel, and the wheel must read them before expiring anyone. The broker
/// runs as a child process so that it can really be frozen with SIGSTOP while the clients keep sending.
/// </summary>
[Collection(Conformance.Infrastructure.RealTimeCollection.Name)]
public sealed partial class BrokerStallTests
{
    private const ushort K = 2;
    private const int SigCont = 18; // Linux x86-64 and arm64
    private const int SigStop = 19;
    private static readonly TimeSpan Stall = TimeSpan.FromSeconds(4); // > 1.5K = 3 s

    [Fact]
    public async Task A_stall_longer_than_1_5K_expires_the_silent_client_and_no_client_that_kept_sending()
    {
        if (!OperatingSystem.IsLinux())
        {
            Assert.Skip("Needs Linux: the broker process is frozen with SIGSTOP/SIGCONT.");
        }

        using var child = BrokerProcess.Start(
            "--Broker:Tcp:Port=0",
            "--Broker:Tcp:Address=127.0.0.1",
            // Never the fixed default 9464 on every address: a broker started by hand may hold it.
            "--Broker:Metrics:Address=127.0.0.1",
            "--Broker:Metrics:Port=0",
            // Keep-alive only: no store (the default ./data next to the binary would be shared by parallel tests).
            "--Broker:Persistence:Enabled=false",
            "--Broker:KeepAlive:TickMilliseconds=100",
            // Per-connection lines are Debug; the assertions below read the disconnect line of each client.
            "--Logging:LogLevel:Broker.Connections=Debug");
        var clients = new List<RawClient>();
        var pacers = new List<PacketPacer>();
        try
        {
            var endPoint = await child.EndPoint.WaitAsync(TimeSpan.FromSeconds(30));
            var pingers = new List<(string Id, ConnectionWatch Watch, PacketPacer Pacer)>();
            var silent = new List<(string Id, ConnectionWatch Watch)>();
            foreach (var version in new[] { MqttProtocolVersion.V311, MqttProtocolVersion.V500 })
            {
                for (int i = 0; i < 2; i++)
                {
                    string id = $"pinger-{version}-{i}";
                    var (client, clock, _) = await KeepAliveClients.ConnectAsync(endPoint, version, id, K);
                    clients.Add(client);
                    var pacer = new PacketPacer(client, version, PingReqPacket.Instance, TimeSpan.FromSeconds(1));
                    pacers.Add(pacer);
                    pingers.Add((id, new ConnectionWatch(client, version, clock), pacer));
                }
                string silentId = $"silent-{version}";
                var (quiet, quietClock, _) = await KeepAliveClients.ConnectAsync(endPoint, version, silentId, K);
                clients.Add(quiet);
                silent.Add((silentId, new ConnectionWatch(quiet, version, quietClock)));
            }

            // Every client's deadline falls inside the stall; the pingers' bytes pile up in the kernel meanwhile.
            var wall = Stopwatch.StartNew();
            child.Signal(SigStop);
            using (var stall = new PeriodicTimer(Stall))
            {
                await stall.WaitForNextTickAsync();
            }
            child.Signal(SigCont);
            var stalled = wall.Elapsed;
            // PeriodicTimer may fire a millisecond early by the Stopwatch; what matters is a stall well beyond 1.5K.
            Assert.True(stalled > TimeSpan.FromSeconds(1.5 * K + 0.5), $"stall lasted only {stalled.TotalSeconds:F3}s");

            // After the stall, hold longer than 1.5K so that a wrongly stale pinger would surely have gone.
            var hold = TimeSpan.FromSeconds(1.5 * K + 0.5);
            var silentClosed = await Task.WhenAll(silent.Select(s => s.Watch.WaitClosedAsync(hold)));
            var sinceResume = wall.Elapsed - stalled;
            var pingersClosed = await Task.WhenAll(pingers.Select(p => p.Watch.WaitClosedAsync(hold - sinceResume)));
            foreach (var pacer in pacers)
            {
                await pacer.DisposeAsync();
            }

            string log = child.Output;
            for (int i = 0; i < silent.Count; i++)
            {
                Assert.True(silentClosed[i] is not null, $"{silent[i].Id} still open {hold.TotalSeconds}s after the stall. Broker output:\n{log}");
            }
            for (int i = 0; i < pingers.Count; i++)
            {
                var (id, watch, pacer) = pingers[i];
                Assert.True(pingersClosed[i] is null, $"{id} was closed at {pingersClosed[i]?.TotalSeconds:F3}s although it sent PINGREQ every second. Broker output:\n{log}");
                Assert.True(await watch.WaitForAsync(PacketType.PingResp, pacer.Sent, TimeSpan.FromSeconds(3)),
                    $"{id}: {watch.Count(PacketType.PingResp)} PINGRESP for {pacer.Sent} PINGREQ");
                Assert.DoesNotMatch($"Client {id} disconnected: .*cause keep_alive_timeout", log);
            }
            foreach (var (id, _) in silent)
            {
                // The disconnect line (Debug, enabled for the connection category below) with its cause and the silence.
                Assert.Matches($"Client {id} disconnected: .*cause keep_alive_timeout: no packet for", log);
            }
            // The stall was seen as the broker's, not the clients' (event 13).
            Assert.Matches(@"Keep-alive wheel tick ran \d+ ms late", log);
            TestContext.Current.SendDiagnosticMessage($"stall {stalled.TotalSeconds:F3}s; silent closed at {string.Join(", ", silentClosed.Select(c => c?.TotalSeconds.ToString("F3")))}s on their clocks; {pingers.Count} pingers open");
        }
        finally
        {
            foreach (var pacer in pacers)
            {
                await pacer.DisposeAsync();
            }
            foreach (var client in clients)
            {
                await client.DisposeAsync();
            }
        }
    }

    /// <summary>The broker's own binary (the one Conformance references) run with `dotnet`; SIGCONT and kill on dispose.</summary>
    private sealed partial class BrokerProcess : IDisposable
    {
        private readonly Process _process;
        private readonly ConcurrentQueue<string> _lines = new();
        private readonly TaskCompletionSource<IPEndPoint> _endPoint = new(TaskCreationOptions.RunContinuationsAsynchronously);

        private BrokerProcess(Process process)
        {
            _process = process;
        }

        public Task<IPEndPoint> EndPoint => _endPoint.Task;

        public string Output => string.Join('\n', _lines);

        public static BrokerProcess Start(params string[] args)
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
            var process = new Process { StartInfo = start };
            var broker = new BrokerProcess(process);
            // Read both streams all along: a full pipe would block the broker's logger.
            process.OutputDataReceived += (_, e) => broker.OnLine(e.Data);
            process.ErrorDataReceived += (_, e) => broker.OnLine(e.Data);
            process.Exited += (_, _) => broker._endPoint.TrySetException(new InvalidOperationException("the broker exited: " + broker.Output));
            process.EnableRaisingEvents = true;
            process.Start();
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            return broker;
        }

        public void Signal(int signal)
        {
            if (kill(_process.Id, signal) != 0)
            {
                throw new InvalidOperationException($"kill({_process.Id}, {signal}) failed: errno {Marshal.GetLastPInvokeError()}");
            }
        }

        public void Dispose()
        {
            try
            {
                if (!_process.HasExited)
                {
                    _ = kill(_process.Id, SigCont);
                    _process.Kill(entireProcessTree: true);
                    _process.WaitForExit(TimeSpan.FromSeconds(10));
                }
            }
            finally
            {
                _process.Dispose();
            }
        }

        private void OnLine(string? line)
        {
            if (line is null)
            {
                return;
            }
            _lines.Enqueue(line);
            if (ListenerLine().Match(line) is { Success: true } match)
            {
                _endPoint.TrySetResult(new IPEndPoint(IPAddress.Loopback, int.Parse(match.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture)));
            }
        }

        [GeneratedRegex(@"MQTT listener on 127\.0\.0\.1:(\d+)")]
        private static partial Regex ListenerLine();

        // DllImport rather than LibraryImport: the latter needs AllowUnsafeBlocks in the test project.
        [DllImport("libc", SetLastError = true)]
        private static extern int kill(int pid, int signal);
    }
}
