using System.Diagnostics.Metrics;

namespace Broker.Tests.Diagnostics;

/// <summary>Records every long measurement of one meter as (instrument name, value, first tag as "key=value").</summary>
internal static class MeterRecording
{
    public static MeterListener Start(Meter meter, List<(string Instrument, long Value, string Tag)> seen)
    {
        var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (ReferenceEquals(instrument.Meter, meter))
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
        {
            lock (seen)
            {
                seen.Add((instrument.Name, value, tags.Length == 0 ? "" : $"{tags[0].Key}={tags[0].Value}"));
            }
        });
        listener.Start();
        return listener;
    }
}
