using Broker.Security;
using Xunit;

namespace Broker.Tests.Security;

public sealed class VerifiedCredentialCacheTests
{
    [Fact]
    public void Only_the_exact_user_password_and_file_version_hit()
    {
        var cache = new VerifiedCredentialCache(100);
        cache.Add("alice", "pw"u8, fileVersion: 3);

        Assert.True(cache.Contains("alice", "pw"u8, 3));
        Assert.False(cache.Contains("alice", "pw "u8, 3));
        Assert.False(cache.Contains("alicep", "w"u8, 3));
        Assert.False(cache.Contains("bob", "pw"u8, 3));
        Assert.False(cache.Contains("alice", "pw"u8, 4));
    }

    [Fact]
    public void The_cache_is_bounded_and_keeps_entries_that_are_used()
    {
        var cache = new VerifiedCredentialCache(10);
        cache.Add("active", "pw"u8, 0);
        for (int i = 0; i < 100; i++)
        {
            cache.Add("user" + i, "pw"u8, 0);
            Assert.True(cache.Contains("active", "pw"u8, 0));
            Assert.InRange(cache.Count, 1, 10);
        }
        Assert.False(cache.Contains("user0", "pw"u8, 0));
        Assert.True(cache.Contains("user99", "pw"u8, 0));
    }

    [Fact]
    public void A_capacity_of_zero_disables_it()
    {
        var cache = new VerifiedCredentialCache(0);
        cache.Add("alice", "pw"u8, 0);
        Assert.False(cache.Contains("alice", "pw"u8, 0));
        Assert.Equal(0, cache.Count);
    }

    [Fact]
    public void Long_passwords_are_handled_beyond_the_stack_buffer()
    {
        var cache = new VerifiedCredentialCache(10);
        byte[] longPassword = new byte[65_535];
        longPassword[^1] = 1;
        cache.Add("alice", longPassword, 0);
        Assert.True(cache.Contains("alice", longPassword, 0));
        longPassword[^1] = 2;
        Assert.False(cache.Contains("alice", longPassword, 0));
    }
}
