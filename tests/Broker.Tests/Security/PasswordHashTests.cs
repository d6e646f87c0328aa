using System.Text;
using Broker.Security;
using Xunit;

namespace Broker.Tests.Security;

public sealed class PasswordHashTests
{
    // Written by mosquitto_passwd 2.0.11 (Debian): "-b v alice 'correct horse'", "-H sha512 -b v bob s3cret",
    // "-b v carol pässwörd". Fixed vectors, so these tests need no mosquitto installed.
    internal const string Alice = "$7$101$6UW1pHgDcc6Yrgml$d2tGudri8bifGZQn31pLXYO6rk7tIW5Ugb9yVr0hSusiAhgDabOdx98QBlTB+HnWSq8XqIy8A2QKLi8VT15WeA==";
    internal const string Bob = "$6$0Ug4T0F1CBcj8d1g$GTQmNDIbZh36VSISsPtD/Jj6YKvIogndJjsgD2ReNtsjXaPcLLa/rqc4QmzdjVMmUOCRkTKJt+lhM2kzyP7bnw==";
    internal const string Carol = "$7$101$1AFnK88gsssKpb5V$JpLHM6H+eXahTgYfdQelMpkLm6P6y/FqG/Pjw4GvVgtMoozcb72nJ0y1nuq9cuBGIJBt21dEs/6MYIkAcb5JbQ==";

    private static PasswordHash Parse(string encoded)
    {
        Assert.True(PasswordHash.TryParse(encoded, out var hash, out string? error), error);
        return hash!;
    }

    [Theory]
    [InlineData(Alice, "correct horse", 7, 101)]
    [InlineData(Bob, "s3cret", 6, 1)]
    [InlineData(Carol, "pässwörd", 7, 101)]
    public void Hashes_written_by_mosquitto_passwd_verify_their_password_and_only_it(string encoded, string password, int kind, int iterations)
    {
        var hash = Parse(encoded);

        Assert.Equal((PasswordHashKind)kind, hash.Kind);
        Assert.Equal(iterations, hash.Iterations);
        Assert.True(hash.Verify(Encoding.UTF8.GetBytes(password)));
        Assert.False(hash.Verify(Encoding.UTF8.GetBytes(password + " ")));
        Assert.False(hash.Verify(Encoding.UTF8.GetBytes(password.ToUpperInvariant())));
        Assert.False(hash.Verify([]));
    }

    [Theory]
    [InlineData(Alice)]
    [InlineData(Bob)]
    public void Encoding_round_trips_to_the_same_text(string encoded) => Assert.Equal(encoded, Parse(encoded).Encode());

    [Fact]
    public void Created_hashes_use_pbkdf2_with_the_default_iterations_a_fresh_salt_and_verify()
    {
        var first = PasswordHash.Create("pw"u8);
        var second = PasswordHash.Create("pw"u8);

        Assert.Equal(PasswordHashKind.Sha512Pbkdf2, first.Kind);
        Assert.Equal(PasswordHash.DefaultIterations, first.Iterations);
        Assert.NotEqual(first.Encode(), second.Encode());
        Assert.Matches(@"^\$7\$100000\$[A-Za-z0-9+/]{16}\$[A-Za-z0-9+/]{86}==$", first.Encode());
        Assert.True(Parse(first.Encode()).Verify("pw"u8));
        Assert.False(Parse(first.Encode()).Verify("pW"u8));
    }

    [Fact]
    public void Password_bytes_are_taken_as_sent_not_as_text()
    {
        byte[] binary = [0x00, 0xFF, 0x10, 0x80];
        var hash = PasswordHash.Create(binary, iterations: 1000);
        Assert.True(hash.Verify(binary));
        Assert.False(hash.Verify(binary.AsSpan(0, 3)));
    }

    [Theory]
    [InlineData("plaintext", "plain-text passwords are not accepted")]
    [InlineData("$5$abc$def", "unknown hash type")]
    [InlineData("$7$0$6UW1pHgDcc6Yrgml$d2tGudri8bifGZQn31pLXYO6rk7tIW5Ugb9yVr0hSusiAhgDabOdx98QBlTB+HnWSq8XqIy8A2QKLi8VT15WeA==", "iteration count")]
    [InlineData("$7$99999999$6UW1pHgDcc6Yrgml$d2tGudri8bifGZQn31pLXYO6rk7tIW5Ugb9yVr0hSusiAhgDabOdx98QBlTB+HnWSq8XqIy8A2QKLi8VT15WeA==", "iteration count")]
    [InlineData("$7$-1$6UW1pHgDcc6Yrgml$d2tGudri8bifGZQn31pLXYO6rk7tIW5Ugb9yVr0hSusiAhgDabOdx98QBlTB+HnWSq8XqIy8A2QKLi8VT15WeA==", "iteration count")]
    [InlineData("$7$101$!!!$d2tGudri8bifGZQn31pLXYO6rk7tIW5Ugb9yVr0hSusiAhgDabOdx98QBlTB+HnWSq8XqIy8A2QKLi8VT15WeA==", "salt")]
    [InlineData("$7$101$6UW1pHgDcc6Yrgml$d2tGudri8bifGZQn", "hash is not 64 bytes")]
    [InlineData("$6$0Ug4T0F1CBcj8d1g", "not a Mosquitto password hash")]
    [InlineData("$7$101$6UW1pHgDcc6Yrgml", "unknown hash type")]
    public void Malformed_hashes_are_refused_with_a_reason(string encoded, string expected)
    {
        Assert.False(PasswordHash.TryParse(encoded, out var hash, out string? error));
        Assert.Null(hash);
        Assert.Contains(expected, error);
    }

    [Fact]
    public void ToString_never_shows_salt_or_hash()
    {
        var hash = Parse(Alice);
        Assert.Equal("PBKDF2-SHA512 (101 iterations)", hash.ToString());
        Assert.DoesNotContain("6UW1", Parse(Alice).ToString());
    }
}
