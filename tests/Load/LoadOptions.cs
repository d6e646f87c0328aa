using System.CommandLine;
using System.Globalization;
using System.Net;

namespace Broker.Load;

internal enum Scenario
{
    Connect,
    Hold,
    Silent,
    ReconnectStorm,
    PubSub,
}

internal enum PubSubMode
{
    FanIn,
    FanOut,
    Pairs,
}

/// <summary>Everything a run is parameterised by; workers receive the same command line plus their slice.</summary>
internal sealed record LoadOptions
{
    public Scenario Scenario { get; init; }
    public string Host { get; init; } = "127.0.0.1";
    public int Port { get; init; } = 1883;
    public int Clients { get; init; } = 100;
    public int KeepAliveSeconds { get; init; } = 60;
    public byte ProtocolVersion { get; init; } = Wire.Mqtt311;
    /// <summary>False: persistent sessions (3.1.1 Clean Session 0; 5.0 Clean Start 0 with a one-hour Session Expiry Interval).</summary>
    public bool CleanStart { get; init; } = true;
    public double DurationSeconds { get; init; } = 10;
    public double Rate { get; init; }
    public int MaxPendingConnects { get; init; } = 1000;
    public double ConnectTimeoutSeconds { get; init; } = 10;
    public double SilentFraction { get; init; } = 0.5;
    public double SilenceWindowK { get; init; } = 3.0;
    public int? BrokerPid { get; init; }
    public int Qos { get; init; }
    public int PayloadBytes { get; init; } = 64;
    public PubSubMode Mode { get; init; } = PubSubMode.Pairs;
    public int? Publishers { get; init; }
    public int? Subscribers { get; init; }
    public int MaxInFlight { get; init; } = 16;
    public double DrainSeconds { get; init; } = 5;
    public int IdleClients { get; init; }
    public int StallSubscribers { get; init; }
    public double StallSeconds { get; init; } = 30;
    public double StallAtSeconds { get; init; } = 2;
    public bool AbortiveDrop { get; init; } = true;
    public int? Workers { get; init; }
    public int ClientsPerWorker { get; init; } = 18_000;
    public IPAddress SourceBase { get; init; } = IPAddress.Parse("127.0.0.2");
    public string? JsonOut { get; init; }
    public string? ReportPath { get; init; }
    public double? DeadlineSeconds { get; init; }
    public bool Progress { get; init; } = true;

    // Set by the coordinator for a worker process; never documented in --help.
    public bool IsWorker { get; init; }
    public int WorkerIndex { get; init; }
    public int ClientOffset { get; init; }
    public int? ClientCount { get; init; }
    public IPAddress? SourceAddress { get; init; }
    public string RunId { get; init; } = Guid.NewGuid().ToString("N")[..8];

    // Slack over W*K for the broker's own check period and scheduling.
    public const double SilenceMarginSeconds = 2;

    /// <summary>The start of a hold left out of the steady idle CPU figure: a quarter of it, at most 10 s.</summary>
    public static TimeSpan HoldSettleTime(TimeSpan hold) => TimeSpan.FromTicks(Math.Min(hold.Ticks / 4, TimeSpan.FromSeconds(10).Ticks));

    public int PublisherCount => Publishers ?? Mode switch
    {
        PubSubMode.FanIn => Math.Max(1, Clients - 1),
        PubSubMode.FanOut => 1,
        _ => Math.Max(1, Clients / 2),
    };

    public int SubscriberCount => Subscribers ?? Mode switch
    {
        PubSubMode.FanIn => 1,
        PubSubMode.FanOut => Math.Max(1, Clients - 1),
        _ => Math.Max(1, Clients / 2),
    };

    public int TotalClients => Scenario == Scenario.PubSub ? PublisherCount + SubscriberCount + IdleClients : Clients;

    public int WorkerCount => Scenario == Scenario.PubSub
        ? 1
        : Workers ?? (int)Math.Ceiling(TotalClients / (double)ClientsPerWorker);

    public static string ScenarioName(Scenario scenario) => scenario switch
    {
        Scenario.ReconnectStorm => "reconnect-storm",
        Scenario.PubSub => "pubsub",
        _ => scenario.ToString().ToLowerInvariant(),
    };

    /// <summary>Upper bound on a run's wall time; the run hard-stops itself after it.</summary>
    public TimeSpan Deadline
    {
        get
        {
            if (DeadlineSeconds is { } explicitSeconds)
            {
                return TimeSpan.FromSeconds(explicitSeconds);
            }

            double connectPhase = (Rate > 0 ? TotalClients / Rate : TotalClients / 2000.0) + ConnectTimeoutSeconds;
            double seconds = Scenario switch
            {
                Scenario.Connect => connectPhase,
                Scenario.Hold => connectPhase + DurationSeconds,
                Scenario.Silent => connectPhase + DurationSeconds + KeepAliveSeconds * SilenceWindowK + SilenceMarginSeconds,
                Scenario.ReconnectStorm => 2 * connectPhase + 5,
                _ => connectPhase + DurationSeconds + DrainSeconds,
            };
            return TimeSpan.FromSeconds(seconds + 15);
        }
    }
}

/// <summary>
/// The command line (System.CommandLine): <c>[worker] SCENARIO [options]</c>. Flag names and their meaning are a
/// contract with scripts (tests/Load/side-by-side.sh, docs/benchmarks.md): keep them. Values are converted and
/// range-checked here so that every error message names the flag and the allowed range.
/// </summary>
internal static class LoadOptionsParser
{
    private static readonly string[] Scenarios = ["connect", "hold", "silent", "reconnect-storm", "pubsub"];

    private const string Description = """
        Broker.Load: MQTT fleet simulator for a broker on loopback.

        scenarios:
          connect           connect --clients at --rate; connect latency, achieved rate, failures by kind
          hold              connect, hold --duration with one PINGREQ per client every --keepalive
                            (spread uniformly); PINGRESP latency, unexpected disconnects,
                            broker RSS per connection and idle CPU with --broker-pid
          silent            hold, then --silent-fraction of the clients stop sending (socket stays open);
                            time from last packet to broker close in multiples of K, never-closed count,
                            healthy clients wrongly closed, healthy PINGRESP latency during the expiry window
          reconnect-storm   connect all, drop all at once, reconnect all at once; time until all are back
          pubsub            --mode fan-in|fan-out|pairs at --qos 0|1; delivered msg/s, end-to-end latency,
                            lost / duplicated QoS 1 messages (single process only)

        output: a summary table on stdout, then one line "RESULT {json}" with every figure;
        --report FILE.html adds a page with charts (connects, PINGRESP latency, expiry timing, throughput).
        """;

    // Every valued flag: name, value name, help text (defaults in brackets). Converted in Apply.
    private static readonly (string Name, string Value, string Help)[] ValuedFlags =
    [
        ("--host", "ADDR", "broker address, loopback only (127.0.0.0/8 or ::1) [127.0.0.1]"),
        ("--port", "N", "broker port [1883]"),
        ("--clients", "N", "number of clients (pubsub: see --publishers) [100]"),
        ("--keepalive", "K", "keep-alive seconds sent in CONNECT and ping period [60]"),
        ("--mqtt", "3|5", "protocol: 3 = 3.1.1, 5 = 5.0 [3]"),
        ("--clean-start", "true|false", "false: persistent sessions (5.0: Session Expiry Interval 3600), e.g. to measure a broker's persistence [true]"),
        ("--duration", "S", "hold / warm-up / publish time in seconds [10]"),
        ("--rate", "R", "connects per second (connect phases), or publishes per second in total (pubsub); 0 = unlimited [0]"),
        ("--max-pending", "N", "connects in flight at once; 0 = unlimited [1000]"),
        ("--connect-timeout", "S", "TCP connect start to CONNACK limit [10]"),
        ("--silent-fraction", "F", "silent: fraction of clients that go silent [0.5]"),
        ("--silence-window", "W", "silent: wait up to W*K + 2 s after going silent [3]"),
        ("--broker-pid", "PID", "sample the broker's RSS and CPU time from /proc"),
        ("--qos", "0|1", "pubsub QoS [0]"),
        ("--payload", "BYTES", "pubsub payload size, at least 20 [64]"),
        ("--mode", "M", "pubsub: fan-in | fan-out | pairs [pairs]"),
        ("--publishers", "P", "pubsub publishers (default from --mode and --clients)"),
        ("--subscribers", "S", "pubsub subscribers (default from --mode and --clients)"),
        ("--max-inflight", "N", "pubsub: unacknowledged QoS 1 messages per publisher [16]"),
        ("--drain", "S", "pubsub: wait for deliveries after publishing stops [5]"),
        ("--idle-clients", "N", "pubsub: N more clients that only ping every --keepalive; their PINGRESP latency is reported apart (idlePing) [0]"),
        ("--stall-subscribers", "N", "pubsub: the first N subscribers stop reading their socket for --stall-seconds, --stall-at after publishing starts [0]"),
        ("--stall-seconds", "S", "pubsub: how long stalled subscribers do not read [30]"),
        ("--stall-at", "S", "pubsub: seconds after publishing starts when they stop [2]"),
        ("--drop", "rst|fin", "reconnect-storm: how the clients drop [rst]"),
        ("--workers", "W", "worker processes (default: ceil(clients / clients-per-worker)); 1 runs in-process"),
        ("--clients-per-worker", "N", "at most N sockets per worker (open-files limit) [18000]"),
        ("--source-base", "ADDR", "first workers' source address, next ones +1 [127.0.0.2]"),
        ("--json-out", "FILE", "also write the RESULT JSON line to FILE"),
        ("--report", "FILE.html", "also write a self-contained HTML report with charts to FILE.html"),
        ("--deadline", "S", "hard stop after S seconds (default: derived from the options)"),
    ];

    // Written by Coordinator for its workers; hidden from --help.
    private static readonly string[] WorkerFlags = ["--worker-index", "--client-offset", "--client-count", "--source-address", "--run-id"];

    // Every valued flag may be given again: the last one wins (Coordinator appends the worker's slice to the user's flags).
    private static RootCommand Command(out Dictionary<string, Option<string[]>> valued, out Option<bool> noProgress, out Argument<string> scenario)
    {
        scenario = new Argument<string>("scenario") { Description = string.Join(" | ", Scenarios) };
        scenario.AcceptOnlyFromAmong(Scenarios);
        var root = new RootCommand(Description) { scenario };
        valued = new Dictionary<string, Option<string[]>>(StringComparer.Ordinal);
        foreach (var (name, value, help) in ValuedFlags)
        {
            var option = new Option<string[]>(name) { Description = help, HelpName = value, Arity = ArgumentArity.OneOrMore };
            valued[name] = option;
            root.Add(option);
        }
        foreach (var name in WorkerFlags)
        {
            var option = new Option<string[]>(name) { Hidden = true, Arity = ArgumentArity.OneOrMore };
            valued[name] = option;
            root.Add(option);
        }
        noProgress = new Option<bool>("--no-progress") { Description = "no live progress on stderr" };
        root.Add(noProgress);
        return root;
    }

    /// <summary>The usage text: scenarios, every flag with its default.</summary>
    public static void WriteHelp(TextWriter output)
    {
        var root = Command(out _, out _, out _);
        root.Parse(["--help"]).Invoke(new InvocationConfiguration { Output = output });
    }

    public static LoadOptions Parse(string[] args)
    {
        var options = new LoadOptions();
        int index = 0;
        if (index < args.Length && args[index] == "worker")
        {
            options = options with { IsWorker = true, Progress = false };
            index++;
        }

        if (index >= args.Length || args[index].StartsWith('-'))
        {
            throw new OptionsException("a scenario is required: connect | hold | silent | reconnect-storm | pubsub");
        }

        Scenario scenario = ParseScenario(args[index]);
        var root = Command(out var valued, out var noProgress, out _);
        ParseResult result = root.Parse(args[index..]);
        if (result.Errors.Count > 0)
        {
            throw new OptionsException($"{result.Errors[0].Message} (see --help)");
        }

        options = options with { Scenario = scenario };
        foreach (var (flag, option) in valued)
        {
            if (result.GetValue(option) is [.., var value])
            {
                options = Apply(options, flag, value);
            }
        }
        if (result.GetValue(noProgress))
        {
            options = options with { Progress = false };
        }

        Validate(options);
        return options;
    }

    private static LoadOptions Apply(LoadOptions options, string flag, string value) => flag switch
    {
        "--host" => options with { Host = value },
        "--port" => options with { Port = Int(flag, value, 1, 65535) },
        "--clients" => options with { Clients = Int(flag, value, 1, 10_000_000) },
        "--keepalive" => options with { KeepAliveSeconds = Int(flag, value, 1, 65535) },
        "--mqtt" => options with { ProtocolVersion = value switch
        {
            "3" or "3.1.1" or "4" => Wire.Mqtt311,
            "5" or "5.0" => Wire.Mqtt5,
            var v => throw new OptionsException($"--mqtt must be 3 or 5, not '{v}'"),
        } },
        "--clean-start" => options with { CleanStart = value switch
        {
            "true" => true,
            "false" => false,
            var v => throw new OptionsException($"--clean-start must be true or false, not '{v}'"),
        } },
        "--duration" => options with { DurationSeconds = Double(flag, value, 0, 86_400) },
        "--rate" => options with { Rate = Double(flag, value, 0, 10_000_000) },
        "--max-pending" => options with { MaxPendingConnects = Int(flag, value, 0, 10_000_000) },
        "--connect-timeout" => options with { ConnectTimeoutSeconds = Double(flag, value, 0.1, 3600) },
        "--silent-fraction" => options with { SilentFraction = Double(flag, value, 0, 1) },
        "--silence-window" => options with { SilenceWindowK = Double(flag, value, 0.1, 100) },
        "--broker-pid" => options with { BrokerPid = Int(flag, value, 1, int.MaxValue) },
        "--qos" => options with { Qos = Int(flag, value, 0, 1) },
        "--payload" => options with { PayloadBytes = Int(flag, value, PubSubPayload.MinLength, 1_000_000) },
        "--mode" => options with { Mode = value switch
        {
            "fan-in" => PubSubMode.FanIn,
            "fan-out" => PubSubMode.FanOut,
            "pairs" => PubSubMode.Pairs,
            var v => throw new OptionsException($"--mode must be fan-in, fan-out or pairs, not '{v}'"),
        } },
        "--publishers" => options with { Publishers = Int(flag, value, 1, 1_000_000) },
        "--subscribers" => options with { Subscribers = Int(flag, value, 1, 1_000_000) },
        "--max-inflight" => options with { MaxInFlight = Int(flag, value, 1, 65_000) },
        "--drain" => options with { DrainSeconds = Double(flag, value, 0, 600) },
        "--idle-clients" => options with { IdleClients = Int(flag, value, 0, 1_000_000) },
        "--stall-subscribers" => options with { StallSubscribers = Int(flag, value, 0, 1_000_000) },
        "--stall-seconds" => options with { StallSeconds = Double(flag, value, 0, 86_400) },
        "--stall-at" => options with { StallAtSeconds = Double(flag, value, 0, 86_400) },
        "--drop" => options with { AbortiveDrop = value switch
        {
            "rst" => true,
            "fin" => false,
            var v => throw new OptionsException($"--drop must be rst or fin, not '{v}'"),
        } },
        "--workers" => options with { Workers = Int(flag, value, 1, 250) },
        "--clients-per-worker" => options with { ClientsPerWorker = Int(flag, value, 1, 60_000) },
        "--source-base" => options with { SourceBase = Address(flag, value) },
        "--json-out" => options with { JsonOut = value },
        "--report" => options with { ReportPath = value },
        "--deadline" => options with { DeadlineSeconds = Double(flag, value, 1, 86_400) },
        "--worker-index" => options with { WorkerIndex = Int(flag, value, 0, 1000) },
        "--client-offset" => options with { ClientOffset = Int(flag, value, 0, int.MaxValue) },
        "--client-count" => options with { ClientCount = Int(flag, value, 0, int.MaxValue) },
        "--source-address" => options with { SourceAddress = Address(flag, value) },
        "--run-id" => options with { RunId = value },
        _ => throw new OptionsException($"unknown option '{flag}' (see --help)"),
    };

    private static void Validate(LoadOptions options)
    {
        if (!IPAddress.TryParse(options.Host, out IPAddress? host))
        {
            throw new OptionsException($"--host must be an IP address on loopback, not '{options.Host}'");
        }

        if (!IPAddress.IsLoopback(host))
        {
            throw new OptionsException($"--host {options.Host} refused: only loopback targets (127.0.0.0/8, ::1) are allowed");
        }

        if (options.SourceAddress is { } source && !IPAddress.IsLoopback(source))
        {
            throw new OptionsException("--source-address must be a loopback address");
        }

        if (!IPAddress.IsLoopback(options.SourceBase))
        {
            throw new OptionsException("--source-base must be a loopback address");
        }

        if (options.Scenario == Scenario.PubSub)
        {
            if (options.Workers is > 1)
            {
                throw new OptionsException("--workers: pubsub runs in a single process");
            }

            if (options.TotalClients > options.ClientsPerWorker)
            {
                throw new OptionsException($"pubsub: publishers + subscribers ({options.TotalClients}) must not exceed --clients-per-worker ({options.ClientsPerWorker})");
            }
        }

        if (!options.IsWorker && options.WorkerCount > 1 && host.AddressFamily != System.Net.Sockets.AddressFamily.InterNetwork)
        {
            throw new OptionsException("several workers need an IPv4 --host (each worker uses its own 127.0.0.x source address)");
        }

        int perWorker = (int)Math.Ceiling(options.TotalClients / (double)options.WorkerCount);
        if (!options.IsWorker && perWorker > options.ClientsPerWorker)
        {
            throw new OptionsException($"--workers {options.WorkerCount} would put {perWorker} clients in one process; the limit is --clients-per-worker {options.ClientsPerWorker}");
        }
    }

    private static Scenario ParseScenario(string name) => name switch
    {
        "connect" => Scenario.Connect,
        "hold" => Scenario.Hold,
        "silent" => Scenario.Silent,
        "reconnect-storm" => Scenario.ReconnectStorm,
        "pubsub" => Scenario.PubSub,
        _ => throw new OptionsException($"unknown scenario '{name}': connect | hold | silent | reconnect-storm | pubsub"),
    };

    private static int Int(string flag, string value, int min, int max)
    {
        if (!int.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out int result) || result < min || result > max)
        {
            throw new OptionsException($"{flag} must be an integer in [{min}, {max}], not '{value}'");
        }

        return result;
    }

    private static double Double(string flag, string value, double min, double max)
    {
        if (!double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out double result) || result < min || result > max)
        {
            throw new OptionsException($"{flag} must be a number in [{min}, {max}], not '{value}'");
        }

        return result;
    }

    private static IPAddress Address(string flag, string value) =>
        IPAddress.TryParse(value, out IPAddress? address) ? address : throw new OptionsException($"{flag} must be an IP address, not '{value}'");
}

internal sealed class OptionsException(string message) : Exception(message);
