using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Broker.Load;

/// <summary>Per-client traffic beyond connect and ping (pubsub); called from receive threads and the tick.</summary>
internal interface IFleetTraffic
{
    void OnTick(long now);
    void OnPublish(FleetClient client, int qos, ReadOnlySpan<byte> payload, long now);
    void OnPubAck(FleetClient client, byte reasonCode);
    void OnSubAck(FleetClient client, byte reasonCode);
}

/// <summary>
/// All clients of one process and the single tick that drives them: connect pacing and timeouts,
/// the ping schedule, traffic, partial-send flushes, waits and the progress line. Nothing else in
/// the process keeps a timer.
/// </summary>
internal sealed class Fleet
{
    private static readonly TimeSpan s_tickPeriod = TimeSpan.FromMilliseconds(2);

    private readonly IRunChannel _channel;
    private readonly EndPoint _broker;
    private readonly IPAddress? _source;
    private readonly ConcurrentQueue<FleetClient> _flushQueue = new();
    private readonly List<(Func<bool> Done, long DeadlineTicks, TaskCompletionSource<bool> Signal)> _waiters = [];
    private readonly Lock _waitersLock = new();
    private readonly long _startTicks = Stopwatch.GetTimestamp();
    private long _nextProgressTicks;

    // The current connect round; only one runs at a time.
    private int[] _roundOrder = [];
    private int _roundNext;
    private int _timeoutHead;
    private double _roundRate;
    private long _roundStartTicks;
    private int _roundResolved;
    private int _roundPending;
    private long _roundLastConnackTicks;
    private LatencyHistogram? _roundHistogram;
    private string _roundFailureCounter = "connectFailures.";
    private TaskCompletionSource? _roundDone;

    // The ping schedule: slot s belongs to client s % N at time s*K/N after the epoch, so every
    // client pings exactly once per K and consecutive pings are K/N apart.
    private volatile bool _pingsEnabled;
    private long _pingEpochTicks;
    private long _lastPingSlot;
    private long _silenceStartTicks = long.MaxValue;

    public Fleet(LoadOptions options, IRunChannel channel, int clientCount, int receiveCapacity)
    {
        Options = options;
        _channel = channel;
        IPAddress host = IPAddress.Parse(options.Host);
        _broker = new IPEndPoint(host, options.Port);
        _source = options.SourceAddress;
        byte[] slab = GC.AllocateUninitializedArray<byte>(clientCount * receiveCapacity);
        Clients = new FleetClient[clientCount];
        for (int i = 0; i < clientCount; i++)
        {
            string id = $"load-{options.RunId}-{options.ClientOffset + i}";
            Clients[i] = new FleetClient(this, i, id, slab, i * receiveCapacity, receiveCapacity);
        }

        _nextProgressTicks = _startTicks + Stopwatch.Frequency;
        Metrics.AddTimelinePoint(0);
    }

    public LoadOptions Options { get; }
    public FleetClient[] Clients { get; }
    public FleetMetrics Metrics { get; } = new();
    public IFleetTraffic? Traffic { get; set; }
    public string Phase { get; set; } = "start";

    /// <summary>The last point of the report's timeline, at the end of the run (the tick adds one a second before that).</summary>
    public void AddFinalTimelinePoint() => Metrics.AddTimelinePoint((int)Math.Ceiling(Stopwatch.GetElapsedTime(_startTicks).TotalSeconds));

    public Task RunAsync(CancellationToken cancellationToken) => Task.Run(() => TickLoopAsync(cancellationToken), cancellationToken);

    /// <summary>Connects every client at <paramref name="rate"/> per second (0: unlimited, still bounded by --max-pending); completes when every attempt has succeeded or failed.</summary>
    public async Task<ConnectRound> ConnectAsync(double rate, LatencyHistogram histogram, string failureCounter, CancellationToken cancellationToken)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_waitersLock)
        {
            _roundOrder = Enumerable.Range(0, Clients.Length).ToArray();
            _roundNext = 0;
            _timeoutHead = 0;
            _roundRate = rate;
            _roundResolved = 0;
            _roundPending = 0;
            _roundLastConnackTicks = 0;
            _roundHistogram = histogram;
            _roundFailureCounter = failureCounter + ".";
            _roundStartTicks = Stopwatch.GetTimestamp();
            _roundDone = done;
        }

        if (Clients.Length == 0)
        {
            done.TrySetResult();
        }

        long succeededBefore = Volatile.Read(ref Metrics.ConnectsSucceeded);
        long failedBefore = Volatile.Read(ref Metrics.ConnectsFailed);
        await done.Task.WaitAsync(cancellationToken);
        long last = Volatile.Read(ref _roundLastConnackTicks);
        return new ConnectRound(
            (int)(Volatile.Read(ref Metrics.ConnectsSucceeded) - succeededBefore),
            (int)(Volatile.Read(ref Metrics.ConnectsFailed) - failedBefore),
            last == 0 ? 0 : Stopwatch.GetElapsedTime(_roundStartTicks, last).TotalSeconds,
            Stopwatch.GetElapsedTime(_roundStartTicks).TotalSeconds);
    }

    /// <summary>Completes with true when <paramref name="done"/> holds (checked every tick), false after <paramref name="timeout"/>.</summary>
    public Task<bool> WaitUntilAsync(Func<bool> done, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var signal = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        long deadline = Stopwatch.GetTimestamp() + (long)(timeout.TotalSeconds * Stopwatch.Frequency);
        lock (_waitersLock)
        {
            _waiters.Add((done, deadline, signal));
        }

        return signal.Task.WaitAsync(cancellationToken);
    }

    public Task DelayAsync(TimeSpan duration, CancellationToken cancellationToken) =>
        WaitUntilAsync(static () => false, duration, cancellationToken);

    public void StartPings()
    {
        _pingEpochTicks = Stopwatch.GetTimestamp();
        _lastPingSlot = 0;
        _pingsEnabled = true;
    }

    /// <summary>Marks every client selected by the fraction silent: it keeps its socket open and sends nothing more.</summary>
    public int StartSilence(double fraction)
    {
        Volatile.Write(ref _silenceStartTicks, Stopwatch.GetTimestamp());
        int silent = 0;
        for (int i = 0; i < Clients.Length; i++)
        {
            // Spread evenly across the index range, so silent clients are spread across ping phases too.
            if ((long)((i + 1) * fraction) > (long)(i * fraction))
            {
                Clients[i].Silent = true;
                silent++;
            }
        }

        return silent;
    }

    public void CloseAll(bool sendDisconnect, bool abortive)
    {
        foreach (FleetClient client in Clients)
        {
            client.Close(sendDisconnect, abortive);
        }
    }

    public void QueueFlush(FleetClient client) => _flushQueue.Enqueue(client);

    // Clients that stopped reading on purpose (pubsub --stall-subscribers); the tick resumes them.
    private readonly System.Collections.Concurrent.ConcurrentQueue<FleetClient> _parked = new();

    public void Park(FleetClient client) => _parked.Enqueue(client);

    /// <summary>Clients from this index on are idle pingers (pubsub --idle-clients): their PINGRESP latency is reported apart.</summary>
    public int IdleFrom { get; set; } = int.MaxValue;

    private void ResumeParked(long now)
    {
        int count = _parked.Count;
        for (int i = 0; i < count && _parked.TryDequeue(out var client); i++)
        {
            if (!client.TryResumeReading(now))
            {
                _parked.Enqueue(client);
            }
        }
    }

    public void OnConnected(FleetClient client, long now)
    {
        Interlocked.Increment(ref Metrics.ConnectedNow);
        Interlocked.Increment(ref Metrics.ConnectsSucceeded);
        _roundHistogram?.RecordTicks(now - client.ConnectStartTicks);
        InterlockedMax(ref _roundLastConnackTicks, now);
        ResolveOne();
    }

    public void OnConnectFailed(FleetClient client, string kind)
    {
        Interlocked.Increment(ref Metrics.ConnectsFailed);
        Metrics.Count(_roundFailureCounter + kind);
        ResolveOne();
    }

    public void OnClosedByBroker(FleetClient client, string kind, int reasonCode)
    {
        long now = Stopwatch.GetTimestamp();
        Interlocked.Decrement(ref Metrics.ConnectedNow);
        if (reasonCode >= 0)
        {
            Metrics.Count($"disconnectReasons.0x{reasonCode:X2}");
        }

        if (client.Silent)
        {
            Interlocked.Increment(ref Metrics.SilentClosed);
            Metrics.Count("silentCloseKinds." + kind);
            Metrics.Histogram(HistogramNames.SilentClose).RecordTicks(now - client.LastSendTicks);
            return;
        }

        Interlocked.Increment(ref Metrics.UnexpectedDisconnects);
        Metrics.Count("unexpectedDisconnectKinds." + kind);
        if (now >= Volatile.Read(ref _silenceStartTicks))
        {
            Metrics.Count("healthyClosedDuringSilence");
        }
    }

    public void OnClosedByUs(FleetClient client) => Interlocked.Decrement(ref Metrics.ConnectedNow);

    public void OnPong(FleetClient client, long now)
    {
        long sent = Interlocked.Exchange(ref client.PingSentTicks, 0);
        if (sent == 0)
        {
            return;
        }

        Interlocked.Increment(ref Metrics.PongsReceived);
        Metrics.RecordPing(now - sent);
        if (client.Index >= IdleFrom)
        {
            Metrics.Histogram(HistogramNames.IdlePing).RecordTicks(now - sent);
        }
        if (sent >= Volatile.Read(ref _silenceStartTicks))
        {
            Metrics.Histogram(HistogramNames.PingDuringExpiry).RecordTicks(now - sent);
        }
    }

    public static string KindOf(SocketError error, string prefix) => error switch
    {
        SocketError.ConnectionRefused => prefix + "refused",
        SocketError.TimedOut => prefix + "timeout",
        SocketError.ConnectionReset => prefix + "reset",
        SocketError.ConnectionAborted => prefix + "aborted",
        SocketError.OperationAborted => prefix + "aborted",
        _ => prefix + error.ToString().ToLowerInvariant(),
    };

    private void ResolveOne()
    {
        Interlocked.Decrement(ref _roundPending);
        Interlocked.Increment(ref _roundResolved);
    }

    private async Task TickLoopAsync(CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(s_tickPeriod, TimeProvider.System);
        try
        {
            while (await timer.WaitForNextTickAsync(cancellationToken))
            {
                Tick(Stopwatch.GetTimestamp());
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private void Tick(long now)
    {
        AdvanceConnectRound(now);
        if (_pingsEnabled)
        {
            SendDuePings(now);
        }

        Traffic?.OnTick(now);
        if (!_parked.IsEmpty)
        {
            ResumeParked(now);
        }
        FlushPartialSends();
        CompleteWaiters(now);
        if (now >= _nextProgressTicks)
        {
            _nextProgressTicks = now + Stopwatch.Frequency;
            Metrics.AddTimelinePoint((int)Math.Round(Stopwatch.GetElapsedTime(_startTicks, now).TotalSeconds));
            _channel.Progress(Metrics.Snapshot(), Phase);
        }
    }

    private void AdvanceConnectRound(long now)
    {
        TaskCompletionSource? done = _roundDone;
        if (done is null)
        {
            return;
        }

        long allowed = _roundRate > 0
            ? 1 + (long)(Stopwatch.GetElapsedTime(_roundStartTicks, now).TotalSeconds * _roundRate)
            : long.MaxValue;
        int maxPending = Options.MaxPendingConnects;
        while (_roundNext < _roundOrder.Length
            && _roundNext < allowed
            && (maxPending == 0 || Volatile.Read(ref _roundPending) < maxPending))
        {
            Interlocked.Increment(ref _roundPending);
            Clients[_roundOrder[_roundNext++]].StartConnect(_broker, _source);
        }

        // Attempts start in round order, so the oldest unresolved one is at the head.
        long timeoutTicks = (long)(Options.ConnectTimeoutSeconds * Stopwatch.Frequency);
        while (_timeoutHead < _roundNext)
        {
            FleetClient client = Clients[_roundOrder[_timeoutHead]];
            if (client.State is ClientState.Connecting or ClientState.AwaitingConnack)
            {
                if (now - client.ConnectStartTicks < timeoutTicks)
                {
                    break;
                }

                client.Terminate("timeout");
            }

            _timeoutHead++;
        }

        if (Volatile.Read(ref _roundResolved) >= _roundOrder.Length)
        {
            _roundDone = null;
            done.TrySetResult();
        }
    }

    private void SendDuePings(long now)
    {
        int n = Clients.Length;
        if (n == 0)
        {
            return;
        }

        long periodTicks = Options.KeepAliveSeconds * Stopwatch.Frequency;
        long slot = (now - _pingEpochTicks) * n / periodTicks;
        // A late tick never sends a client two pings at once.
        long first = Math.Max(_lastPingSlot + 1, slot - n + 1);
        for (long s = first; s <= slot; s++)
        {
            FleetClient client = Clients[(int)(s % n)];
            if (client.State != ClientState.Connected || client.Silent)
            {
                continue;
            }

            // Timestamped at the send, not at the tick start: a tick slowed by a connect burst
            // must not show up as broker latency.
            if (Interlocked.Exchange(ref client.PingSentTicks, Stopwatch.GetTimestamp()) != 0)
            {
                Interlocked.Increment(ref Metrics.PongsMissing);
            }

            if (client.TrySend(Wire.PingReq))
            {
                Interlocked.Increment(ref Metrics.PingsSent);
            }
            else
            {
                Interlocked.Increment(ref Metrics.PingsBlocked);
            }
        }

        _lastPingSlot = Math.Max(_lastPingSlot, slot);
    }

    private void FlushPartialSends()
    {
        int count = _flushQueue.Count;
        for (int i = 0; i < count && _flushQueue.TryDequeue(out FleetClient? client); i++)
        {
            if (!client.FlushPending())
            {
                _flushQueue.Enqueue(client);
            }
        }
    }

    private void CompleteWaiters(long now)
    {
        lock (_waitersLock)
        {
            for (int i = _waiters.Count - 1; i >= 0; i--)
            {
                (Func<bool> isDone, long deadline, TaskCompletionSource<bool> signal) = _waiters[i];
                bool satisfied = isDone();
                if (satisfied || now >= deadline)
                {
                    signal.TrySetResult(satisfied);
                    _waiters.RemoveAt(i);
                }
            }
        }
    }

    private static void InterlockedMax(ref long target, long value)
    {
        long seen = Volatile.Read(ref target);
        while (value > seen && Interlocked.CompareExchange(ref target, value, seen) != seen)
        {
            seen = Volatile.Read(ref target);
        }
    }
}

internal sealed record ConnectRound(int Succeeded, int Failed, double SecondsToLastConnack, double SecondsToResolve);

internal static class HistogramNames
{
    public const string Connect = "connect";
    public const string Reconnect = "reconnect";
    public const string Ping = "ping";
    public const string PingDuringExpiry = "pingDuringExpiry";
    public const string IdlePing = "idlePing";
    public const string StalledEndToEnd = "stalledEndToEnd";
    public const string SilentClose = "silentClose";
    public const string EndToEnd = "endToEnd";
}
