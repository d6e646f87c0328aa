using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;

namespace Broker.Attack;

/// <summary>What a probe needs while it attacks: the broker, its samples, an HTTP client for /readyz and /metrics.</summary>
internal sealed class AttackContext(string name, BrokerUnderTest broker, ProcessSampler sampler, CancellationToken cancellationToken)
{
    public string Name { get; } = name;
    public BrokerUnderTest Broker { get; } = broker;
    public ProcessSampler Sampler { get; } = sampler;
    public CancellationToken Cancellation { get; } = cancellationToken;
    public IPEndPoint EndPoint => Broker.MqttEndPoint;
    public Dictionary<string, string> Figures { get; } = [];
    public List<string> Failures { get; } = [];

    public void Figure(string name, string value) => Figures[name] = value; // InvariantGlobalization: numbers print the same everywhere

    public void Check(bool condition, string failure)
    {
        if (!condition)
        {
            Failures.Add(failure);
        }
    }

    /// <summary>GET on the broker's HTTP listener: (status, milliseconds) or (-1, ms) on timeout/failure.</summary>
    public async Task<(int Status, double Ms, string Body)> HttpGetAsync(string path, TimeSpan timeout)
    {
        using var http = new HttpClient { Timeout = timeout };
        var watch = Stopwatch.StartNew();
        try
        {
            using var response = await http.GetAsync(new Uri(Broker.HttpBase, path), Cancellation);
            string body = await response.Content.ReadAsStringAsync(Cancellation);
            return ((int)response.StatusCode, watch.Elapsed.TotalMilliseconds, body);
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            return (-1, watch.Elapsed.TotalMilliseconds, e.Message);
        }
    }

    public async Task<double?> MetricAsync(string series)
    {
        var (status, _, body) = await HttpGetAsync("metrics", TimeSpan.FromSeconds(20));
        if (status != 200)
        {
            return null;
        }
        double sum = 0;
        bool found = false;
        foreach (var line in body.Split('\n'))
        {
            if (line.StartsWith(series, StringComparison.Ordinal) && (line.Length > series.Length && (line[series.Length] is ' ' or '{')))
            {
                sum += double.Parse(line[(line.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture);
                found = true;
            }
        }
        return found ? sum : null;
    }

    /// <summary>A new client connects and gets CONNACK 0 within <paramref name="timeout"/>: milliseconds, or null.</summary>
    public async Task<double?> FreshClientConnectsAsync(string clientId, TimeSpan timeout)
    {
        var watch = Stopwatch.StartNew();
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Cancellation);
        cts.CancelAfter(timeout);
        try
        {
            using var socket = await Mqtt.ConnectSocketAsync(EndPoint, 0, cts.Token);
            await socket.SendAsync(Mqtt.Connect(clientId, 30), cts.Token);
            var packet = await new PacketReader(socket).ReadAsync(cts.Token);
            if (packet is { First: 0x20 } p && p.Body.Length == 2 && p.Body[1] == 0)
            {
                await socket.SendAsync(Mqtt.Disconnect);
                return watch.Elapsed.TotalMilliseconds;
            }
            return null;
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException)
        {
            return null;
        }
    }
}

/// <summary>One attack of issue #11's table.</summary>
internal sealed record AttackDefinition(
    string Name,
    string Description,
    string Before,
    Func<AttackContext, Task> RunAsync,
    int? OpenFiles = null,
    string[]? BrokerArgs = null,
    long? MaxRssGrowthBytes = null,
    Dictionary<string, string>? Files = null);

internal static partial class Attacks
{
    public static readonly AttackDefinition[] All =
    [
        new("fd-exhaustion", "`prlimit --nofile=1024:1024`, 1,100 idle MQTT connections (keep-alive 0), then 100 + the unaccepted closed",
            "accept loop at 160 % CPU logging a stack trace per try (68 MB of log in 10 s), `/readyz` timed out, process aborted \"Out of memory\" (3 of 3)",
            FdExhaustionAsync, OpenFiles: 1024),
        new("deep-topics", "20 retained PUBLISHes to 65,535-byte topics of `/` (1.3 MB), then one 975 KB SUBSCRIBE of 15 deep filters",
            "+428 MB RSS for the PUBLISHes, +345 MB for the SUBSCRIBE; with a 1 GiB heap limit dead after 3.1 MB of input",
            DeepTopicsAsync, MaxRssGrowthBytes: 100L << 20),
        new("deep-topics-no-level-limit", "the same with `Broker:Limits:MaxTopicLevels=65535` (topics of 65,534 `/`): the tries themselves",
            "(as above)",
            DeepTopicsAsync, BrokerArgs: ["--Broker:Limits:MaxTopicLevels=65535"], MaxRssGrowthBytes: 100L << 20),
        new("retained-amplification", "1,000 retained messages (100 B), then one 40 KB SUBSCRIBE repeating `#` 10,000 times; the subscriber reads nothing for 5 s, then reads",
            "9.97 M messages queued, +947 MB in 6 s (replays ignored MaxQueuedMessages)",
            RetainedAmplificationAsync, MaxRssGrowthBytes: 100L << 20),
        new("stalled-readers", "300 subscribers to `#` (4 KB receive buffers) stop reading while a publisher sends 64 KB QoS 1 messages for 20 s",
            "+640 MB, never disconnected (queue limit in messages only: 1,000 x 1 MiB per client allowed)",
            StalledReadersAsync),
        new("partial-publish", "200 connections, keep-alive 0, each sends 1 MB of a 1,000,000-byte PUBLISH and then nothing",
            "never closed, +228 MB held",
            PartialPublishAsync),
        new("partial-connect", "300 connections each send ~1 MB of a 1,000,000-byte CONNECT and then nothing",
            "+332 MB, closed at 10-20 s rather than at the 10 s connect timeout",
            PartialConnectAsync),
        new("connect-churn", "CONNECT/CONNACK/DISCONNECT by 8 parallel clients for 20 s",
            "3,050 cycles/s, 17.8 MB of log in 20 s (every connect and disconnect at Information)",
            ConnectChurnAsync),
        new("log-forging", "client ids and a user name with CR/LF, ANSI escapes, NUL/tab/DEL, a 300-char id; broker at Debug for `Broker` so that per-connection lines are written",
            "written raw into the log: a client could forge log lines",
            LogForgingAsync, BrokerArgs: ["--Logging:LogLevel:Broker=Debug"]),
        new("log-forging-refused", "the same clients (user names with CR/LF, no password) refused by a password file, at the shipped log levels: the refusal is logged at Information",
            "(as above)",
            LogForgingAsync, BrokerArgs: ["--Broker:Auth:PasswordFile=passwd"],
            // A user of the broker's own test vectors (tests/Broker.Tests/Security/PasswordHashTests.Alice); the attackers do not know it.
            Files: new() { ["passwd"] = "alice:$7$101$6UW1pHgDcc6Yrgml$d2tGudri8bifGZQn31pLXYO6rk7tIW5Ugb9yVr0hSusiAhgDabOdx98QBlTB+HnWSq8XqIy8A2QKLi8VT15WeA==\n" }),
    ];

    // ---- fd exhaustion ----------------------------------------------------------------------------------------

    private static async Task FdExhaustionAsync(AttackContext c)
    {
        const int count = 1100;
        var sockets = new List<Socket>(count);
        var connacked = new bool[count];
        var readers = new List<Task>(count);
        int connectFailures = 0;
        try
        {
            for (int i = 0; i < count; i++)
            {
                Socket s;
                try
                {
                    s = await Mqtt.ConnectSocketAsync(c.EndPoint, 0, c.Cancellation);
                }
                catch (Exception e) when (e is SocketException or OperationCanceledException)
                {
                    connectFailures++;
                    continue;
                }
                int index = sockets.Count;
                sockets.Add(s);
                try
                {
                    await s.SendAsync(Mqtt.Connect($"atk-fd-{i}", keepAlive: 0));
                }
                catch (SocketException)
                {
                }
                readers.Add(Task.Run(async () =>
                {
                    var packet = await new PacketReader(s).ReadAsync(CancellationToken.None);
                    if (packet is { First: 0x20 })
                    {
                        connacked[index] = true;
                    }
                }));
            }
            c.Figure("sockets opened", $"{sockets.Count} ({connectFailures} connects failed)");
            // Let the broker accept what it can and hit the limit.
            await Task.Delay(TimeSpan.FromSeconds(3), c.Cancellation);
            int accepted = connacked.Count(x => x);
            c.Figure("connections accepted before exhaustion", $"{accepted}");
            c.Figure("broker descriptors", $"{c.Broker.OpenDescriptors()} of 1024");

            // The exhausted window: CPU over 10 s, /readyz probed meanwhile.
            var (_, cpu0) = c.Sampler.Now();
            var window = Stopwatch.StartNew();
            var probes = new List<string>();
            bool allAnswered = true;
            while (window.Elapsed < TimeSpan.FromSeconds(10))
            {
                var (status, ms, _) = await c.HttpGetAsync("readyz", TimeSpan.FromSeconds(5));
                probes.Add(status < 0 ? $"timeout after {ms:F0} ms" : $"{status} in {ms:F0} ms");
                allAnswered &= status > 0;
                await Task.Delay(TimeSpan.FromSeconds(2), c.Cancellation);
            }
            var (_, cpu1) = c.Sampler.Now();
            double cpuPercent = 100 * (cpu1 - cpu0) / window.Elapsed.TotalSeconds;
            c.Figure("CPU while exhausted", $"{cpuPercent:F1} % over {window.Elapsed.TotalSeconds:F1} s");
            c.Figure("/readyz while exhausted", $"{string.Join(", ", probes)}");
            c.Check(cpuPercent < 50, $"CPU {cpuPercent:F1} % while exhausted (target < 50 %)");
            c.Check(allAnswered, "/readyz did not answer while descriptors were exhausted");

            // Descriptors free up: the connections still waiting in the backlog and 100 accepted ones go.
            int closed = 0, closedAccepted = 0;
            for (int i = 0; i < sockets.Count; i++)
            {
                if (!connacked[i] || closedAccepted < 100)
                {
                    closedAccepted += connacked[i] ? 1 : 0;
                    sockets[i].Close(0);
                    closed++;
                }
            }
            c.Figure("closed to free descriptors", $"{closed} ({closedAccepted} accepted)");
            double? connectMs = null;
            var freed = Stopwatch.StartNew();
            while (connectMs is null && freed.Elapsed < TimeSpan.FromSeconds(20))
            {
                connectMs = await c.FreshClientConnectsAsync("after-fd", TimeSpan.FromSeconds(5));
            }
            c.Figure("new client after freeing", connectMs is null ? $"no CONNACK within 20 s" : $"CONNACK {freed.Elapsed.TotalMilliseconds:F0} ms after the close");
            c.Check(connectMs is not null, "no new client could connect after descriptors were freed");
            c.Figure("mqtt_accept_errors_total", $"{await c.MetricAsync("mqtt_accept_errors_total")}");
            c.Figure("process_open_fds / process_max_fds", $"{await c.MetricAsync("process_open_fds")} / {await c.MetricAsync("process_max_fds")}");
        }
        finally
        {
            foreach (var s in sockets)
            {
                s.Dispose();
            }
            await Task.WhenAll(readers).WaitAsync(TimeSpan.FromSeconds(10)).ContinueWith(_ => { });
        }
    }

    // ---- deep topics ------------------------------------------------------------------------------------------

    private static async Task DeepTopicsAsync(AttackContext c)
    {
        bool unlimited = c.Name == "deep-topics-no-level-limit";
        int topicLength = unlimited ? 65534 : 65535;
        long sent = 0;
        int closedByBroker = 0;
        for (int i = 0; i < 20; i++)
        {
            // Each topic differs in its last byte so that they are 20 retained messages, not one replaced 20 times.
            string topic = new string('/', topicLength - 1) + (char)('a' + i);
            using var s = await Mqtt.ConnectSocketAsync(c.EndPoint, 0, c.Cancellation);
            var reader = new PacketReader(s);
            await s.SendAsync(Mqtt.Connect($"atk-deep-{i}", 0));
            await reader.ReadAsync(c.Cancellation);
            var publish = Mqtt.Publish(topic, "x"u8, qos: 1, packetId: 1, retain: true);
            sent += publish.Length;
            await s.SendAsync(publish);
            using var wait = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            var answer = await reader.ReadAsync(wait.Token).ContinueWith(t => t.IsCompletedSuccessfully ? t.Result : null);
            if (answer is null)
            {
                closedByBroker++;
            }
        }
        c.Figure("retained PUBLISHes", $"20, {sent:N0} bytes; {closedByBroker} connections closed by the broker (3.1.1 answer to a refused topic), {20 - closedByBroker} PUBACKed");
        c.Figure("mqtt_retained_messages after", $"{await c.MetricAsync("mqtt_retained_messages")}");
        c.Figure("RSS after PUBLISHes", $"+{(c.Sampler.PeakRss - Program.Baseline) / 1e6:F1} MB (peak)");

        using (var s = await Mqtt.ConnectSocketAsync(c.EndPoint, 0, c.Cancellation))
        {
            var reader = new PacketReader(s);
            await s.SendAsync(Mqtt.Connect("atk-deep-sub", 0));
            await reader.ReadAsync(c.Cancellation);
            var filters = Enumerable.Range(0, 15).Select(i => i % 2 == 0 ? string.Concat(Enumerable.Repeat("/+", 32500)) : new string('/', 64999) + (char)('a' + i)).ToArray();
            var subscribe = Mqtt.Subscribe(1, filters, qos: 0);
            await s.SendAsync(subscribe);
            using var wait = new CancellationTokenSource(TimeSpan.FromSeconds(15));
            var answer = await reader.ReadAsync(wait.Token).ContinueWith(t => t.IsCompletedSuccessfully ? t.Result : null);
            string codes = answer is { First: 0x90 } a ? string.Join(' ', a.Body.Skip(2).Select(b => $"0x{b:X2}").Distinct()) : "no SUBACK";
            c.Figure("deep SUBSCRIBE", $"{subscribe.Length:N0} bytes, 15 filters; SUBACK codes {codes}");
            // Retained messages matched by the deep filters arrive now, if any were stored.
            await Task.Delay(TimeSpan.FromSeconds(2), c.Cancellation);
        }
        c.Figure("mqtt_subscriptions after", $"{await c.MetricAsync("mqtt_subscriptions")}");
    }

    // ---- retained amplification -------------------------------------------------------------------------------

    private static async Task RetainedAmplificationAsync(AttackContext c)
    {
        using (var pub = await Mqtt.ConnectSocketAsync(c.EndPoint, 0, c.Cancellation))
        {
            var reader = new PacketReader(pub);
            await pub.SendAsync(Mqtt.Connect("atk-ret-pub", 0));
            await reader.ReadAsync(c.Cancellation);
            var payload = new byte[100];
            for (int i = 0; i < 1000; i++)
            {
                await pub.SendAsync(Mqtt.Publish($"r/{i}", payload, qos: 1, packetId: (ushort)(i + 1), retain: true));
            }
            int acks = 0;
            using var wait = new CancellationTokenSource(TimeSpan.FromSeconds(20));
            while (acks < 1000 && await reader.ReadAsync(wait.Token) is { } p)
            {
                acks += (p.First & 0xF0) == 0x40 ? 1 : 0;
            }
            c.Figure("retained stored", $"{acks} PUBACKs; mqtt_retained_messages {await c.MetricAsync("mqtt_retained_messages")}");
        }
        var baseline = c.Sampler.CurrentRss;
        using var sub = await Mqtt.ConnectSocketAsync(c.EndPoint, 4096, c.Cancellation);
        var subReader = new PacketReader(sub);
        await sub.SendAsync(Mqtt.Connect("atk-ret-sub", 60));
        await subReader.ReadAsync(c.Cancellation);
        var subscribe = Mqtt.Subscribe(1, Enumerable.Repeat("#", 10000), qos: 1);
        await sub.SendAsync(subscribe);
        await Task.Delay(TimeSpan.FromSeconds(5), c.Cancellation);
        c.Figure("SUBSCRIBE", $"{subscribe.Length:N0} bytes, 10,000 x `#`");
        c.Figure("queued while not reading (mqtt_messages_pending)", $"{await c.MetricAsync("mqtt_messages_pending")}");
        c.Figure("RSS growth while not reading", $"{(c.Sampler.PeakRss - baseline) / 1e6:F1} MB");
        // Now it reads (and acknowledges) for 5 s: how many messages did one SUBSCRIBE produce?
        int publishes = 0;
        bool suback = false;
        using (var window = new CancellationTokenSource(TimeSpan.FromSeconds(5)))
        {
            try
            {
                while (await subReader.ReadAsync(window.Token) is { } p)
                {
                    if ((p.First & 0xF0) == 0x90)
                    {
                        suback = true;
                    }
                    else if ((p.First & 0xF0) == 0x30)
                    {
                        publishes++;
                        int qos = (p.First >> 1) & 3;
                        if (qos == 1)
                        {
                            int topicLength = BinaryPrimitives.ReadUInt16BigEndian(p.Body);
                            ushort id = BinaryPrimitives.ReadUInt16BigEndian(p.Body.AsSpan(2 + topicLength));
                            await sub.SendAsync(Mqtt.PubAck(id));
                        }
                    }
                }
            }
            catch (OperationCanceledException)
            {
            }
        }
        c.Figure("messages the one SUBSCRIBE delivered in 5 s of reading", $"{publishes} (SUBACK {(suback ? "received" : "missing")})");
        c.Figure("mqtt_messages_dropped_total{reason=queue_full}", $"{await c.MetricAsync("mqtt_messages_dropped_total{reason=\"queue_full\"}")}");
    }

    // ---- stalled readers --------------------------------------------------------------------------------------

    private static async Task StalledReadersAsync(AttackContext c)
    {
        const int subscribers = 300;
        const int payloadSize = 64 * 1024;
        var stalled = new List<Socket>(subscribers);
        try
        {
            for (int i = 0; i < subscribers; i++)
            {
                var s = await Mqtt.ConnectSocketAsync(c.EndPoint, 4096, c.Cancellation);
                stalled.Add(s);
                var reader = new PacketReader(s);
                await s.SendAsync(Mqtt.Connect($"atk-stall-{i}", 60));
                await reader.ReadAsync(c.Cancellation);
                await s.SendAsync(Mqtt.Subscribe(1, ["#"], qos: 1));
                await reader.ReadAsync(c.Cancellation);
                // From here on nothing is read from this socket.
            }
            var baseline = c.Sampler.ResetPeak();
            using var pub = await Mqtt.ConnectSocketAsync(c.EndPoint, 0, c.Cancellation);
            var pubReader = new PacketReader(pub);
            await pub.SendAsync(Mqtt.Connect("atk-stall-pub", 0));
            await pubReader.ReadAsync(c.Cancellation);
            var window = new SemaphoreSlim(50, 50);
            long acked = 0, sent = 0;
            var acks = Task.Run(async () =>
            {
                while (await pubReader.ReadAsync(CancellationToken.None) is { } p)
                {
                    if ((p.First & 0xF0) == 0x40)
                    {
                        Interlocked.Increment(ref acked);
                        window.Release();
                    }
                }
            });
            var payload = new byte[payloadSize];
            var flood = Stopwatch.StartNew();
            double peakPendingQueued = 0, peakPendingInflight = 0;
            var nextScrape = TimeSpan.FromSeconds(5);
            ushort id = 0;
            while (flood.Elapsed < TimeSpan.FromSeconds(20))
            {
                if (!await window.WaitAsync(TimeSpan.FromMilliseconds(500), c.Cancellation))
                {
                    continue;
                }
                id = (ushort)(id == ushort.MaxValue ? 1 : id + 1);
                await pub.SendAsync(Mqtt.Publish("flood/x", payload, 1, id, retain: false));
                sent++;
                if (flood.Elapsed > nextScrape)
                {
                    nextScrape += TimeSpan.FromSeconds(5);
                    var body = (await c.HttpGetAsync("metrics", TimeSpan.FromSeconds(10))).Body;
                    peakPendingQueued = Math.Max(peakPendingQueued, Series(body, "mqtt_messages_pending{state=\"queued\"}"));
                    peakPendingInflight = Math.Max(peakPendingInflight, Series(body, "mqtt_messages_pending{state=\"inflight\"}"));
                }
            }
            long growth = c.Sampler.PeakRss - baseline;
            c.Figure("flood", $"{sent:N0} messages of 64 KB sent in 20 s, {Interlocked.Read(ref acked):N0} PUBACKed ({sent * (long)payloadSize / 1e6 / 20:F1} MB/s in)");
            c.Figure("held by the broker (scrapes every 5 s, max)", $"{peakPendingQueued:N0} queued, {peakPendingInflight:N0} in flight");
            c.Figure("RSS growth (peak)", $"{growth / 1e6:F1} MB");
            c.Figure("mqtt_messages_dropped_total{reason=queue_full}", $"{await c.MetricAsync("mqtt_messages_dropped_total{reason=\"queue_full\"}")}");
            Program.StalledReaderGrowth = growth;
            Program.StalledReaderPayload = payloadSize;
            Program.StalledReaders = subscribers;
            pub.Close(0);
            await acks.WaitAsync(TimeSpan.FromSeconds(5)).ContinueWith(_ => { });
        }
        finally
        {
            foreach (var s in stalled)
            {
                s.Dispose();
            }
        }
    }

    private static double Series(string body, string series)
    {
        foreach (var line in body.Split('\n'))
        {
            if (line.StartsWith(series, StringComparison.Ordinal))
            {
                return double.Parse(line[(line.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture);
            }
        }
        return 0;
    }

    // ---- partial packets --------------------------------------------------------------------------------------

    private static async Task PartialPublishAsync(AttackContext c)
    {
        const int count = 200;
        const int remaining = 1_000_000;
        var sockets = new List<Socket>(count);
        var started = Stopwatch.StartNew();
        var closedAt = new double[count];
        var watchers = new List<Task>();
        try
        {
            var chunk = new byte[64 * 1024];
            for (int i = 0; i < count; i++)
            {
                var s = await Mqtt.ConnectSocketAsync(c.EndPoint, 0, c.Cancellation);
                sockets.Add(s);
                var reader = new PacketReader(s);
                await s.SendAsync(Mqtt.Connect($"atk-ppub-{i}", keepAlive: 0));
                await reader.ReadAsync(c.Cancellation);
                // PUBLISH QoS 0 to "p/x", 1,000,000 bytes announced; all but the last 10 bytes sent.
                var head = Mqtt.Header(0x30, remaining);
                await s.SendAsync(head);
                await s.SendAsync(new byte[] { 0, 3, (byte)'p', (byte)'/', (byte)'x' });
                await SendFillerAsync(s, chunk, remaining - 5 - 10);
                int index = i;
                double sentAt = started.Elapsed.TotalSeconds;
                watchers.Add(Task.Run(async () =>
                {
                    await reader.ReadAsync(CancellationToken.None);
                    closedAt[index] = started.Elapsed.TotalSeconds - sentAt;
                }));
            }
            c.Figure("sent", $"{count} x {remaining - 10:N0} bytes of a PUBLISH in {started.Elapsed.TotalSeconds:F1} s");
            c.Figure("RSS growth with all held", $"{(c.Sampler.CurrentRss - Program.Baseline) / 1e6:F1} MB");
            await Task.WhenAll(watchers).WaitAsync(TimeSpan.FromSeconds(60), c.Cancellation).ContinueWith(_ => { });
            Summarize(c, "closed after their last byte", closedAt, count);
            c.Figure("mqtt_disconnects_total{cause=partial_packet_timeout}", $"{await c.MetricAsync("mqtt_disconnects_total{cause=\"partial_packet_timeout\"}")}");
        }
        finally
        {
            foreach (var s in sockets)
            {
                s.Dispose();
            }
        }
    }

    private static async Task PartialConnectAsync(AttackContext c)
    {
        const int count = 300;
        const int remaining = 1_000_000;
        var sockets = new List<Socket>(count);
        var started = Stopwatch.StartNew();
        var closedAt = new double[count];
        var watchers = new List<Task>();
        try
        {
            var chunk = new byte[64 * 1024];
            for (int i = 0; i < count; i++)
            {
                var s = await Mqtt.ConnectSocketAsync(c.EndPoint, 0, c.Cancellation);
                double connectedAt = started.Elapsed.TotalSeconds;
                sockets.Add(s);
                var reader = new PacketReader(s);
                int index = i;
                watchers.Add(Task.Run(async () =>
                {
                    await reader.ReadAsync(CancellationToken.None);
                    closedAt[index] = started.Elapsed.TotalSeconds - connectedAt;
                }));
                try
                {
                    await s.SendAsync(Mqtt.Header(0x10, remaining));
                    await SendFillerAsync(s, chunk, remaining - 10);
                }
                catch (SocketException)
                {
                    // Closed by the broker while sending (e.g. the CONNECT's start was refused): fine.
                }
            }
            c.Figure("sent", $"{count} x ~{remaining - 10:N0} bytes of a CONNECT in {started.Elapsed.TotalSeconds:F1} s");
            c.Figure("RSS growth with all held", $"{(c.Sampler.CurrentRss - Program.Baseline) / 1e6:F1} MB");
            await Task.WhenAll(watchers).WaitAsync(TimeSpan.FromSeconds(40), c.Cancellation).ContinueWith(_ => { });
            Summarize(c, "closed after their TCP connect", closedAt, count);
            c.Figure("mqtt_disconnects_total{cause=connect_timeout}", $"{await c.MetricAsync("mqtt_disconnects_total{cause=\"connect_timeout\"}")}");
        }
        finally
        {
            foreach (var s in sockets)
            {
                s.Dispose();
            }
        }
    }

    /// <summary>Sends <paramref name="bytes"/> bytes of <paramref name="chunk"/>'s content, a chunk at a time.</summary>
    private static async Task SendFillerAsync(Socket s, byte[] chunk, int bytes)
    {
        while (bytes > 0)
        {
            int n = Math.Min(bytes, chunk.Length);
            await s.SendAsync(chunk.AsMemory(0, n));
            bytes -= n;
        }
    }

    private static void Summarize(AttackContext c, string what, double[] closedAt, int count)
    {
        var closed = closedAt.Where(t => t > 0).Order().ToArray();
        c.Figure(what, closed.Length == 0
            ? $"none of {count} within the wait"
            : $"{closed.Length} of {count}: min {closed[0]:F1} s, median {closed[closed.Length / 2]:F1} s, max {closed[^1]:F1} s");
        c.Check(closed.Length == count, $"{count - closed.Length} connections never closed");
    }

    // ---- connect churn ----------------------------------------------------------------------------------------

    private static async Task ConnectChurnAsync(AttackContext c)
    {
        long logBefore = c.Broker.LogBytes;
        long cycles = 0, failures = 0;
        var duration = TimeSpan.FromSeconds(20);
        var watch = Stopwatch.StartNew();
        var loops = Enumerable.Range(0, 8).Select(loop => Task.Run(async () =>
        {
            int n = 0;
            while (watch.Elapsed < duration)
            {
                try
                {
                    using var s = await Mqtt.ConnectSocketAsync(c.EndPoint, 0, c.Cancellation);
                    await s.SendAsync(Mqtt.Connect($"churn-{loop}-{n++}", 30));
                    using var wait = new CancellationTokenSource(TimeSpan.FromSeconds(5));
                    if (await new PacketReader(s).ReadAsync(wait.Token) is { First: 0x20 })
                    {
                        await s.SendAsync(Mqtt.Disconnect);
                        Interlocked.Increment(ref cycles);
                    }
                    else
                    {
                        Interlocked.Increment(ref failures);
                    }
                }
                catch (Exception e) when (e is SocketException or OperationCanceledException)
                {
                    Interlocked.Increment(ref failures);
                }
            }
        })).ToArray();
        await Task.WhenAll(loops);
        c.Figure("cycles", $"{cycles:N0} in {watch.Elapsed.TotalSeconds:F1} s ({cycles / watch.Elapsed.TotalSeconds:F0}/s), {failures} failed");
        c.Figure("log written during the churn", $"{c.Broker.LogBytes - logBefore:N0} bytes");
    }

    // ---- log forging ------------------------------------------------------------------------------------------

    private static async Task LogForgingAsync(AttackContext c)
    {
        string forged = "2026-01-01T00:00:00.000Z info: Broker.Security[1104] FORGED password file reloaded";
        string[] ids =
        [
            "evil\r\n" + forged,
            "\u001b[2J\u001b[31mred\u001b[0m",
            "nul\u0000tab\tdel\u007f",
            "unicode\u2028line\u0085next",
            new string('x', 290) + "\n" + forged,
        ];
        int connected = 0, refused = 0;
        foreach (var id in ids)
        {
            using var s = await Mqtt.ConnectSocketAsync(c.EndPoint, 0, c.Cancellation);
            await s.SendAsync(Mqtt.Connect(id, 30, userName: "user\r\n" + forged));
            using var wait = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            var packet = await new PacketReader(s).ReadAsync(wait.Token).ContinueWith(t => t.IsCompletedSuccessfully ? t.Result : null);
            if (packet is { First: 0x20 } p && p.Body[1] == 0)
            {
                connected++;
                // A PUBLISH to a topic with control characters too, then a second CONNECT: a protocol violation, whose
                // log line names the client.
                await s.SendAsync(Mqtt.Publish("t/\r\n" + forged, "x"u8, 0, 0, false));
                await s.SendAsync(Mqtt.Connect(id, 30));
            }
            else
            {
                refused++;
            }
        }
        await Task.Delay(TimeSpan.FromSeconds(2), c.Cancellation);
        string log = c.Broker.ReadLog();
        var lines = log.Split('\n');
        int forgedLines = lines.Count(l => l.StartsWith(forged[..20], StringComparison.Ordinal) && l.Contains("FORGED", StringComparison.Ordinal));
        int controlBytes = log.Count(ch => ch is '\u001b' or '\r' or '\u0000' or '\u007f' or '\u2028' or '\u0085');
        int linesMentioning = lines.Count(l => l.Contains("FORGED", StringComparison.Ordinal) || l.Contains("\\u001b[2J", StringComparison.Ordinal));
        var unexpected = lines.Where(l => l.Length > 0 && !TimestampOrDetail().IsMatch(l)).Take(3).ToArray();
        c.Figure("clients", $"{connected} connected, {refused} refused (the 297-char id: MaxClientIdLength 256)");
        c.Figure("log lines naming the hostile ids", $"{linesMentioning}; raw control characters in the log: {controlBytes}; lines that start like a forged entry: {forgedLines}");
        var sample = lines.FirstOrDefault(l => l.Contains("evil", StringComparison.Ordinal));
        c.Figure("example line", $"`{sample?.Trim()}`");
        if (c.Name == "log-forging-refused")
        {
            // A password file is set and none of these clients sends a password: each must be refused.
            c.Check(connected == 0, $"{connected} clients with a user name and no password were accepted although Broker:Auth:PasswordFile is set");
        }
        c.Check(forgedLines == 0, $"{forgedLines} forged log lines");
        c.Check(controlBytes == 0, $"{controlBytes} raw control characters in the log");
        c.Check(unexpected.Length == 0, "log lines that are not broker entries: " + string.Join(" | ", unexpected));
    }

    // The console format: a timestamped first line per entry, and indented detail lines under it (exceptions).
    [GeneratedRegex(@"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (trce|dbug|info|warn|fail|crit): |\s+\S)")]
    private static partial Regex TimestampOrDetail();
}
