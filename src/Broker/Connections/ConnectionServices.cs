using Broker.Connections.KeepAlive;
using Broker.Diagnostics;
using Broker.Diagnostics.Insight;
using Broker.Hosting;
using Broker.Routing;
using Broker.Security;
using Broker.Sessions;
using Microsoft.Extensions.Logging;

namespace Broker.Connections;

/// <summary>The broker-wide services every connection uses, created once and shared.</summary>
internal sealed record ConnectionServices(
    SessionStore Sessions,
    Router Router,
    WillPublisher Wills,
    TimerWheel Wheel,
    KeepAlivePolicy KeepAlivePolicy,
    KeepAliveOptions KeepAliveOptions,
    BrokerLimitsOptions Limits,
    BrokerMetrics Metrics,
    TimeProvider Time,
    ILogger Logger,
    ConnectionRegistry Registry,
    long MaxPendingOutputBytes,
    IClientAuthenticator Authenticator,
    TopicAuthorizer Authorizer,
    KeepAliveInsight? Insight = null,
    EngineOverloadGate? EngineOverload = null)
{
    /// <summary>The takeover rule (Broker:Auth:TakeoverRequiresSameUser) as one delegate, not one per CONNECT.</summary>
    public Func<string?, string?, bool> MayTakeOver { get; } = Authenticator.MayTakeOver;
}
