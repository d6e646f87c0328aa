using System.Globalization;
using System.Text;
using Broker.Diagnostics;
using Broker.Protocol;
using Broker.Routing;
using Broker.Sessions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Broker.Hosting;

/// <summary>
/// Publishes the broker's state under <c>$SYS/broker/...</c> every <c>Broker:Sys:IntervalSeconds</c>, in the
/// names Mosquitto uses (tools such as MQTT Explorer read them), plus this broker's keep-alive and disconnect
/// counters. Messages are retained QoS 0, and a topic is published again only when its value changed, as
/// Mosquitto does; a client subscribing later gets the last values at once. Clients cannot publish there.
/// </summary>
internal sealed class SysTopicPublisher : BackgroundService
{
    private static readonly (string Name, double Minutes)[] LoadWindows = [("1min", 1), ("5min", 5), ("15min", 15)];

    // Rates for $SYS/broker/load/<name>/<window>: per-minute moving averages of these totals.
    private static readonly (string Topic, string Instrument)[] LoadSources =
    [
        ("messages/received", "mqtt.packets.received"),
        ("messages/sent", "mqtt.packets.sent"),
        ("publish/received", "mqtt.messages.published"),
        ("publish/sent", "mqtt.messages.delivered"),
        ("publish/dropped", "mqtt.messages.dropped"),
        ("bytes/received", "mqtt.network.received"),
        ("bytes/sent", "mqtt.network.sent"),
        ("connections", "mqtt.connect.attempts"),
    ];

    private readonly Router _router;
    private readonly SessionStore _sessions;
    private readonly Lazy<MeterTotals> _meterTotals;
    private readonly TimeProvider _time;
    private readonly SysOptions _options;
    private readonly ILogger<SysTopicPublisher> _logger;
    private readonly Dictionary<string, string> _published = new(StringComparer.Ordinal);
    private readonly Dictionary<string, double> _load = new(StringComparer.Ordinal);
    private readonly Dictionary<string, long> _lastTotals = new(StringComparer.Ordinal);
    private long _started;
    private long _lastSample;
    private long _maximumConnected;

    public SysTopicPublisher(Router router, SessionStore sessions, Lazy<MeterTotals> totals, TimeProvider time, IOptions<SysOptions> options,
        ILogger<SysTopicPublisher> logger)
    {
        _router = router;
        _sessions = sessions;
        _meterTotals = totals;
        _time = time;
        _options = options.Value;
        _logger = logger;
    }

    private PeriodicTimer? _timer;

    /// <summary>
    /// The first publication and the timer happen here, synchronously, not in <see cref="ExecuteAsync"/> (which the
    /// host runs on another thread): so the totals' listener exists before the MQTT listener starts (this service is
    /// registered before it) and no connect is missed by clients/connected, and the timer exists once start-up is over.
    /// </summary>
    public override Task StartAsync(CancellationToken cancellationToken)
    {
        _started = _lastSample = _time.GetTimestamp();
        int seconds = _options.IntervalSeconds;
        if (seconds > 0)
        {
            BrokerLog.SysPublishing(_logger, seconds);
            PublishOnce();
            _timer = new PeriodicTimer(TimeSpan.FromSeconds(seconds), _time);
        }
        return base.StartAsync(cancellationToken);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (_timer is not { } timer)
        {
            return;
        }
        using (timer)
        {
            try
            {
                while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
                {
                    PublishOnce();
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
            }
        }
    }

    /// <summary>Reads every value and publishes those that changed since the last call.</summary>
    internal void PublishOnce()
    {
        foreach (var (topic, value) in Collect())
        {
            if (_published.TryGetValue(topic, out var previous) && previous == value)
            {
                continue;
            }
            _published[topic] = value;
            Publish(topic, value);
        }
    }

    private MeterTotals Totals => _meterTotals.Value;

    /// <summary>Every $SYS topic and its current text value (Mosquitto publishes plain decimal text).</summary>
    internal IEnumerable<(string Topic, string Value)> Collect()
    {
        long now = _time.GetTimestamp();
        var counts = _sessions.Measure();
        long connected = Math.Max(0, Totals.Get("mqtt.clients.connected"));
        _maximumConnected = Math.Max(_maximumConnected, connected);
        const string b = "$SYS/broker/";
        var values = new List<(string, string)>
        {
            (b + "version", $"{BrokerVersion.Product} version {BrokerVersion.Display}"),
            (b + "uptime", $"{(long)_time.GetElapsedTime(_started, now).TotalSeconds} seconds"),
            (b + "clients/connected", Text(connected)),
            (b + "clients/disconnected", Text(counts.Offline)),
            (b + "clients/total", Text(connected + counts.Offline)),
            (b + "clients/maximum", Text(_maximumConnected)),
            (b + "messages/received", Text(Totals.Get("mqtt.packets.received"))),
            (b + "messages/sent", Text(Totals.Get("mqtt.packets.sent"))),
            (b + "messages/stored", Text(_router.RetainedCount + counts.Queued + counts.Inflight)),
            (b + "messages/inflight", Text(counts.Inflight)),
            (b + "messages/queued", Text(counts.Queued)),
            (b + "publish/messages/received", Text(Totals.Get("mqtt.messages.published"))),
            (b + "publish/messages/sent", Text(Totals.Get("mqtt.messages.delivered"))),
            (b + "publish/messages/dropped", Text(Totals.Get("mqtt.messages.dropped"))),
            (b + "bytes/received", Text(Totals.Get("mqtt.network.received"))),
            (b + "bytes/sent", Text(Totals.Get("mqtt.network.sent"))),
            (b + "retained messages/count", Text(_router.RetainedCount)),
            (b + "subscriptions/count", Text(_router.SubscriptionCount)),
            (b + "heap/current", Text(GC.GetTotalMemory(forceFullCollection: false))),
            // This broker's own: how devices leave, and the keep-alive in particular.
            (b + "keepalive/expired", Text(Totals.Get("mqtt.keepalive.expiries"))),
            (b + "keepalive/refused", Text(Totals.ByLabel("mqtt.connect.attempts").GetValueOrDefault("keep_alive_refused"))),
        };
        // Every cause from the start, at 0 until it happens, like the metric's series.
        var disconnects = Totals.ByLabel("mqtt.disconnects");
        foreach (var cause in Enum.GetValues<DisconnectCause>())
        {
            string name = DiagnosticNames.Of(cause);
            values.Add((b + "disconnects/" + name, Text(disconnects.GetValueOrDefault(name))));
        }

        // Mosquitto's load figures: exponential moving averages, per minute, over 1, 5 and 15 minutes.
        double elapsedMinutes = _time.GetElapsedTime(_lastSample, now).TotalMinutes;
        _lastSample = now;
        foreach (var (topic, instrument) in LoadSources)
        {
            long total = Totals.Get(instrument);
            bool first = !_lastTotals.TryGetValue(instrument, out long before);
            _lastTotals[instrument] = total;
            double perMinute = first || elapsedMinutes <= 0 ? 0 : (total - before) / elapsedMinutes;
            foreach (var (window, minutes) in LoadWindows)
            {
                string key = b + "load/" + topic + "/" + window;
                double previous = _load.GetValueOrDefault(key);
                double decay = Math.Exp(-elapsedMinutes / minutes);
                double value = first ? 0 : perMinute + (decay * (previous - perMinute));
                _load[key] = value;
                values.Add((key, value.ToString("F2", CultureInfo.InvariantCulture)));
            }
        }
        return values;
    }

    private static string Text(long value) => value.ToString(CultureInfo.InvariantCulture);

    private void Publish(string topic, string value)
    {
        _router.PublishServerMessage(new ApplicationMessage
        {
            Topic = topic,
            TopicUtf8 = Encoding.UTF8.GetBytes(topic),
            Payload = Encoding.UTF8.GetBytes(value),
            QoS = QualityOfService.AtMostOnce,
            Retain = true,
            ReceivedTimestamp = _time.GetTimestamp(),
        });
    }
}
