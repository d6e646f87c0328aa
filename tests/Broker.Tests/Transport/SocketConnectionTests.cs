using System.IO.Pipelines;
using System.Net.Sockets;
using System.Text;
using Broker.Hosting;
using Broker.Transport;
using Xunit;

namespace Broker.Tests.Transport;

public sealed class SocketConnectionTests
{
    private static readonly TimeSpan Timeout = LoopbackConnection.Timeout;

    [Fact]
    public async Task Bytes_round_trip_through_input_and_output()
    {
        await using LoopbackConnection pair = await LoopbackConnection.ConnectAsync();

        await pair.Client.SendAsync("hello"u8.ToArray(), SocketFlags.None, TestContext.Current.CancellationToken);
        byte[] received = await LoopbackConnection.ReadInputAsync(pair.Server.Input, 5);
        Assert.Equal("hello", Encoding.ASCII.GetString(received));

        await pair.Server.Output.WriteAsync("world!"u8.ToArray(), TestContext.Current.CancellationToken);
        var buffer = new byte[6];
        int total = 0;
        using var cts = LoopbackConnection.NewTimeoutSource();
        while (total < buffer.Length)
        {
            int n = await pair.Client.ReceiveAsync(buffer.AsMemory(total), SocketFlags.None, cts.Token);
            Assert.NotEqual(0, n);
            total += n;
        }

        Assert.Equal("world!", Encoding.ASCII.GetString(buffer));
        Assert.Equal(5, pair.Server.BytesReceived);
        Assert.Equal(TransportEndReason.None, pair.Server.EndReason);
        Assert.Null(pair.Server.End);

        await pair.Server.CloseAsync(Timeout).WaitAsync(Timeout, TestContext.Current.CancellationToken);
        Assert.Equal(6, pair.Server.BytesSent);
        Assert.Equal(0, pair.Server.PendingOutputBytes);
    }

    [Fact]
    public async Task Remote_close_completes_input_and_records_RemoteClosed()
    {
        await using LoopbackConnection pair = await LoopbackConnection.ConnectAsync();

        pair.Client.Shutdown(SocketShutdown.Send);

        using var cts = LoopbackConnection.NewTimeoutSource();
        ReadResult result = await pair.Server.Input.ReadAsync(cts.Token);
        Assert.True(result.IsCompleted);
        Assert.Equal(TransportEndReason.RemoteClosed, pair.Server.EndReason);

        // The owner decides what follows a FIN; completing Output ends the send loop and closes.
        await pair.Server.Output.CompleteAsync();
        await pair.Server.Closed.WaitAsync(Timeout, TestContext.Current.CancellationToken);
        Assert.Equal(TransportEndReason.RemoteClosed, pair.Server.EndReason);
        Assert.Equal(0, pair.Server.SocketAvailable);
    }

    [Fact]
    public async Task Remote_reset_records_Reset()
    {
        await using LoopbackConnection pair = await LoopbackConnection.ConnectAsync();

        pair.Client.LingerState = new LingerOption(true, 0);
        pair.Client.Close();

        // A reset stops both loops without the owner doing anything.
        await pair.Server.Closed.WaitAsync(Timeout, TestContext.Current.CancellationToken);
        Assert.Equal(TransportEndReason.Reset, pair.Server.EndReason);
        Assert.Equal(SocketError.ConnectionReset, pair.Server.End!.SocketError);
    }

    [Fact]
    public async Task Abort_closes_the_client_side_and_records_Aborted_once()
    {
        await using LoopbackConnection pair = await LoopbackConnection.ConnectAsync();

        pair.Server.Abort("keep-alive expired");
        pair.Server.Abort("second call");
        await pair.Server.CloseAsync(Timeout).WaitAsync(Timeout, TestContext.Current.CancellationToken);

        (byte[] bytes, SocketError end) = await LoopbackConnection.ReadClientUntilClosedAsync(pair.Client);
        Assert.Empty(bytes);
        Assert.Contains(end, new[] { SocketError.Success, SocketError.ConnectionReset });

        await pair.Server.Closed.WaitAsync(Timeout, TestContext.Current.CancellationToken);
        Assert.Equal(TransportEndReason.Aborted, pair.Server.EndReason);
        Assert.Equal("keep-alive expired", pair.Server.End!.Message);

        using var cts = LoopbackConnection.NewTimeoutSource();
        ReadResult input = await pair.Server.Input.ReadAsync(cts.Token);
        Assert.True(input.IsCompleted);
    }

    [Fact]
    public async Task Abort_from_many_threads_at_once_records_one_end()
    {
        await using LoopbackConnection pair = await LoopbackConnection.ConnectAsync();

        await Task.WhenAll(Enumerable.Range(0, 8).Select(i => Task.Run(() =>
        {
            if (i % 2 == 0)
            {
                pair.Server.Abort("abort " + i);
            }
            else
            {
                _ = pair.Server.CloseAsync(Timeout);
            }
        })));

        await pair.Server.Closed.WaitAsync(Timeout, TestContext.Current.CancellationToken);
        Assert.Contains(pair.Server.EndReason, new[] { TransportEndReason.Aborted, TransportEndReason.LocalClosed });
    }

    [Fact]
    public async Task CloseAsync_sends_what_was_written_before_closing()
    {
        await using LoopbackConnection pair = await LoopbackConnection.ConnectAsync();
        byte[] payload = new byte[256 * 1024];
        for (int i = 0; i < payload.Length; i++)
        {
            payload[i] = (byte)(i * 31);
        }

        Task<(byte[] Bytes, SocketError End)> clientRead = LoopbackConnection.ReadClientUntilClosedAsync(pair.Client);
        payload.CopyTo(pair.Server.Output.GetMemory(payload.Length));
        pair.Server.Output.Advance(payload.Length);
        _ = pair.Server.Output.FlushAsync(TestContext.Current.CancellationToken);

        await pair.Server.CloseAsync(Timeout).WaitAsync(Timeout, TestContext.Current.CancellationToken);

        (byte[] bytes, SocketError end) = await clientRead;
        Assert.Equal(SocketError.Success, end);
        Assert.Equal(payload, bytes);
        Assert.Equal(TransportEndReason.LocalClosed, pair.Server.EndReason);
        Assert.Equal(payload.Length, pair.Server.BytesSent);

        // Output written after the close is dropped, and the writer learns it from the flush result.
        FlushResult late = await pair.Server.Output.WriteAsync(new byte[] { 1, 2, 3 }, TestContext.Current.CancellationToken);
        Assert.True(late.IsCompleted);
    }

    [Fact]
    public async Task A_client_that_never_reads_holds_the_writer_with_bounded_pending_output()
    {
        const int maxPending = 64 * 1024;
        const int chunk = 16 * 1024;
        await using LoopbackConnection pair = await LoopbackConnection.ConnectAsync(
            new TcpOptions { Address = "127.0.0.1", Port = 0, MaxPendingOutputBytes = maxPending },
            configureClient: client => client.ReceiveBufferSize = 4096);

        SocketConnection server = pair.Server;
        Task<FlushResult>? heldFlush = null;
        long written = 0;

        // Kernel buffers on both sides absorb some megabytes first; 64 MiB is far beyond them.
        while (written < 64L * 1024 * 1024)
        {
            server.Output.GetSpan(chunk)[..chunk].Fill(0x5A);
            server.Output.Advance(chunk);
            written += chunk;
            Assert.True(server.PendingOutputBytes <= maxPending + chunk, $"pending {server.PendingOutputBytes}");

            ValueTask<FlushResult> flush = server.Output.FlushAsync(TestContext.Current.CancellationToken);
            if (flush.IsCompleted)
            {
                continue;
            }

            Task<FlushResult> flushTask = flush.AsTask();
            try
            {
                // While the kernel still takes bytes, the send loop frees the writer quickly.
                await flushTask.WaitAsync(TimeSpan.FromSeconds(2), TestContext.Current.CancellationToken);
            }
            catch (TimeoutException)
            {
                heldFlush = flushTask;
                break;
            }
        }

        Assert.NotNull(heldFlush);
        Assert.False(heldFlush.IsCompleted);
        Assert.True(server.IsOutputCongested);
        // Bytes the send loop is handing to the kernel count as sent segment by segment, so only the upper bound is tight.
        Assert.InRange(server.PendingOutputBytes, 1, maxPending + chunk);

        server.Abort("slow reader");
        FlushResult released = await heldFlush.WaitAsync(Timeout, TestContext.Current.CancellationToken);
        Assert.True(released.IsCompleted);
        await server.Closed.WaitAsync(Timeout, TestContext.Current.CancellationToken);
        Assert.Equal(TransportEndReason.Aborted, server.EndReason);
    }

    [Fact]
    public async Task Socket_available_and_unread_hint_reflect_bytes_the_receive_loop_has_not_taken()
    {
        // The input pipe pauses at 1 byte, so after the first receive the loop stops taking bytes from the kernel.
        await using LoopbackConnection pair = await LoopbackConnection.ConnectAsync(
            new TcpOptions { Address = "127.0.0.1", Port = 0, MaxInputBufferBytes = 1 });

        await pair.Client.SendAsync(new byte[10], SocketFlags.None, TestContext.Current.CancellationToken);
        using var cts = LoopbackConnection.NewTimeoutSource();
        ReadResult first = await pair.Server.Input.ReadAsync(cts.Token);
        Assert.False(first.Buffer.IsEmpty);
        // Examining counts as relieving backpressure in a Pipe, so leave the bytes unexamined too.
        pair.Server.Input.AdvanceTo(first.Buffer.Start, first.Buffer.Start);

        await pair.Client.SendAsync(new byte[100], SocketFlags.None, TestContext.Current.CancellationToken);
        // Nothing reads Input now, so the receive loop stays paused and these bytes stay in the kernel
        // (TCP on loopback delivers them as one segment; wait for it to land).
        while (pair.Server.SocketAvailable == 0)
        {
            await Task.Yield();
            Assert.False(cts.IsCancellationRequested, $"received {pair.Server.BytesReceived}, available {pair.Server.SocketAvailable}, end {pair.Server.End}");
        }

        Assert.True(pair.Server.HasUnreadInput);
        Assert.InRange(pair.Server.SocketAvailable, 1, 110);
    }
}
