using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using Broker.Hosting;
using Broker.Transport;
using Xunit;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Broker.Tests.Transport;

/// <summary>A listener on 127.0.0.1:0, one client socket connected to it, and the server side's SocketConnection.</summary>
internal sealed class LoopbackConnection : IAsyncDisposable
{
    // Generous for a loaded 2-core machine; every wait in these tests ends long before when things work.
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    /// <summary>Cancelled after <see cref="Timeout"/> or when the test is cancelled.</summary>
    public static CancellationTokenSource NewTimeoutSource()
    {
        var cts = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        cts.CancelAfter(Timeout);
        return cts;
    }

    private LoopbackConnection(SocketListener listener, Socket client, SocketConnection server)
    {
        Listener = listener;
        Client = client;
        Server = server;
    }

    public SocketListener Listener { get; }

    public Socket Client { get; }

    public SocketConnection Server { get; }

    public static SocketListener StartListener(TcpOptions? tcp = null, TcpKeepAliveOptions? keepAlive = null)
    {
        var listener = new SocketListener(
            Options.Create(tcp ?? new TcpOptions { Address = "127.0.0.1", Port = 0 }),
            Options.Create(keepAlive ?? new TcpKeepAliveOptions()),
            NullLoggerFactory.Instance);
        listener.Bind();
        return listener;
    }

    public static async Task<LoopbackConnection> ConnectAsync(
        TcpOptions? tcp = null,
        TcpKeepAliveOptions? keepAlive = null,
        Action<Socket>? configureClient = null)
    {
        SocketListener listener = StartListener(tcp, keepAlive);
        var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            configureClient?.Invoke(client);
            using var cts = LoopbackConnection.NewTimeoutSource();
            ValueTask<SocketConnection?> accept = listener.AcceptAsync(cts.Token);
            await client.ConnectAsync(new IPEndPoint(IPAddress.Loopback, listener.LocalEndPoint.Port), cts.Token);
            SocketConnection server = await accept ?? throw new InvalidOperationException("The listener stopped before accepting.");
            return new LoopbackConnection(listener, client, server);
        }
        catch
        {
            client.Dispose();
            listener.Dispose();
            throw;
        }
    }

    /// <summary>Reads exactly <paramref name="count"/> bytes from the server's Input.</summary>
    public static async Task<byte[]> ReadInputAsync(PipeReader input, int count)
    {
        using var cts = LoopbackConnection.NewTimeoutSource();
        while (true)
        {
            ReadResult result = await input.ReadAsync(cts.Token);
            if (result.Buffer.Length >= count)
            {
                byte[] bytes = result.Buffer.Slice(0, count).ToArray();
                input.AdvanceTo(result.Buffer.GetPosition(count));
                return bytes;
            }

            if (result.IsCompleted)
            {
                throw new InvalidOperationException($"Input completed after {result.Buffer.Length} of {count} bytes.");
            }

            input.AdvanceTo(result.Buffer.Start, result.Buffer.End);
        }
    }

    /// <summary>Reads from the client socket until the server closes it; a reset after some bytes also ends the read.</summary>
    public static async Task<(byte[] Bytes, SocketError End)> ReadClientUntilClosedAsync(Socket client)
    {
        using var cts = LoopbackConnection.NewTimeoutSource();
        var received = new MemoryStream();
        var buffer = new byte[16 * 1024];
        try
        {
            while (true)
            {
                int n = await client.ReceiveAsync(buffer, SocketFlags.None, cts.Token);
                if (n == 0)
                {
                    return (received.ToArray(), SocketError.Success);
                }

                received.Write(buffer, 0, n);
            }
        }
        catch (SocketException e)
        {
            return (received.ToArray(), e.SocketErrorCode);
        }
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        Server.Abort("test finished");
        await Server.Closed.WaitAsync(Timeout, TestContext.Current.CancellationToken);
        Listener.Dispose();
    }
}
