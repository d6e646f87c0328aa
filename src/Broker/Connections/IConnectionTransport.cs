using System.IO.Pipelines;
using System.Net;

namespace Broker.Connections;

/// <summary>What an MQTT connection needs from its transport: two pipes and a way to end it.</summary>
internal interface IConnectionTransport
{
    PipeReader Input { get; }
    PipeWriter Output { get; }
    EndPoint? RemoteEndPoint { get; }
    /// <summary>Bytes received from the network so far (for the stall check against bytes the connection has seen).</summary>
    long BytesReceived { get; }
    /// <summary>Bytes are waiting in the socket that the receive loop has not taken yet.</summary>
    bool HasUnreadInput { get; }
    /// <summary>The client is not reading: the output pipe is at its limit.</summary>
    bool IsOutputCongested { get; }
    /// <summary>Closes at once, without flushing (keep-alive expiry, protocol violation).</summary>
    void Abort(string reason);
    /// <summary>Flushes what was written (bounded by the timeout), then closes.</summary>
    Task CloseAsync(TimeSpan flushTimeout);
}
