using System.Net;
using Broker.Security;
using Xunit;

namespace Broker.Tests.Security;

/// <summary>Issue #11: what a client sends reaches the security log escaped, so it cannot forge log lines.</summary>
public sealed class SecurityLogEscapingTests
{
    private const string Forged = "\r\n2026-01-01T00:00:00.000Z info: Broker.Security[1104] forged\u001b[2J";

    [Fact]
    public void A_refused_client_id_and_user_name_are_logged_escaped()
    {
        var logger = new ListLogger<SecurityLogEscapingTests>();
        SecurityLog.Refused(logger, "id" + Forged, IPAddress.Loopback, AuthenticationOutcome.NotAuthorized, "anonymous access is off", "user" + Forged);
        AssertNoControlCharacters(logger.All);
        Assert.Contains("id\\u000d\\u000a2026-01-01", logger.All, StringComparison.Ordinal);
        Assert.Contains("user 'user\\u000d\\u000a2026-01-01", logger.All, StringComparison.Ordinal);
    }

    [Fact]
    public void Names_unfit_for_acl_patterns_and_certificate_subjects_are_logged_escaped()
    {
        var logger = new ListLogger<SecurityLogEscapingTests>();
        SecurityLog.DangerousNameForPatterns(logger, "a/b" + Forged, "u#" + Forged);
        SecurityLog.ClientCertificateRefused(logger, "untrusted root", "CN=x" + Forged);
        Assert.Equal(2, logger.Entries.Count);
        AssertNoControlCharacters(logger.All.Replace("\n", "", StringComparison.Ordinal));
    }

    private static void AssertNoControlCharacters(string text) =>
        Assert.DoesNotContain(text, c => c is '\r' or '\n' or '\u001b');
}
