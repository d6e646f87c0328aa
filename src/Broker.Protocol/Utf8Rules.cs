using System.Text;
using System.Text.Unicode;

namespace Broker.Protocol;

/// <summary>The UTF-8 Encoded String rules of 1.5.4 (3.1.1) / 1.5.4 (5.0).</summary>
public static class Utf8Rules
{
    /// <summary>Well-formed UTF-8 (which excludes surrogate code points, U+D800..U+DFFF) and no U+0000.</summary>
    public static bool TryValidate(ReadOnlySpan<byte> utf8, out MqttDecodeError error)
    {
        if (utf8.IndexOf((byte)0) >= 0)
        {
            error = Errors.NullCharacter;
            return false;
        }
        if (!Utf8.IsValid(utf8))
        {
            error = Errors.InvalidUtf8;
            return false;
        }
        error = default;
        return true;
    }

    internal static readonly UTF8Encoding Strict = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);
}
