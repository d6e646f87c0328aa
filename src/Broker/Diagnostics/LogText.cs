using System.Text;

namespace Broker.Diagnostics;

/// <summary>
/// Text a client chose (client id, user name, topic) made safe for a log line: control characters (CR, LF, ESC and
/// the rest of C0/C1, DEL, the Unicode line and paragraph separators, bidirectional overrides) are escaped as \uXXXX,
/// so a client cannot forge log lines or recolour a terminal, and the length is capped. Clean text comes back as the
/// same instance: the common case allocates nothing.
/// </summary>
internal static class LogText
{
    public const int MaxLength = 256;

    public static string Escape(string? text)
    {
        if (text is null)
        {
            return string.Empty;
        }
        int i = 0;
        while (i < text.Length && i < MaxLength && !NeedsEscape(text[i]))
        {
            i++;
        }
        if (i == text.Length)
        {
            return text;
        }
        var sb = new StringBuilder(Math.Min(text.Length, MaxLength) + 16);
        sb.Append(text, 0, i);
        int shown = i;
        for (; i < text.Length && shown < MaxLength; i++, shown++)
        {
            char c = text[i];
            if (NeedsEscape(c))
            {
                sb.Append("\\u").Append(((int)c).ToString("x4", System.Globalization.CultureInfo.InvariantCulture));
            }
            else
            {
                sb.Append(c);
            }
        }
        if (i < text.Length)
        {
            sb.Append("...(").Append(text.Length - i).Append(" more characters)");
        }
        return sb.ToString();
    }

    private static bool NeedsEscape(char c) =>
        c < 0x20 || (c >= 0x7F && c <= 0x9F) || c is '\u2028' or '\u2029'
        || (c >= '\u202A' && c <= '\u202E') || (c >= '\u2066' && c <= '\u2069');
}
