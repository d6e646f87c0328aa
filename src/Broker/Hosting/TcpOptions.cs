namespace Broker.Hosting;

/// <summary>Listening socket and per-connection buffer limits, bound from <c>Broker:Tcp</c>.</summary>
internal sealed record TcpOptions
{
    public const string SectionName = "Broker:Tcp";

    /// <summary>IPv4 or IPv6 address to bind; "::" also accepts IPv4 clients (dual mode).</summary>
    public string Address { get; init; } = "0.0.0.0";

    /// <summary>0 binds an ephemeral port (tests); read the real one from SocketListener.LocalEndPoint.</summary>
    public int Port { get; init; } = 1883;

    /// <summary>
    /// Accept queue length. Large because reconnect storms (a load balancer or a network blip) arrive as
    /// thousands of SYNs at once; the kernel caps it at net.core.somaxconn anyway.
    /// </summary>
    public int Backlog { get; init; } = 4096;

    /// <summary>
    /// Output bytes a connection may hold (written but not yet handed to the kernel) before the writer's
    /// FlushAsync stops completing. 1 MiB lets a healthy subscriber absorb a burst without the broker
    /// waiting, while a client that stops reading costs at most this much memory (plus kernel buffers).
    /// </summary>
    public long MaxPendingOutputBytes { get; init; } = 1024 * 1024;

    /// <summary>
    /// Received bytes the broker has not yet examined before the receive loop stops reading the socket
    /// (TCP flow control then slows the client). A Pipe counts examined-but-unconsumed bytes as relieved,
    /// so a partly received large packet does not deadlock here: the codec's maximum packet size is
    /// what bounds a single packet's buffering.
    /// </summary>
    public long MaxInputBufferBytes { get; init; } = 1024 * 1024;
}
