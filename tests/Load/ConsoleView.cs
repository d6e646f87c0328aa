using System.Diagnostics;
using Spectre.Console;

namespace Broker.Load;

/// <summary>
/// Live progress on stderr (Spectre.Console): a table redrawn in place on a terminal, one plain line per second when
/// stderr is a file or pipe (scripts and CI keep a readable log). <c>--no-progress</c> creates none.
/// </summary>
internal sealed class ProgressView : IDisposable
{
    private static readonly TimeSpan Refresh = TimeSpan.FromMilliseconds(250);

    private readonly long _startTicks = Stopwatch.GetTimestamp();
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _live = Task.CompletedTask;
    private readonly bool _interactive;
    private Latest? _latest;

    public ProgressView()
    {
        _interactive = !Console.IsErrorRedirected;
        if (_interactive)
        {
            var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
            _live = console.Live(Render()).AutoClear(false).StartAsync(async context =>
            {
                using var timer = new PeriodicTimer(Refresh, TimeProvider.System);
                try
                {
                    while (await timer.WaitForNextTickAsync(_stop.Token).ConfigureAwait(false))
                    {
                        context.UpdateTarget(Render());
                    }
                }
                catch (OperationCanceledException)
                {
                }
                context.UpdateTarget(Render());
            });
        }
    }

    public void Update(ProgressSnapshot snapshot, string phase)
    {
        Volatile.Write(ref _latest, new Latest(snapshot, phase));
        if (!_interactive)
        {
            Console.Error.WriteLine(snapshot.Format(Elapsed, phase));
        }
    }

    private double Elapsed => Stopwatch.GetElapsedTime(_startTicks).TotalSeconds;

    private Table Render()
    {
        var table = new Table().Border(TableBorder.Rounded).Title("[bold]Broker.Load[/]");
        foreach (var column in new[] { "elapsed", "phase", "connected", "failed", "pongs", "dropped", "silent closed", "published", "delivered" })
        {
            table.AddColumn(new TableColumn(column).RightAligned());
        }
        if (Volatile.Read(ref _latest) is { } latest)
        {
            var s = latest.Snapshot;
            table.AddRow($"{Elapsed:F1}s", Markup.Escape(latest.Phase), N(s.Connected), N(s.Failed), N(s.Pongs), N(s.Dropped), N(s.SilentClosed),
                N(s.Published), N(s.Delivered));
        }
        return table;

        static string N(long value) => value.ToString("N0", System.Globalization.CultureInfo.InvariantCulture);
    }

    private sealed record Latest(ProgressSnapshot Snapshot, string Phase);

    public void Dispose()
    {
        if (_stop.IsCancellationRequested)
        {
            return;
        }
        _stop.Cancel();
        _live.Wait(TimeSpan.FromSeconds(2));
        _stop.Dispose();
    }
}

/// <summary>The human summary as a Spectre.Console table on stdout (plain ASCII when stdout is not a terminal).</summary>
internal static class SummaryTable
{
    public static void Write(TextWriter output, string summary, bool interactive)
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(output),
            Ansi = interactive ? AnsiSupport.Detect : AnsiSupport.No,
            ColorSystem = interactive ? ColorSystemSupport.Detect : ColorSystemSupport.NoColors,
            Interactive = interactive ? InteractionSupport.Detect : InteractionSupport.No,
        });
        if (!interactive)
        {
            console.Profile.Width = 200; // a log file has no width: do not wrap the figures at 80 columns
        }
        console.Write(Build(summary, interactive));
    }

    /// <summary>
    /// Rows from the summary's lines: the first is the title, "  label: figures" lines become two columns,
    /// warnings span the row.
    /// </summary>
    public static Table Build(string summary, bool interactive = false)
    {
        var lines = summary.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.TrimEnd('\r')).ToList();
        var table = new Table().Border(interactive ? TableBorder.Rounded : TableBorder.Ascii);
        table.Title(lines.Count > 0 ? Markup.Escape(lines[0]) : "Broker.Load");
        table.AddColumn("measure");
        table.AddColumn("figures");
        foreach (var line in lines.Skip(1))
        {
            string text = line.Trim();
            int colon = text.IndexOf(": ", StringComparison.Ordinal);
            if (text.StartsWith("WARNING", StringComparison.Ordinal) || colon < 0)
            {
                table.AddRow(new Markup(interactive ? "[yellow]warning[/]" : "warning"), new Text(text));
            }
            else
            {
                table.AddRow(new Text(text[..colon]), new Text(text[(colon + 2)..]));
            }
        }
        return table;
    }
}
