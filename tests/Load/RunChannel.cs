using System.Diagnostics;
using System.Text.Json;

namespace Broker.Load;

/// <summary>
/// How a scenario talks to whoever coordinates it: phase barriers (every worker reaches a phase
/// before any goes on, and the broker is sampled there) and progress snapshots.
/// </summary>
internal interface IRunChannel
{
    Task PhaseAsync(string phase, CancellationToken cancellationToken);
    void Progress(ProgressSnapshot snapshot, string phase);
}

/// <summary>Single-process run: the barrier is trivially passed, the probe is sampled directly.</summary>
internal sealed class InProcessChannel(BrokerProbe probe, ProgressView? progress) : IRunChannel
{
    public Task PhaseAsync(string phase, CancellationToken cancellationToken)
    {
        probe.Sample(phase);
        return Task.CompletedTask;
    }

    public void Progress(ProgressSnapshot snapshot, string phase) => progress?.Update(snapshot, phase);
}

/// <summary>
/// Worker side of the coordinator protocol, one line per message on stdout:
/// "PHASE name" (then wait for a "go" line on stdin), "PROGRESS {json}", "RESULT {json}".
/// </summary>
internal sealed class WorkerChannel : IRunChannel
{
    public const string PhasePrefix = "PHASE ";
    public const string ProgressPrefix = "PROGRESS ";
    public const string ResultPrefix = "RESULT ";

    private static readonly Lock s_stdoutLock = new();

    public async Task PhaseAsync(string phase, CancellationToken cancellationToken)
    {
        WriteLine(PhasePrefix + phase);
        string? line = await Console.In.ReadLineAsync(cancellationToken);
        if (line is null)
        {
            throw new OperationCanceledException("the coordinator went away");
        }
    }

    public void Progress(ProgressSnapshot snapshot, string phase) =>
        WriteLine(ProgressPrefix + JsonSerializer.Serialize(snapshot));

    public static void WriteResult(WorkerResult result) => WriteLine(ResultPrefix + JsonSerializer.Serialize(result));

    private static void WriteLine(string line)
    {
        lock (s_stdoutLock)
        {
            Console.Out.WriteLine(line);
            Console.Out.Flush();
        }
    }
}
