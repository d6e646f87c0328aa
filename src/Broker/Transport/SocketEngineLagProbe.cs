using System.Net;
using System.Net.Sockets;

namespace Broker.Transport;

/// <summary>What the <see cref="SocketEngineLagProbe"/> measures goes here.</summary>
internal interface ISocketEngineLagObserver
{
    /// <summary>A probe was answered after <paramref name="lag"/> (on the socket engine's thread).</summary>
    void OnLagMeasured(TimeSpan lag);

    /// <summary>A probe written <paramref name="age"/> ago is still unanswered (on a timer thread).</summary>
    void OnProbeUnanswered(TimeSpan age);

    /// <summary>Measuring ended (the pair broke, or the broker stops): nobody may stay held for it.</summary>
    void OnStopped();

    /// <summary>True while the observer needs measurements even without new traffic (clients still held).</summary>
    bool NeedsProbes { get; }
}

/// <summary>
/// Measures how long a socket that became readable waits before the socket engine's thread handles it: the delay a
/// PINGREQ from an idle client sees when the broker is saturated. A loopback socket pair of the broker's own: a timer
/// writes one byte and records when; the reading end's zero-byte receive completes through the same engine queue as
/// every client's (behind the sockets already ready), and the difference is the lag. While a probe is unanswered the
/// lag is at least its age, so a stuck engine is seen without waiting for the answer.
/// The timer runs only while there is traffic (<see cref="NoteTraffic"/>) or the engine is behind: an idle broker
/// pays no wake-ups for it. Real time always: it measures a real thread, not the broker's (possibly fake) clock.
/// </summary>
internal sealed class SocketEngineLagProbe : SocketAsyncEventArgs, IDisposable
{
    private readonly TimeSpan _period;
    private readonly ISocketEngineLagObserver _observer;
    private readonly TimeProvider _time = TimeProvider.System;
    private readonly Lock _tickLock = new();
    private readonly byte[] _probeByte = [1];
    private readonly byte[] _drain = new byte[64];
    private Socket? _reader;
    private Socket? _writer;
    private ITimer? _timer;
    // When the unanswered probe was written (0: none outstanding).
    private long _sentAt;
    private int _timerRunning;
    private int _traffic;
    private volatile bool _disposed;
    private int _failed;

    /// <param name="period">How often a probe is written while measuring (one at a time: not while one is unanswered).</param>
    public SocketEngineLagProbe(TimeSpan period, ISocketEngineLagObserver observer)
        : base(unsafeSuppressExecutionContextFlow: true)
    {
        _period = period;
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

    /// <summary>Someone handed the engine work: keep measuring (cheap when the timer already runs).</summary>
    public void NoteTraffic()
    {
        if (Volatile.Read(ref _traffic) != 0)
        {
            return;
        }
        // A full fence between setting the flag and reading the timer's state: the tick that stops the timer reads
        // the flag after clearing its state, so one of the two always sees the other.
        Interlocked.Exchange(ref _traffic, 1);
        if (Volatile.Read(ref _timerRunning) == 0)
        {
            StartTimer();
        }
    }

    private void StartTimer()
    {
        if (Interlocked.CompareExchange(ref _timerRunning, 1, 0) == 0 && !_disposed && Volatile.Read(ref _failed) == 0)
        {
            _timer?.Change(_period, _period);
        }
    }

    private void Tick()
    {
        lock (_tickLock)
        {
            if (_disposed || Volatile.Read(ref _failed) != 0)
            {
                return;
            }
            long sent = Volatile.Read(ref _sentAt);
            if (sent != 0)
            {
                _observer.OnProbeUnanswered(_time.GetElapsedTime(sent));
                return;
            }
            if (Interlocked.Exchange(ref _traffic, 0) == 0 && !_observer.NeedsProbes)
            {
                // Nothing happened for a whole period: stop until the next traffic.
                Interlocked.Exchange(ref _timerRunning, 0);
                _timer!.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
                if (Volatile.Read(ref _traffic) != 0)
                {
                    StartTimer();
                }
                return;
            }
            Volatile.Write(ref _sentAt, _time.GetTimestamp());
            _writer!.Send(_probeByte, SocketFlags.None, out var error);
            if (error != SocketError.Success)
            {
                Fail();
            }
        }
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
        int received = _reader!.Receive(_drain, SocketFlags.None, out var error);
        if (error == SocketError.WouldBlock)
        {
            return true;
        }
        if (error != SocketError.Success || received == 0)
        {
            Fail();
            return false;
        }
        long sent = Interlocked.Exchange(ref _sentAt, 0);
        if (sent == 0)
        {
            return true;
        }
        _observer.OnLagMeasured(_time.GetElapsedTime(sent, now));
        return true;
    }

    /// <summary>The pair broke (or the broker stops): measuring ends for good, and nobody stays held for it.</summary>
    private void Fail()
    {
        if (Interlocked.Exchange(ref _failed, 1) != 0)
        {
            return;
        }
        _timer?.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
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
        lock (_tickLock)
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
