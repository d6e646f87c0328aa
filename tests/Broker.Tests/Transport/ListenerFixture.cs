using System.Net.Sockets;
using System.Threading.Channels;
using Broker.Hosting;
using Broker.Transport;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Xunit;

namespace Broker.Tests.Transport;

/// <summary>A started <see cref="SocketListener"/> on 127.0.0.1:0 whose accepted sockets a test can take one by one.</summary>
internal sealed class ListenerFixture : IDisposable
{
    // Generous for a loaded 2-core machine; every wait in these tests ends long before when things work.
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    private readonly Channel<Socket> _accepted = Channel.CreateUnbounded<Socket>();

    public ListenerFixture(TcpOptions? tcp = null, TcpKeepAliveOptions? keepAlive = null)
    {
        Listener = new SocketListener(
            Options.Create(tcp ?? new TcpOptions { Address = "127.0.0.1", Port = 0 }),
            Options.Create(keepAlive ?? new TcpKeepAliveOptions()),
            NullLoggerFactory.Instance);
        Listener.Bind();
        Listener.Start(socket => _accepted.Writer.TryWrite(socket));
    }

    public SocketListener Listener { get; }

    /// <summary>Cancelled after <see cref="Timeout"/> or when the test is cancelled.</summary>
    public static CancellationTokenSource NewTimeoutSource()
    {
        var cts = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        cts.CancelAfter(Timeout);
        return cts;
    }

    public async Task<Socket> NextAcceptedAsync()
    {
        using var cts = NewTimeoutSource();
        return await _accepted.Reader.ReadAsync(cts.Token);
    }

    /// <summary>Connects a client to the listener and returns both ends.</summary>
    public async Task<(Socket Client, Socket Accepted)> ConnectAsync(AddressFamily family = AddressFamily.InterNetwork)
    {
        var client = new Socket(family, SocketType.Stream, ProtocolType.Tcp);
        using var cts = NewTimeoutSource();
        await client.ConnectAsync(Listener.LocalEndPoint, cts.Token);
        return (client, await NextAcceptedAsync());
    }

    public void Dispose()
    {
        Listener.Dispose();
        while (_accepted.Reader.TryRead(out var socket))
        {
            socket.Dispose();
        }
    }
}
