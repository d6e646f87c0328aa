using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;

namespace Broker.Transport;

/// <summary>
/// One accepted socket as a pair of pipes. A receive loop copies socket bytes into <see cref="Input"/>;
/// a send loop copies <see cref="Output"/> to the socket. The two loops share nothing but the pipes,
/// the recorded end and the socket itself. Socket errors never escape as exceptions: the first end
/// (remote close, reset, time-out, abort, ...) is recorded in <see cref="End"/>, both pipes complete
/// without an exception, and <see cref="Closed"/> completes once both loops have stopped.
/// </summary>
/// <remarks>
/// The owner (the MQTT connection) is the only reader of Input and the only writer of Output, and it
/// completes both when it is done. After a remote FIN the send loop keeps running (the owner sees
/// Input complete and decides: CloseAsync, Abort, or complete Output); after any socket error or
/// Abort both loops stop.
/// </remarks>
internal sealed partial class SocketConnection : Broker.Connections.IConnectionTransport
{
    // The default memory pool's block size; MQTT control packets are mostly tiny, so one 4 KiB segment
    // holds many of them and a burst does not fragment into many small segments.
    internal const int MinimumSegmentSize = 4096;

    // Asked of the pipe before each real receive, after the zero-byte receive said data is waiting.
    private const int ReceiveSizeHint = 2048;

    private const int SendRunning = 0;
    private const int SendDrainThenStop = 1;
    private const int SendStopNow = 2;

    private readonly Socket _socket;
    private readonly Pipe _inputPipe;
    private readonly Pipe _outputPipe;
    private readonly CountingPipeWriter _output;
    private readonly long _maxPendingOutputBytes;
    private readonly ILogger _logger;
    private readonly TimeProvider _timeProvider;
    private readonly TaskCompletionSource _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private TransportEnd? _end;
    private int _sendState;
    private int _socketClosed;
    private int _started;
    private long _bytesReceived;
    private bool _receiving;
    private long _bytesSent;
    private Task _sendLoop = Task.CompletedTask;

    public SocketConnection(Socket socket, long maxInputBufferBytes, long maxPendingOutputBytes, ILogger logger, TimeProvider? timeProvider = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxInputBufferBytes);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxPendingOutputBytes);

        _socket = socket;
        _logger = logger;
        _timeProvider = timeProvider ?? TimeProvider.System;
        _maxPendingOutputBytes = maxPendingOutputBytes;
        RemoteEndPoint = socket.RemoteEndPoint ?? new IPEndPoint(IPAddress.None, 0);

        // Resume at half the pause threshold (as Kestrel does) so a loop that was held back gets a
        // sizeable window before it can be paused again, instead of flapping at the threshold.
        //
        // Schedulers, chosen so that a PINGREQ costs one thread-pool hop, not four:
        // - input reader inline: the MQTT read loop runs on the receive loop's thread as soon as bytes are
        //   flushed into the pipe; it only parses and answers that same connection's packets, and a slow step
        //   there holding up this socket's next receive is the backpressure we want anyway;
        // - input writer inline: the receive loop, once resumed after backpressure, only rents memory and posts
        //   the next receive;
        // - output reader inline: the send loop runs on the thread that flushed, which is always this
        //   connection's own send loop (other connections' publishers wake that loop on the thread pool, so a
        //   publisher fanning out never makes the subscribers' send calls itself);
        // - output writer on the thread pool: a flush held back by a slow client resumes off the send loop.
        _inputPipe = new Pipe(new PipeOptions(
            pool: null,
            readerScheduler: PipeScheduler.Inline,
            writerScheduler: PipeScheduler.Inline,
            pauseWriterThreshold: maxInputBufferBytes,
            resumeWriterThreshold: maxInputBufferBytes / 2,
            minimumSegmentSize: MinimumSegmentSize,
            useSynchronizationContext: false));
        _outputPipe = new Pipe(new PipeOptions(
            pool: null,
            readerScheduler: PipeScheduler.Inline,
            writerScheduler: PipeScheduler.ThreadPool,
            pauseWriterThreshold: maxPendingOutputBytes,
            resumeWriterThreshold: maxPendingOutputBytes / 2,
            minimumSegmentSize: MinimumSegmentSize,
            useSynchronizationContext: false));
        _output = new CountingPipeWriter(_outputPipe.Writer);
    }

    /// <summary>What the socket received. Completes (without exception) when receiving ends.</summary>
    public PipeReader Input => _inputPipe.Reader;

    /// <summary>What to send. Its FlushAsync stops completing while <see cref="MaxPendingOutputBytes"/> are pending.</summary>
    public PipeWriter Output => _output;

    /// <summary>Completes when both loops have stopped and the socket is closed. Never faults.</summary>
    public Task Closed => _closed.Task;

    /// <summary>The first recorded end, or null while the connection is open.</summary>
    public TransportEnd? End => Volatile.Read(ref _end);

    public TransportEndReason EndReason => End?.Reason ?? TransportEndReason.None;

    public EndPoint RemoteEndPoint { get; }

    public long BytesReceived => Volatile.Read(ref _bytesReceived);

    /// <summary>Bytes handed to the kernel (they may still sit in its send buffer).</summary>
    public long BytesSent => Volatile.Read(ref _bytesSent);

    public long MaxPendingOutputBytes => _maxPendingOutputBytes;

    /// <summary>Bytes written to <see cref="Output"/> (flushed or not) that the send loop has not handed to the kernel.</summary>
    public long PendingOutputBytes
    {
        get
        {
            // Sent first: sent never exceeds written, so this order can never give a negative count.
            long sent = BytesSent;
            return _output.BytesWritten - sent;
        }
    }

    /// <summary>
    /// True while the writer's FlushAsync is held back, or the pending output has reached the pause
    /// threshold: the client is reading more slowly than the broker writes. A hint for dropping
    /// (e.g. QoS 0 fan-out) without waiting.
    /// </summary>
    public bool IsOutputCongested => _output.IsFlushPaused || PendingOutputBytes >= _maxPendingOutputBytes;

    /// <summary>Bytes waiting in the kernel receive buffer (socket.Available); 0 once the socket is closed.</summary>
    public int SocketAvailable
    {
        get
        {
            try
            {
                return _socket.Available;
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                return 0;
            }
        }
    }

    /// <summary>
    /// A hint that the kernel holds bytes the receive loop has not yet moved into Input, or that the receive
    /// loop is moving some right now; the owner adds its own unread pipe bytes (e.g. to tell a client that is
    /// busy sending from an idle one).
    /// </summary>
    public bool HasUnreadInput => Volatile.Read(ref _receiving) || SocketAvailable > 0;

    /// <summary>For tests and diagnostics only: reading or writing through it would bypass both loops.</summary>
    internal Socket UnderlyingSocket => _socket;

    /// <summary>Starts the receive and send loops; called once by the listener.</summary>
    public void Start()
    {
        if (Interlocked.Exchange(ref _started, 1) != 0)
        {
            throw new InvalidOperationException("The connection is already started.");
        }

        Task receiveLoop = ReceiveLoopAsync();
        _sendLoop = SendLoopAsync();
        _ = CompleteWhenStoppedAsync(receiveLoop, _sendLoop);
    }

    /// <summary>
    /// Closes at once: pending output is dropped and the socket is reset, so a dead peer (keep-alive
    /// expiry) costs no FIN retransmissions. Idempotent and callable from any thread.
    /// </summary>
    public void Abort(string reason)
    {
        RecordEnd(TransportEndReason.Aborted, SocketError.Success, reason);
        StopSendLoop(SendStopNow);
        CloseSocket(abortive: true);
    }

    /// <summary>
    /// Sends what was flushed to Output before this call, then closes (FIN). If that does not finish
    /// within <paramref name="flushTimeout"/> (the client stopped reading), aborts. Output flushed after
    /// the call is dropped; the writer's FlushAsync then reports IsCompleted. The owner need not (and,
    /// from another thread, must not) complete Output itself. Idempotent and callable from any thread;
    /// the returned task completes with <see cref="Closed"/>.
    /// </summary>
    public Task CloseAsync(TimeSpan flushTimeout)
    {
        RecordEnd(TransportEndReason.LocalClosed, SocketError.Success, "closed by the broker");
        StopSendLoop(SendDrainThenStop);
        return _closed.Task.IsCompleted ? Task.CompletedTask : WaitForFlushThenCloseAsync(flushTimeout);
    }

    private async Task WaitForFlushThenCloseAsync(TimeSpan flushTimeout)
    {
        try
        {
            // A one-off timer for this close only; open connections hold none.
            await _sendLoop.WaitAsync(flushTimeout, _timeProvider).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            Abort($"output not flushed within {flushTimeout}");
        }

        await _closed.Task.ConfigureAwait(false);
    }

    private async Task CompleteWhenStoppedAsync(Task receiveLoop, Task sendLoop)
    {
        // The loops catch everything, so neither task faults.
        await Task.WhenAll(receiveLoop, sendLoop).ConfigureAwait(false);
        CloseSocket(abortive: false);
        _closed.TrySetResult();
    }

    private void StopSendLoop(int state)
    {
        // Only ever moves towards "stop now", so Abort after CloseAsync wins and CloseAsync after Abort is a no-op.
        int current = Volatile.Read(ref _sendState);
        while (current < state)
        {
            int seen = Interlocked.CompareExchange(ref _sendState, state, current);
            if (seen == current)
            {
                // Wakes the send loop out of ReadAsync; safe from any thread. If it is sending, its next read returns at once.
                _outputPipe.Reader.CancelPendingRead();
                return;
            }

            current = seen;
        }
    }

    private void CloseSocket(bool abortive)
    {
        if (Interlocked.Exchange(ref _socketClosed, 1) != 0)
        {
            return;
        }

        try
        {
            if (abortive)
            {
                // Linger 0: close() sends RST and drops unsent data instead of retrying it to a dead peer.
                _socket.LingerState = new LingerOption(enable: true, seconds: 0);
            }
            else
            {
                _socket.Shutdown(SocketShutdown.Both);
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // Already reset or closed by the peer: nothing left to say to it.
        }

        // Disposing wakes any pending receive or send with OperationAborted.
        _socket.Dispose();

        // A receive loop held by input backpressure is not waiting on the socket, so disposing does not
        // wake it; without this, Closed would wait for the owner to read input that no longer matters.
        _inputPipe.Writer.CancelPendingFlush();
    }

    /// <summary>Records the end if none is recorded yet; the first one wins.</summary>
    private void RecordEnd(TransportEndReason reason, SocketError socketError, string? message)
    {
        if (Volatile.Read(ref _end) is null)
        {
            Interlocked.CompareExchange(ref _end, new TransportEnd(reason, socketError, message), null);
        }
    }

    private void RecordSocketError(SocketException exception)
    {
        SocketError code = exception.SocketErrorCode;
        TransportEndReason reason = code switch
        {
            SocketError.ConnectionReset or SocketError.ConnectionAborted => TransportEndReason.Reset,
            // EPIPE: the peer's side is gone while we were still sending.
            SocketError.Shutdown => TransportEndReason.Reset,
            SocketError.TimedOut => TransportEndReason.TimedOut,
            // Our own close woke the operation; normally an end is already recorded by then.
            SocketError.OperationAborted or SocketError.Interrupted => TransportEndReason.Aborted,
            _ => TransportEndReason.SocketError,
        };
        RecordEnd(reason, code, exception.Message);
    }
}
