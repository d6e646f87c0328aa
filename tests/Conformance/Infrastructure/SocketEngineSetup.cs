using System.Runtime.CompilerServices;
using Broker.Transport;

namespace Conformance.Infrastructure;

internal static class SocketEngineSetup
{
    /// <summary>
    /// The runtime's socket engine reads its mode once per process, at the first socket: run every test with the
    /// broker's production default (socket events handled inline on the engine's threads), whichever test opens a
    /// socket first.
    /// </summary>
    [ModuleInitializer]
    internal static void UseBrokerDefaults()
    {
        Environment.SetEnvironmentVariable(SocketEngineSettings.InlineCompletionsVariable, "1");
        Environment.SetEnvironmentVariable(SocketEngineSettings.ThreadCountVariable, "1");
    }
}
