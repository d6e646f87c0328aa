using Broker.Security;
using Xunit;

namespace Broker.Tests.Security;

/// <summary>The instrument names and label values docs/metrics.md and docs/security.md promise.</summary>
public sealed class SecurityMetricsTests
{
    [Fact]
    public void Recordings_carry_the_documented_label_values()
    {
        using var metrics = new SecurityMetrics();
        var seen = new List<(string Instrument, long Value, string Tag)>();
        using var listener = Broker.Tests.Diagnostics.MeterRecording.Start(metrics.Meter, seen);

        metrics.Authentication(AuthenticationOutcome.Accepted);
        metrics.Authentication(AuthenticationOutcome.BadCredentials);
        metrics.Authentication(AuthenticationOutcome.NotAuthorized);
        metrics.HashComputed();
        metrics.AclDenied(AclAction.Publish);
        metrics.AclDenied(AclAction.Subscribe);
        metrics.AclDenied(AclAction.Receive);

        Assert.Equal(
        [
            ("mqtt.auth.results", 1, "result=accepted"),
            ("mqtt.auth.results", 1, "result=bad_credentials"),
            ("mqtt.auth.results", 1, "result=not_authorized"),
            ("mqtt.auth.password_hashes", 1, ""),
            ("mqtt.acl.denials", 1, "action=publish"),
            ("mqtt.acl.denials", 1, "action=subscribe"),
            ("mqtt.acl.denials", 1, "action=receive"),
        ], seen);
    }
}
