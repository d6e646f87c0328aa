using System.Diagnostics;

namespace Broker.Load;

/// <summary>
/// Runs one scenario over this process's slice of the clients. Phase names are barriers: in a
/// multi-process run every worker reaches a phase before any proceeds, and the coordinator
/// samples the broker there ("connected", "hold-end", ...).
/// </summary>
internal static class ScenarioRunner
{
    private const int DefaultReceiveCapacity = 256;

    /// <summary>
    /// A whole single-process run, as the command line does it: the deadline derived from the options
    /// (or <paramref name="cancellationToken"/>) stops the scenario, which still reports what it measured.
    /// </summary>
    public static async Task<LoadReport> RunInProcessAsync(LoadOptions options, CancellationToken cancellationToken, ProgressView? progress = null)
    {
        if (options.WorkerCount > 1)
        {
            throw new ArgumentException($"{options.TotalClients} clients need {options.WorkerCount} worker processes; run them from the command line", nameof(options));
        }

        long started = Stopwatch.GetTimestamp();
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(options.Deadline);
        var probe = new BrokerProbe(options.BrokerPid);
        probe.Sample("start");
        WorkerResult result = await RunAsync(options, new InProcessChannel(probe, progress), deadline.Token);
        probe.Sample("end");
        (string summary, string json) = Report.Build(options, result, probe, workers: 1, workersFailed: 0, Stopwatch.GetElapsedTime(started).TotalSeconds);
        return new LoadReport(result, summary, json);
    }

    public static async Task<WorkerResult> RunAsync(LoadOptions options, IRunChannel channel, CancellationToken cancellationToken)
    {
        int count = options.ClientCount ?? options.TotalClients;
        int capacity = options.Scenario == Scenario.PubSub ? PubSubTraffic.ReceiveCapacity(options) : DefaultReceiveCapacity;
        var fleet = new Fleet(options, channel, count, capacity);
        using var ticks = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        Task tickLoop = fleet.RunAsync(ticks.Token);
        try
        {
            Task run = options.Scenario switch
            {
                Scenario.Connect => ConnectAsync(fleet, channel, cancellationToken),
                Scenario.Hold => HoldAsync(fleet, channel, cancellationToken),
                Scenario.Silent => SilentAsync(fleet, channel, cancellationToken),
                Scenario.ReconnectStorm => ReconnectStormAsync(fleet, channel, cancellationToken),
                _ => PubSubAsync(fleet, channel, cancellationToken),
            };
            await run;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            fleet.Metrics.Count("deadlineExceeded");
            Console.Error.WriteLine($"deadline reached in phase '{fleet.Phase}': reporting what was measured so far");
        }
        finally
        {
            fleet.AddFinalTimelinePoint();
            fleet.Phase = "closing";
            fleet.CloseAll(sendDisconnect: true, abortive: false);
            ticks.Cancel();
            await tickLoop.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        fleet.Metrics.Counters["clients"] = count;
        return fleet.Metrics.ToResult();
    }

    private static async Task ConnectAllAsync(Fleet fleet, IRunChannel channel, CancellationToken cancellationToken)
    {
        fleet.Phase = "connecting";
        // In pubsub, --rate paces publishing, not connecting.
        double rate = fleet.Options.Scenario == Scenario.PubSub ? 0 : fleet.Options.Rate;
        ConnectRound round = await fleet.ConnectAsync(rate, fleet.Metrics.Histogram(HistogramNames.Connect), "connectFailures", cancellationToken);
        fleet.Metrics.Timings["connectSeconds"] = round.SecondsToLastConnack;
        await channel.PhaseAsync("connected", cancellationToken);
    }

    private static Task ConnectAsync(Fleet fleet, IRunChannel channel, CancellationToken cancellationToken) =>
        ConnectAllAsync(fleet, channel, cancellationToken);

    private static async Task HoldAsync(Fleet fleet, IRunChannel channel, CancellationToken cancellationToken)
    {
        // Pings run from the first connect: a slow connect phase must not let early clients expire.
        fleet.StartPings();
        await ConnectAllAsync(fleet, channel, cancellationToken);
        fleet.Phase = "hold";
        long heldFrom = Stopwatch.GetTimestamp();
        // Right after a connect burst the broker is still settling (tiered JIT, collections of the
        // connect phase's garbage); the steady idle cost is sampled from this barrier to the end.
        TimeSpan duration = TimeSpan.FromSeconds(fleet.Options.DurationSeconds);
        TimeSpan settle = LoadOptions.HoldSettleTime(duration);
        await fleet.DelayAsync(settle, cancellationToken);
        await channel.PhaseAsync("hold-steady", cancellationToken);
        await fleet.DelayAsync(duration - settle, cancellationToken);
        fleet.Metrics.Timings["holdSeconds"] = Stopwatch.GetElapsedTime(heldFrom).TotalSeconds;
        await channel.PhaseAsync("hold-end", cancellationToken);
    }

    private static async Task SilentAsync(Fleet fleet, IRunChannel channel, CancellationToken cancellationToken)
    {
        LoadOptions options = fleet.Options;
        fleet.StartPings();
        await ConnectAllAsync(fleet, channel, cancellationToken);
        fleet.Phase = "warm-up";
        await fleet.DelayAsync(TimeSpan.FromSeconds(options.DurationSeconds), cancellationToken);
        await channel.PhaseAsync("silence-start", cancellationToken);

        fleet.Phase = "silence";
        long silentFrom = Stopwatch.GetTimestamp();
        long unexpectedBefore = Volatile.Read(ref fleet.Metrics.UnexpectedDisconnects);
        int silent = fleet.StartSilence(options.SilentFraction);
        FleetMetrics metrics = fleet.Metrics;
        await fleet.WaitUntilAsync(
            () => Volatile.Read(ref metrics.SilentClosed) >= silent,
            TimeSpan.FromSeconds(options.KeepAliveSeconds * options.SilenceWindowK + LoadOptions.SilenceMarginSeconds),
            cancellationToken);
        metrics.Timings["silenceWaitSeconds"] = Stopwatch.GetElapsedTime(silentFrom).TotalSeconds;
        metrics.Counters["silentClients"] = silent;
        metrics.Counters["silentNeverClosed"] = fleet.Clients.Count(c => c.Silent && c.State == ClientState.Connected);
        metrics.Counters["healthyClosedDuringSilence"] = Volatile.Read(ref metrics.UnexpectedDisconnects) - unexpectedBefore;
        await channel.PhaseAsync("silence-end", cancellationToken);
    }

    private static async Task ReconnectStormAsync(Fleet fleet, IRunChannel channel, CancellationToken cancellationToken)
    {
        fleet.StartPings();
        await ConnectAllAsync(fleet, channel, cancellationToken);
        fleet.Phase = "drop";
        fleet.CloseAll(sendDisconnect: false, abortive: fleet.Options.AbortiveDrop);
        await channel.PhaseAsync("dropped", cancellationToken);

        fleet.Phase = "reconnecting";
        ConnectRound round = await fleet.ConnectAsync(0, fleet.Metrics.Histogram(HistogramNames.Reconnect), "reconnectFailures", cancellationToken);
        fleet.Metrics.Timings["reconnectAllBackSeconds"] = round.SecondsToLastConnack;
        fleet.Metrics.Counters["reconnectSucceeded"] = round.Succeeded;
        fleet.Metrics.Counters["reconnectFailed"] = round.Failed;
        await channel.PhaseAsync("reconnected", cancellationToken);
    }

    private static async Task PubSubAsync(Fleet fleet, IRunChannel channel, CancellationToken cancellationToken)
    {
        LoadOptions options = fleet.Options;
        var traffic = new PubSubTraffic(fleet);
        fleet.Traffic = traffic;
        fleet.StartPings();
        await ConnectAllAsync(fleet, channel, cancellationToken);

        fleet.Phase = "subscribing";
        traffic.SubscribeAll();
        int subscribers = options.SubscriberCount;
        if (!await fleet.WaitUntilAsync(() => traffic.SubAcked >= subscribers, TimeSpan.FromSeconds(10), cancellationToken))
        {
            fleet.Metrics.Count("subscribeTimeouts");
        }

        await channel.PhaseAsync("subscribed", cancellationToken);
        fleet.Phase = "publishing";
        traffic.StartPublishing();
        await fleet.DelayAsync(TimeSpan.FromSeconds(options.DurationSeconds), cancellationToken);
        traffic.StopPublishing();

        fleet.Phase = "draining";
        await fleet.WaitUntilAsync(
            () => traffic.InFlight == 0 && Volatile.Read(ref fleet.Metrics.Delivered) >= traffic.ExpectedDeliveries,
            TimeSpan.FromSeconds(options.DrainSeconds),
            cancellationToken);
        traffic.Report(fleet.Metrics);
        await channel.PhaseAsync("drained", cancellationToken);
    }
}

/// <summary>A finished run: the raw measurements, the human summary and the RESULT JSON.</summary>
internal sealed record LoadReport(WorkerResult Result, string Summary, string Json)
{
    public long Counter(string name) => Result.Counters.GetValueOrDefault(name);

    public LatencyHistogram Histogram(string name) =>
        Result.Histograms.TryGetValue(name, out HistogramData? data) ? LatencyHistogram.FromData(data) : new LatencyHistogram();
}
