using Broker.Security;
using Xunit;

namespace Broker.Tests.Security;

public sealed class AclFileTests
{
    private static AclFile Parse(string text) => AclFile.Parse(new StringReader(text), "acl");

    [Fact]
    public void Sections_access_words_comments_and_patterns_are_read_as_mosquitto_does()
    {
        var acl = Parse("""
            # anonymous clients
            topic read public/#
              # indented comment
            topic deny public/secret

            user alice
            topic sensors/+/temperature
            topic write commands/alice
            user bob smith
            topic readwrite  bob/with space
            user alice
            topic deny sensors/private/temperature
            pattern write devices/%c/status
            pattern read users/%u/#
            """);

        Assert.Equal([new AclRule("public/secret", AclAccess.None, IsDeny: true)], acl.Anonymous.Deny);
        Assert.Equal([new AclRule("public/#", AclAccess.Read, false)], acl.Anonymous.Grant);
        var alice = acl.RulesOf("alice");
        Assert.Equal([new AclRule("sensors/+/temperature", AclAccess.ReadWrite, false), new AclRule("commands/alice", AclAccess.Write, false)], alice.Grant);
        Assert.Equal([new AclRule("sensors/private/temperature", AclAccess.None, true)], alice.Deny);
        Assert.Equal([new AclRule("bob/with space", AclAccess.ReadWrite, false)], acl.RulesOf("bob smith").Grant);
        Assert.True(acl.RulesOf("carol").IsEmpty);
        Assert.Same(acl.Anonymous, acl.RulesOf(null));
        Assert.Equal([new AclRule("devices/%c/status", AclAccess.Write, false), new AclRule("users/%u/#", AclAccess.Read, false)], acl.Patterns);
    }

    [Fact]
    public void A_single_word_after_topic_is_the_filter_with_readwrite_access()
    {
        var acl = Parse("topic read\n");
        Assert.Equal([new AclRule("read", AclAccess.ReadWrite, false)], acl.Anonymous.Grant);
    }

    [Theory]
    [InlineData("topic\n", 1, "'topic' needs a topic filter")]
    [InlineData("user\n", 1, "'user' needs a user name")]
    [InlineData("# ok\ntopic reed a/b\n", 2, "unknown access 'reed'")]
    [InlineData("topics read a/b\n", 1, "unknown keyword 'topics'")]
    [InlineData("topic read a/#/b\n", 1, "'a/#/b' is not a valid topic filter")]
    [InlineData("pattern write a+/b\n", 1, "'a+/b' is not a valid topic filter")]
    public void Lines_mosquitto_would_silently_skip_stop_loading_with_their_number(string text, int line, string expected)
    {
        var ex = Assert.Throws<SecurityFileException>(() => Parse(text));
        Assert.StartsWith($"acl line {line}: ", ex.Message);
        Assert.Contains(expected, ex.Message);
    }
}
