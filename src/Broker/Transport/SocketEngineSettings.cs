using Broker.Hosting;
using Microsoft.Extensions.Configuration;

namespace Broker.Transport;

/// <summary>
/// The runtime's socket engine reads its settings from two environment variables once, when the process registers
/// its first socket. The broker sets them from <c>Broker:Tcp:InlineCompletions</c> and <c>Broker:Tcp:SocketThreads</c>
/// before it opens any socket; a value already in the environment wins (an operator's explicit choice).
/// </summary>
internal static class SocketEngineSettings
{
    public const string InlineCompletionsVariable = "DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS";
    public const string ThreadCountVariable = "DOTNET_SYSTEM_NET_SOCKETS_THREAD_COUNT";

    public static void Apply(IConfiguration configuration)
    {
        var section = configuration.GetSection(TcpOptions.SectionName);
        bool inline = section.GetValue(nameof(TcpOptions.InlineCompletions), true);
        int threads = section.GetValue(nameof(TcpOptions.SocketThreads), 1);
        if (Environment.GetEnvironmentVariable(InlineCompletionsVariable) is null)
        {
            Environment.SetEnvironmentVariable(InlineCompletionsVariable, inline ? "1" : "0");
        }
        if (threads > 0 && Environment.GetEnvironmentVariable(ThreadCountVariable) is null)
        {
            Environment.SetEnvironmentVariable(ThreadCountVariable, threads.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }
    }
}
