using System.Net;
using System.Net.Sockets;
using Broker.Hosting;
using Broker.Transport;
using Xunit;

namespace Broker.Tests.Transport;

public sealed class SocketListenerTests
{
    private static readonly TimeSpan Timeout = LoopbackConnection.Timeout;

    [Fact]
    public async Task Accepted_socket_has_NoDelay_and_the_configured_keep_alive()
    {
        var keepAlive = new TcpKeepAliveOptions { Enabled = true, IdleSeconds = 17, IntervalSeconds = 7, ProbeCount = 4 };
        await using LoopbackConnection pair = await LoopbackConnection.ConnectAsync(keepAlive: keepAlive);
        Socket accepted = pair.Server.UnderlyingSocket;

        Assert.NotEqual(0, (int)accepted.GetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.NoDelay)!);
        Assert.NotEqual(0, (int)accepted.GetSocketOption(SocketOptionLevel.Socket, SocketOptionName.KeepAlive)!);
        Assert.Equal(17, (int)accepted.GetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveTime)!);
        Assert.Equal(7, (int)accepted.GetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveInterval)!);
        Assert.Equal(4, (int)accepted.GetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveRetryCount)!);
    }

    [Fact]
    public async Task Disabled_keep_alive_leaves_SO_KEEPALIVE_off()
    {
        await using LoopbackConnection pair = await LoopbackConnection.ConnectAsync(keepAlive: new TcpKeepAliveOptions { Enabled = false });
        Socket accepted = pair.Server.UnderlyingSocket;

        Assert.Equal(0, (int)accepted.GetSocketOption(SocketOptionLevel.Socket, SocketOptionName.KeepAlive)!);
        Assert.NotEqual(0, (int)accepted.GetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.NoDelay)!);
    }

    [Fact]
    public async Task Port_zero_binds_an_ephemeral_port_and_reports_it()
    {
        using SocketListener listener = LoopbackConnection.StartListener();

        Assert.Equal(IPAddress.Loopback, listener.LocalEndPoint.Address);
        Assert.NotEqual(0, listener.LocalEndPoint.Port);

        await using LoopbackConnection pair = await LoopbackConnection.ConnectAsync();
        Assert.Equal(((IPEndPoint)pair.Client.LocalEndPoint!).Port, ((IPEndPoint)pair.Server.RemoteEndPoint).Port);
    }

    [Fact]
    public async Task Binds_an_IPv6_address()
    {
        if (!Socket.OSSupportsIPv6)
        {
            Assert.Skip("IPv6 is not available on this machine");
        }

        SocketListener listener;
        try
        {
            listener = LoopbackConnection.StartListener(new TcpOptions { Address = "::1", Port = 0 });
        }
        catch (SocketException e) when (e.SocketErrorCode is SocketError.AddressNotAvailable or SocketError.AddressFamilyNotSupported)
        {
            Assert.Skip($"::1 cannot be bound here ({e.SocketErrorCode})");
            return;
        }

        using (listener)
        {
            using var client = new Socket(AddressFamily.InterNetworkV6, SocketType.Stream, ProtocolType.Tcp);
            using var cts = LoopbackConnection.NewTimeoutSource();
            ValueTask<SocketConnection?> accept = listener.AcceptAsync(cts.Token);
            await client.ConnectAsync(listener.LocalEndPoint, cts.Token);
            SocketConnection? server = await accept;
            Assert.NotNull(server);
            Assert.Equal(AddressFamily.InterNetworkV6, server.RemoteEndPoint.AddressFamily);
            server.Abort("test finished");
            await server.Closed.WaitAsync(Timeout, TestContext.Current.CancellationToken);
        }
    }

    [Fact]
    public async Task Stop_makes_a_pending_accept_return_null()
    {
        using SocketListener listener = LoopbackConnection.StartListener();
        using var cts = LoopbackConnection.NewTimeoutSource();

        ValueTask<SocketConnection?> accept = listener.AcceptAsync(cts.Token);
        listener.Stop();
        listener.Stop();

        Assert.Null(await accept.AsTask().WaitAsync(Timeout, TestContext.Current.CancellationToken));
        Assert.Null(await listener.AcceptAsync(cts.Token));
    }

    [Fact]
    public async Task Cancelling_accept_returns_null()
    {
        using SocketListener listener = LoopbackConnection.StartListener();
        using var cts = new CancellationTokenSource();

        ValueTask<SocketConnection?> accept = listener.AcceptAsync(cts.Token);
        cts.Cancel();

        Assert.Null(await accept.AsTask().WaitAsync(Timeout, TestContext.Current.CancellationToken));
    }
}
