using System.Diagnostics;
using Broker.Load;

if (args.Length == 0 || args.Contains("--help") || args.Contains("-h") || args.Contains("-?"))
{
    LoadOptionsParser.WriteHelp(Console.Out);
    return args.Length == 0 ? 2 : 0;
}

LoadOptions options;
try
{
    options = LoadOptionsParser.Parse(args);
}
catch (OptionsException e)
{
    Console.Error.WriteLine($"error: {e.Message}");
    return 2;
}

// The cooperative deadline stops the scenario and still reports; the watchdog ends the process
// if that itself hangs, so that no run outlives its flags.
TimeSpan deadline = options.Deadline;
using var deadlineSource = new CancellationTokenSource(deadline, TimeProvider.System);
using var watchdog = TimeProvider.System.CreateTimer(
    _ =>
    {
        Console.Error.WriteLine($"hard stop: still running {deadline.TotalSeconds + 10:F0}s after start");
        Environment.Exit(3);
    },
    null,
    deadline + TimeSpan.FromSeconds(10),
    Timeout.InfiniteTimeSpan);
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true;
    deadlineSource.Cancel();
};

if (options.IsWorker)
{
    WorkerResult workerResult = await ScenarioRunner.RunAsync(options, new WorkerChannel(), deadlineSource.Token);
    WorkerChannel.WriteResult(workerResult);
    return 0;
}

using var progress = options.Progress ? new ProgressView() : null;
if (options.WorkerCount <= 1)
{
    LoadReport report = await ScenarioRunner.RunInProcessAsync(options, deadlineSource.Token, progress);
    progress?.Dispose();
    Emit(options, report.Result, report.Summary, report.Json);
    return 0;
}

long started = Stopwatch.GetTimestamp();
var probe = new BrokerProbe(options.BrokerPid);
probe.Sample("start");
(WorkerResult merged, int workersFailed) = await new Coordinator(options, args, probe, progress).RunAsync(deadlineSource.Token);
probe.Sample("end");
progress?.Dispose();
(string summary, string json) = Report.Build(options, merged, probe, options.WorkerCount, workersFailed, Stopwatch.GetElapsedTime(started).TotalSeconds);
Emit(options, merged, summary, json);
return workersFailed > 0 ? 1 : 0;

static void Emit(LoadOptions options, WorkerResult result, string summary, string json)
{
    SummaryTable.Write(Console.Out, summary, interactive: !Console.IsOutputRedirected);
    // Scripts read this line: its form does not change.
    Console.Out.WriteLine("RESULT " + json);
    if (options.JsonOut is { } path)
    {
        File.WriteAllText(path, json + Environment.NewLine);
    }
    if (options.ReportPath is { } report)
    {
        HtmlReport.Write(report, options, result, summary);
        Console.Error.WriteLine($"report: {Path.GetFullPath(report)}");
    }
}
