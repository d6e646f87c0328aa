using System.Net;
using System.Net.Sockets;
using Broker.Hosting;
using Xunit;

namespace Broker.Tests.Transport;

public sealed class SocketListenerTests
{
    [Fact]
    public async Task Accepted_socket_is_non_blocking_with_NoDelay_and_the_configured_keep_alive()
    {
        var keepAlive = new TcpKeepAliveOptions { Enabled = true, IdleSeconds = 17, IntervalSeconds = 7, ProbeCount = 4 };
        using var fixture = new ListenerFixture(keepAlive: keepAlive);
        var (client, accepted) = await fixture.ConnectAsync();
        using (client)
        using (accepted)
        {
            Assert.False(accepted.Blocking);
            Assert.NotEqual(0, (int)accepted.GetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.NoDelay)!);
            Assert.NotEqual(0, (int)accepted.GetSocketOption(SocketOptionLevel.Socket, SocketOptionName.KeepAlive)!);
            Assert.Equal(17, (int)accepted.GetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveTime)!);
            Assert.Equal(7, (int)accepted.GetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveInterval)!);
            Assert.Equal(4, (int)accepted.GetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveRetryCount)!);
        }
    }

    [Fact]
    public async Task Disabled_keep_alive_leaves_SO_KEEPALIVE_off()
    {
        using var fixture = new ListenerFixture(keepAlive: new TcpKeepAliveOptions { Enabled = false });
        var (client, accepted) = await fixture.ConnectAsync();
        using (client)
        using (accepted)
        {
            Assert.Equal(0, (int)accepted.GetSocketOption(SocketOptionLevel.Socket, SocketOptionName.KeepAlive)!);
            Assert.NotEqual(0, (int)accepted.GetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.NoDelay)!);
        }
    }

    [Fact]
    public async Task Port_zero_binds_an_ephemeral_port_and_reports_it()
    {
        using var fixture = new ListenerFixture();

        Assert.Equal(IPAddress.Loopback, fixture.Listener.LocalEndPoint.Address);
        Assert.NotEqual(0, fixture.Listener.LocalEndPoint.Port);

        var (client, accepted) = await fixture.ConnectAsync();
        using (client)
        using (accepted)
        {
            Assert.Equal(((IPEndPoint)client.LocalEndPoint!).Port, ((IPEndPoint)accepted.RemoteEndPoint!).Port);
        }
    }

    [Fact]
    public async Task A_burst_of_connections_is_accepted_in_full()
    {
        const int count = 300;
        using var fixture = new ListenerFixture(new TcpOptions { Address = "127.0.0.1", Port = 0, Backlog = count });
        var clients = new List<Socket>();
        try
        {
            using var cts = ListenerFixture.NewTimeoutSource();
            for (int i = 0; i < count; i++)
            {
                var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                clients.Add(client);
                await client.ConnectAsync(fixture.Listener.LocalEndPoint, cts.Token);
            }
            for (int i = 0; i < count; i++)
            {
                (await fixture.NextAcceptedAsync()).Dispose();
            }
        }
        finally
        {
            clients.ForEach(c => c.Dispose());
        }
    }

    [Fact]
    public async Task Binds_an_IPv6_address()
    {
        if (!Socket.OSSupportsIPv6)
        {
            Assert.Skip("IPv6 is not available on this machine");
        }

        ListenerFixture fixture;
        try
        {
            fixture = new ListenerFixture(new TcpOptions { Address = "::1", Port = 0 });
        }
        catch (SocketException e) when (e.SocketErrorCode is SocketError.AddressNotAvailable or SocketError.AddressFamilyNotSupported)
        {
            Assert.Skip($"::1 cannot be bound here ({e.SocketErrorCode})");
            return;
        }

        using (fixture)
        {
            var (client, accepted) = await fixture.ConnectAsync(AddressFamily.InterNetworkV6);
            using (client)
            using (accepted)
            {
                Assert.Equal(AddressFamily.InterNetworkV6, accepted.RemoteEndPoint!.AddressFamily);
            }
        }
    }

    [Fact]
    public async Task Stop_closes_the_listening_socket()
    {
        using var fixture = new ListenerFixture();
        var endPoint = fixture.Listener.LocalEndPoint;
        fixture.Listener.Stop();
        fixture.Listener.Stop();

        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        using var cts = ListenerFixture.NewTimeoutSource();
        var e = await Assert.ThrowsAsync<SocketException>(async () => await client.ConnectAsync(endPoint, cts.Token));
        Assert.Equal(SocketError.ConnectionRefused, e.SocketErrorCode);
    }
}
