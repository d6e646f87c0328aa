using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Http;

namespace Broker.Hosting;

/// <summary><c>Authorization: Bearer &lt;token&gt;</c> on the HTTP listener (admin API, /metrics), compared in constant time.</summary>
internal static class BearerToken
{
    private const string Scheme = "Bearer ";

    /// <summary>A token anyone could guess is worse than none.</summary>
    private const int MinLength = 16;

    public static bool IsPresented(HttpContext http, byte[] token)
    {
        string header = http.Request.Headers.Authorization.ToString();
        return header.StartsWith(Scheme, StringComparison.OrdinalIgnoreCase)
            && CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(header[Scheme.Length..].Trim()), token);
    }

    /// <summary>Null when acceptable, else the problem (for an options validator).</summary>
    public static string? Check(string key, string? token) =>
        token is not null && (token.Length < MinLength || token.Any(char.IsWhiteSpace))
            ? $"{key} must be at least {MinLength} characters without spaces (was {token.Length} characters)"
            : null;
}
