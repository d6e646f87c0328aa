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
    /// Output bytes a connection may hold (written but not yet handed to the kernel) before queued messages stop
    /// being serialised for it: they wait in the session queue (bounded by the session limits) instead. 1 MiB lets
    /// a healthy subscriber absorb a burst, while a client that stops reading costs at most this much (plus kernel
    /// buffers). Control packets (acknowledgements, PINGRESP) are always written.
    /// </summary>
    public long MaxPendingOutputBytes { get; init; } = 1024 * 1024;

    /// <summary>
    /// No longer used: the connection reads only what it handles at once and holds at most one partial packet,
    /// which <c>Broker:Limits:MaxPacketSize</c> bounds. Still accepted so that existing configurations start.
    /// </summary>
    public long MaxInputBufferBytes { get; init; } = 1024 * 1024;

    /// <summary>
    /// Handle socket events on the socket engine's own threads (true) rather than handing each to the thread pool.
    /// A PINGREQ is then read and answered on the thread that saw it arrive: no thread-pool wake-up per packet, and
    /// packets of different clients seen in one poll are handled in the order they arrived. Only the broker's
    /// non-blocking work runs there. Applied at start-up, before the process opens its first socket.
    /// </summary>
    public bool InlineCompletions { get; init; } = true;

    /// <summary>
    /// Socket engine threads (epoll loops); 0 = the runtime's default (one per core when inline). With one thread
    /// (the default) every client's packets are handled in arrival order, so a SUBSCRIBE that reached the broker
    /// before another client's PUBLISH is in effect for that PUBLISH; deliveries are still serialised and sent on
    /// the thread pool. More threads read in parallel (for very high publish rates) and give up that ordering
    /// between clients (never within one client).
    /// </summary>
    public int SocketThreads { get; init; } = 1;
}
