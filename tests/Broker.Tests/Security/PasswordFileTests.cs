using Broker.Security;
using Xunit;

namespace Broker.Tests.Security;

public sealed class PasswordFileTests
{
    [Fact]
    public void Users_comments_blank_lines_and_windows_line_ends_are_read()
    {
        string text = $"# fleet users\r\nalice:{PasswordHashTests.Alice}\r\n\r\n   \nbob:{PasswordHashTests.Bob}\n";

        var file = PasswordFile.Parse(new StringReader(text), "pw");

        Assert.Equal(2, file.Count);
        Assert.True(file.TryGetHash("alice", out var alice));
        Assert.True(alice!.Verify("correct horse"u8));
        Assert.True(file.TryGetHash("bob", out var bob));
        Assert.True(bob!.Verify("s3cret"u8));
        Assert.False(file.TryGetHash("Alice", out _));
    }

    [Fact]
    public void The_decoy_for_unknown_users_costs_what_the_first_user_costs()
    {
        var file = PasswordFile.Parse(new StringReader($"alice:{PasswordHashTests.Alice}\n"), "pw");
        Assert.Equal(101, file.Decoy.Iterations);
        Assert.Equal(PasswordHash.DefaultIterations, PasswordFile.Parse(new StringReader(""), "pw").Decoy.Iterations);
    }

    [Theory]
    [InlineData("alice\n", 1, "expected user:hash")]
    [InlineData(":$6$abc$def\n", 1, "expected user:hash")]
    [InlineData("# ok\nalice:secret\n", 2, "user 'alice': not a Mosquitto password hash")]
    [InlineData("alice:" + PasswordHashTests.Alice + "\nalice:" + PasswordHashTests.Alice + "\n", 2, "user 'alice' is listed twice")]
    public void A_malformed_line_is_reported_with_its_number_and_never_its_hash(string text, int line, string expected)
    {
        var ex = Assert.Throws<SecurityFileException>(() => PasswordFile.Parse(new StringReader(text), "/etc/broker/pw"));
        Assert.StartsWith($"/etc/broker/pw line {line}: ", ex.Message);
        Assert.Contains(expected, ex.Message);
        Assert.DoesNotContain("secret", ex.Message);
        Assert.DoesNotContain("6UW1pHgDcc6Yrgml", ex.Message);
    }
}
