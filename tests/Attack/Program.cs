using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Broker.Attack;

/// <summary>
/// Runs attacks of issue #11, each against a fresh broker process with the good QoS 1 pair beside it, and records
/// whether the broker stayed up, the pair's losses, RSS growth, log size and CPU. Usage (tests/Attack/run.sh does it):
///   dotnet Attack.dll --broker PUBLISH_DIR/Broker.dll --appsettings appsettings.json --attack NAME|all [--results FILE]
/// </summary>
internal static class Program
{
    // Set by the attack driver: the RSS the current attack's growth is measured from.
    public static long Baseline;
    public static long StalledReaderGrowth;
    public static int StalledReaderPayload;
    public static int StalledReaders;

    private const long MaxLogBytes = 2L * 1024 * 1024;

    public static async Task<int> Main(string[] args)
    {
        string? broker = null, appSettings = null, attack = "all", results = null;
        for (int i = 0; i + 1 < args.Length; i += 2)
        {
            switch (args[i])
            {
                case "--broker": broker = args[i + 1]; break;
                case "--appsettings": appSettings = args[i + 1]; break;
                case "--attack": attack = args[i + 1]; break;
                case "--results": results = args[i + 1]; break;
                default: Console.Error.WriteLine($"unknown option {args[i]}"); return 2;
            }
        }
        if (broker is null || appSettings is null)
        {
            Console.Error.WriteLine("usage: Attack --broker Broker.dll --appsettings appsettings.json [--attack NAME|all] [--results FILE]");
            Console.Error.WriteLine("attacks: " + string.Join(", ", Attacks.All.Select(a => a.Name)));
            return 2;
        }
        var selected = attack == "all" ? Attacks.All : Attacks.All.Where(a => a.Name == attack).ToArray();
        if (selected.Length == 0)
        {
            Console.Error.WriteLine($"no attack named {attack}; attacks: " + string.Join(", ", Attacks.All.Select(a => a.Name)));
            return 2;
        }
        int failed = 0;
        foreach (var definition in selected)
        {
            var outcome = await RunOneAsync(definition, broker, appSettings);
            Console.WriteLine(outcome.Markdown());
            if (results is not null)
            {
                File.AppendAllText(results, JsonSerializer.Serialize(outcome) + "\n");
            }
            failed += outcome.Passed ? 0 : 1;
        }
        return failed == 0 ? 0 : 1;
    }

    private static async Task<Outcome> RunOneAsync(AttackDefinition definition, string brokerDll, string appSettings)
    {
        Console.Error.WriteLine($"== {definition.Name}: {definition.Description}");
        using var cancel = new CancellationTokenSource(TimeSpan.FromMinutes(4));
        using var broker = await BrokerUnderTest.StartAsync(brokerDll, appSettings, definition.OpenFiles, definition.BrokerArgs ?? [], definition.Files);
        await using var sampler = new ProcessSampler(broker);
        var context = new AttackContext(definition.Name, broker, sampler, cancel.Token);
        var failures = context.Failures;
        await using var pair = await GoodPair.StartAsync(broker.MqttEndPoint, messagesPerSecond: 200);
        // Warm-up: JIT, first GCs, the pair's steady state; the baseline is taken after it.
        await Task.Delay(TimeSpan.FromSeconds(3));
        Baseline = sampler.ResetPeak();
        var (_, cpuStart) = sampler.Now();
        var attackTime = Stopwatch.StartNew();
        try
        {
            await definition.RunAsync(context);
        }
        catch (Exception e)
        {
            failures.Add($"probe error: {e.GetType().Name}: {e.Message}");
        }
        double attackSeconds = attackTime.Elapsed.TotalSeconds;
        var (_, cpuEnd) = sampler.Now();
        long peak = sampler.PeakRss;
        // Settle, then the pair drains and a fresh client must still connect.
        await Task.Delay(TimeSpan.FromSeconds(2));
        var goodPair = await pair.FinishAsync(TimeSpan.FromSeconds(30));
        bool alive = !broker.HasExited && await context.FreshClientConnectsAsync("probe-after", TimeSpan.FromSeconds(10)) is not null;
        long endRss = sampler.CurrentRss;
        long logBytes = broker.LogBytes;
        if (!alive)
        {
            failures.Add(broker.HasExited ? "the broker exited" : "the broker did not accept a new client after the attack");
        }
        if (goodPair.Lost > 0)
        {
            failures.Add($"the good pair lost {goodPair.Lost} acknowledged messages");
        }
        if (goodPair.Events.Length > 0)
        {
            failures.Add("the good pair was disconnected: " + string.Join("; ", goodPair.Events));
        }
        if (logBytes >= MaxLogBytes)
        {
            failures.Add($"log {logBytes:N0} bytes (target < 2 MB)");
        }
        long growth = peak - Baseline;
        if (definition.MaxRssGrowthBytes is long maxGrowth && growth >= maxGrowth)
        {
            failures.Add($"RSS growth {growth / 1e6:F1} MB (target < {maxGrowth / 1e6:F0} MB)");
        }
        if (definition.Name == "stalled-readers")
        {
            // The documented per-session limits: output not yet taken by the kernel (MaxPendingOutputBytes, plus the
            // message being written, in a pooled buffer of up to twice that), and the queue (MaxQueuedBytes, twice for a
            // client still counted as reading) and in-flight window (MaxInflightMessages, MaxInflightBytes + one message),
            // whose messages the 300 sessions share here (one publisher, all stalled at about the same point: one copy
            // of each; readers stalled at different points could each hold different messages, up to 300 times this).
            const long pendingOutput = 1L << 20, queuedBytes = 4L << 20, inflightMessages = 100, inflightBytes = 4L << 20;
            long perSessionOwn = 2 * (pendingOutput + StalledReaderPayload);
            long shared = 2 * queuedBytes + Math.Min(inflightMessages * StalledReaderPayload, inflightBytes + StalledReaderPayload);
            long bound = StalledReaders * perSessionOwn + shared;
            context.Figure("bound from the limits", $"{StalledReaders} x 2 x (MaxPendingOutputBytes 1 MiB + 64 KB) + 2 x MaxQueuedBytes 4 MiB + in flight min(100 x 64 KB, MaxInflightBytes 4 MiB + 64 KB) = {bound / 1e6:F0} MB");
            if (StalledReaderGrowth > bound)
            {
                failures.Add($"RSS growth {StalledReaderGrowth / 1e6:F0} MB above the bound {bound / 1e6:F0} MB");
            }
        }
        var outcome = new Outcome(definition.Name, definition.Description, definition.Before, alive, goodPair.ToString(), goodPair.Lost,
            Baseline, peak, growth, endRss, logBytes, 100 * (cpuEnd - cpuStart) / attackSeconds, attackSeconds,
            context.Figures, [.. failures], failures.Count == 0);
        if (Environment.GetEnvironmentVariable("ATTACK_PIDFILE") is { Length: > 0 } pidFile)
        {
            // The broker's log beside the results, for reading afterwards (the broker's directory is deleted).
            File.Copy(broker.LogPath, Path.Combine(Path.GetDirectoryName(pidFile)!, definition.Name + ".log"), overwrite: true);
        }
        Console.Error.WriteLine(string.Join("\n", context.Figures.Select(f => $"   {f.Key}: {f.Value}")));
        Console.Error.WriteLine($"   good pair: {goodPair}");
        Console.Error.WriteLine($"   alive {alive}; RSS {Baseline / 1e6:F0} -> peak {peak / 1e6:F0} MB (+{growth / 1e6:F1}), end {endRss / 1e6:F0} MB; log {logBytes:N0} B; CPU {outcome.CpuPercent:F0} % over {attackSeconds:F1} s");
        Console.Error.WriteLine(failures.Count == 0 ? "   PASS" : "   FAIL: " + string.Join("; ", failures));
        return outcome;
    }
}

internal sealed record Outcome(
    string Name, string Description, string Before, bool Alive, string GoodPair, long Lost,
    long BaselineRss, long PeakRss, long RssGrowth, long EndRss, long LogBytes, double CpuPercent, double AttackSeconds,
    Dictionary<string, string> Figures, string[] Failures, bool Passed)
{
    public string Markdown()
    {
        var figures = string.Join("; ", Figures.Select(f => $"{f.Key}: {f.Value}"));
        return string.Create(CultureInfo.InvariantCulture,
            $"| {Name} | {Before} | {(Alive ? "up" : "**down**")}; lost {Lost}; RSS +{RssGrowth / 1e6:F1} MB (peak {PeakRss / 1e6:F0} MB); log {LogBytes / 1024.0:F0} KB; CPU {CpuPercent:F0} % over {AttackSeconds:F0} s; {figures} | {(Passed ? "pass" : "**FAIL**: " + string.Join("; ", Failures))} |");
    }
}
