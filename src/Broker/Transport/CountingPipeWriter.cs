using System.IO.Pipelines;
using System.Runtime.CompilerServices;

namespace Broker.Transport;

/// <summary>
/// The connection's Output: forwards to the output pipe's writer, counting bytes written and noting
/// while a flush is held back by the pause threshold, so that other threads (the router deciding
/// whether to drop for a slow subscriber) can see congestion without touching the pipe.
/// </summary>
/// <remarks>Like any PipeWriter it has one writer at a time; the counters it exposes may be read from any thread.</remarks>
internal sealed class CountingPipeWriter : PipeWriter
{
    private readonly PipeWriter _inner;
    private long _bytesWritten;
    private int _flushPaused;

    public CountingPipeWriter(PipeWriter inner) => _inner = inner;

    /// <summary>Bytes passed to <see cref="Advance"/> since the connection started.</summary>
    public long BytesWritten => Volatile.Read(ref _bytesWritten);

    /// <summary>True while a FlushAsync is waiting for the send loop to drain below the resume threshold.</summary>
    public bool IsFlushPaused => Volatile.Read(ref _flushPaused) != 0;

    public override bool CanGetUnflushedBytes => _inner.CanGetUnflushedBytes;

    public override long UnflushedBytes => _inner.UnflushedBytes;

    public override void Advance(int bytes)
    {
        _inner.Advance(bytes);
        // Single writer: a plain add published with a volatile write is enough for readers.
        Volatile.Write(ref _bytesWritten, _bytesWritten + bytes);
    }

    public override Memory<byte> GetMemory(int sizeHint = 0) => _inner.GetMemory(sizeHint);

    public override Span<byte> GetSpan(int sizeHint = 0) => _inner.GetSpan(sizeHint);

    public override ValueTask<FlushResult> FlushAsync(CancellationToken cancellationToken = default)
    {
        ValueTask<FlushResult> flush = _inner.FlushAsync(cancellationToken);
        return flush.IsCompleted ? flush : AwaitPausedFlushAsync(flush);
    }

    // Only reached under backpressure; the pooling builder keeps even that path from allocating per flush.
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<FlushResult> AwaitPausedFlushAsync(ValueTask<FlushResult> flush)
    {
        Volatile.Write(ref _flushPaused, 1);
        try
        {
            return await flush.ConfigureAwait(false);
        }
        finally
        {
            Volatile.Write(ref _flushPaused, 0);
        }
    }

    public override void CancelPendingFlush() => _inner.CancelPendingFlush();

    public override void Complete(Exception? exception = null) => _inner.Complete(exception);

    public override ValueTask CompleteAsync(Exception? exception = null) => _inner.CompleteAsync(exception);
}
