using System.Net;
using System.Net.Sockets;

namespace Broker.Transport;

/// <summary>What the <see cref="SocketEngineLagProbe"/> measures goes here.</summary>
internal interface ISocketEngineLagObserver
{
    /// <summary>A probe was answered after <paramref name="lag"/> (on the socket engine's thread).</summary>
    void OnLagMeasured(TimeSpan lag);

    /// <summary>A probe written <paramref name="age"/> ago is still unanswered (on a publishing or a timer thread).</summary>
    void OnProbeUnanswered(TimeSpan age);

    /// <summary>Measuring ended (the pair broke, or the broker stops): nobody may stay held for it.</summary>
    void OnStopped();

    /// <summary>True while the observer needs measurements even without traffic (clients held until it catches up).</summary>
    bool NeedsProbes { get; }
}

/// <summary>
/// Measures how long a socket that became readable waits before the socket engine's thread handles it: the delay a
/// PINGREQ from an idle client sees when the broker is saturated. A loopback socket pair of the broker's own: one byte
/// is written and the time recorded; the reading end's zero-byte receive completes through the same engine queue as
/// every client's (behind the sockets already ready), and the difference is the lag.
/// Probes ride on the traffic: the thread that handles a PUBLISH (<see cref="NoteTraffic"/>) writes the next probe
/// once the period has passed, or, while one is unanswered, reports its age, so a busy engine sees its own lag without
/// waiting for the answer, and a quiet or idle broker pays nothing (no timer, no wake-up: the thread is awake anyway).
/// Only while its observer holds clients, and nobody publishes, does a timer keep probing. Real time always: it
/// measures a real thread, not the broker's (possibly fake) clock.
/// </summary>
internal sealed class SocketEngineLagProbe : SocketAsyncEventArgs, IDisposable
{
    private readonly TimeSpan _period;
    private readonly long _periodMilliseconds;
    private readonly ISocketEngineLagObserver _observer;
    private readonly TimeProvider _time = TimeProvider.System;
    private readonly Lock _timerLock = new();
    private readonly byte[] _probeByte = [1];
    private readonly byte[] _drain = new byte[64];
    private Socket? _reader;
    private Socket? _writer;
    private ITimer? _timer;
    // The unanswered probe: when it was written, coarse (Environment.TickCount64; 0: none) and precise (timestamp).
    private long _sentAtMilliseconds;
    private long _sentAt;
    private long _lastSentMilliseconds;
    private int _timerRunning;
    private volatile bool _disposed;
    private int _failed;

    /// <param name="period">How often a probe is written at most (one at a time: never while one is unanswered).</param>
    public SocketEngineLagProbe(TimeSpan period, ISocketEngineLagObserver observer)
        : base(unsafeSuppressExecutionContextFlow: true)
    {
        _period = period;
        _periodMilliseconds = Math.Max(1, (long)period.TotalMilliseconds);
        _observer = observer;
        SetBuffer(Memory<byte>.Empty);
    }

    /// <summary>Opens the loopback pair and posts the first receive. False (and nothing held) when it cannot.</summary>
    public bool Start()
    {
        try
        {
            (_reader, _writer) = ConnectLoopbackPair();
        }
        catch (SocketException)
        {
            return false;
        }
        _timer = _time.CreateTimer(static s => ((SocketEngineLagProbe)s!).Tick(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        ReceiveLoop();
        return true;
    }

    /// <summary>
    /// Someone handed the engine work (any thread): writes a probe when the period has passed since the last, or
    /// reports the age of the one still unanswered. A coarse clock read and two field reads when there is nothing to do.
    /// </summary>
    public void NoteTraffic()
    {
        if (_writer is null)
        {
            return;
        }
        long now = Environment.TickCount64;
        long sent = Volatile.Read(ref _sentAtMilliseconds);
        if (sent != 0)
        {
            if (now - sent >= _periodMilliseconds)
            {
                _observer.OnProbeUnanswered(TimeSpan.FromMilliseconds(now - sent));
                KeepProbingIfNeeded();
            }
            return;
        }
        if (now - Volatile.Read(ref _lastSentMilliseconds) >= _periodMilliseconds)
        {
            TrySend(now);
        }
    }

    private void TrySend(long now)
    {
        if (_disposed || Volatile.Read(ref _failed) != 0 || Interlocked.CompareExchange(ref _sentAtMilliseconds, Math.Max(1, now), 0) != 0)
        {
            return;
        }
        Volatile.Write(ref _lastSentMilliseconds, now);
        Volatile.Write(ref _sentAt, _time.GetTimestamp());
        SocketError error;
        try
        {
            _writer!.Send(_probeByte, SocketFlags.None, out error);
        }
        catch (ObjectDisposedException)
        {
            return;
        }
        if (error != SocketError.Success)
        {
            Fail();
        }
    }

    /// <summary>The observer holds clients: probes must go on even if nobody publishes (until it lets them go).</summary>
    private void KeepProbingIfNeeded()
    {
        if (_observer.NeedsProbes && Interlocked.CompareExchange(ref _timerRunning, 1, 0) == 0)
        {
            lock (_timerLock)
            {
                if (!_disposed && Volatile.Read(ref _failed) == 0)
                {
                    _timer?.Change(_period, _period);
                }
            }
        }
    }

    private void Tick()
    {
        if (_disposed || Volatile.Read(ref _failed) != 0)
        {
            return;
        }
        if (!_observer.NeedsProbes)
        {
            lock (_timerLock)
            {
                Interlocked.Exchange(ref _timerRunning, 0);
                if (!_disposed)
                {
                    _timer!.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
                }
            }
            // Needed again meanwhile (a client held between the check and the stop): go on.
            KeepProbingIfNeeded();
            return;
        }
        long sent = Volatile.Read(ref _sentAt);
        if (Volatile.Read(ref _sentAtMilliseconds) != 0 && sent != 0)
        {
            _observer.OnProbeUnanswered(_time.GetElapsedTime(sent));
            return;
        }
        TrySend(Environment.TickCount64);
    }

    private void ReceiveLoop()
    {
        while (!_disposed)
        {
            bool pending;
            try
            {
                pending = _reader!.ReceiveAsync(this);
            }
            catch (Exception e) when (e is ObjectDisposedException or SocketException)
            {
                Fail();
                return;
            }
            if (pending || !OnAnswer())
            {
                return;
            }
        }
    }

    protected override void OnCompleted(SocketAsyncEventArgs e)
    {
        if (OnAnswer())
        {
            ReceiveLoop();
        }
    }

    /// <summary>The probe byte is readable (on the socket engine's thread): the time since it was written is the lag.</summary>
    private bool OnAnswer()
    {
        if (SocketError != SocketError.Success || _disposed)
        {
            Fail();
            return false;
        }
        long now = _time.GetTimestamp();
        int received;
        SocketError error;
        try
        {
            received = _reader!.Receive(_drain, SocketFlags.None, out error);
        }
        catch (ObjectDisposedException)
        {
            return false;
        }
        if (error == SocketError.WouldBlock)
        {
            return true;
        }
        if (error != SocketError.Success || received == 0)
        {
            Fail();
            return false;
        }
        long sent = Volatile.Read(ref _sentAt);
        Volatile.Write(ref _sentAt, 0);
        // Cleared last: the next probe may be written from here on.
        Volatile.Write(ref _sentAtMilliseconds, 0);
        if (sent != 0)
        {
            _observer.OnLagMeasured(_time.GetElapsedTime(sent, now));
            KeepProbingIfNeeded();
        }
        return true;
    }

    /// <summary>The pair broke (or the broker stops): measuring ends for good, and nobody stays held for it.</summary>
    private void Fail()
    {
        if (Interlocked.Exchange(ref _failed, 1) != 0)
        {
            return;
        }
        lock (_timerLock)
        {
            if (!_disposed)
            {
                _timer?.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
            }
        }
        _observer.OnStopped();
    }

    private static (Socket Reader, Socket Writer) ConnectLoopbackPair()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        var writer = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            writer.Connect(listener.LocalEndPoint!);
            while (true)
            {
                var reader = listener.Accept();
                // Another local process could connect in between: only our own writer is taken.
                if (reader.RemoteEndPoint is IPEndPoint remote && remote.Equals(writer.LocalEndPoint))
                {
                    reader.Blocking = false;
                    writer.Blocking = false;
                    return (reader, writer);
                }
                reader.Dispose();
            }
        }
        catch
        {
            writer.Dispose();
            throw;
        }
    }

    public new void Dispose()
    {
        lock (_timerLock)
        {
            _disposed = true;
            _timer?.Dispose();
        }
        _writer?.Dispose();
        _reader?.Dispose();
        Fail();
        base.Dispose();
    }
}
