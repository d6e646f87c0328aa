using System.Diagnostics.Metrics;
using Broker.Diagnostics;

namespace Broker.Security;

internal enum AclAction
{
    Publish,
    Subscribe,
    Receive,
}

/// <summary>
/// Security instruments on the broker's meter (the factory hands back the same meter for the same name, so they
/// are exported with the others). Tag arrays are built once; recording does not allocate.
/// </summary>
internal sealed class SecurityMetrics : IDisposable
{
    private readonly bool _ownsMeter;
    private readonly Counter<long> _authentications;
    private readonly Counter<long> _hashComputations;
    private readonly Counter<long> _aclDenials;
    private readonly KeyValuePair<string, object?>[][] _outcomeTags;
    private readonly KeyValuePair<string, object?>[][] _actionTags;

    public SecurityMetrics(IMeterFactory? meterFactory = null)
    {
        _ownsMeter = meterFactory is null;
        var meter = Meter = meterFactory?.Create(BrokerMetrics.MeterName) ?? new Meter(BrokerMetrics.MeterName);
        _authentications = meter.CreateCounter<long>("mqtt.auth.results", "{connect}", "CONNECT authentication outcomes");
        _hashComputations = meter.CreateCounter<long>("mqtt.auth.password_hashes", "{hash}",
            "Password hashes computed (verification cache misses, including unknown users and failures)");
        _aclDenials = meter.CreateCounter<long>("mqtt.acl.denials", "{denial}", "Operations refused by the ACL or the $SYS rule");
        _outcomeTags = [Tags("result", "accepted"), Tags("result", "bad_credentials"), Tags("result", "not_authorized")];
        _actionTags = [Tags("action", "publish"), Tags("action", "subscribe"), Tags("action", "receive")];
    }

    internal Meter Meter { get; }

    public void Authentication(AuthenticationOutcome outcome) => _authentications.Add(1, _outcomeTags[(int)outcome]);

    public void HashComputed() => _hashComputations.Add(1);

    public void AclDenied(AclAction action) => _aclDenials.Add(1, _actionTags[(int)action]);

    /// <summary>Every series at 0 from the first scrape, as the broker's other counters (rate() needs a first sample).</summary>
    public void DeclareSeries()
    {
        foreach (var tags in _outcomeTags)
        {
            _authentications.Add(0, tags);
        }
        foreach (var tags in _actionTags)
        {
            _aclDenials.Add(0, tags);
        }
        _hashComputations.Add(0);
    }

    private static KeyValuePair<string, object?>[] Tags(string key, string value) => [new(key, value)];

    /// <summary>A meter from the factory belongs to the factory; only one made here is disposed here.</summary>
    public void Dispose()
    {
        if (_ownsMeter)
        {
            Meter.Dispose();
        }
    }
}
