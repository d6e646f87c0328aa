using Broker.Diagnostics;
using Xunit;

namespace Broker.Tests.Diagnostics;

public sealed class LogTextTests
{
    [Fact]
    public void Clean_text_is_returned_as_the_same_instance()
    {
        string id = "sensor-0042/eu";
        Assert.Same(id, LogText.Escape(id));
    }

    [Theory]
    [InlineData("a\r\nINFO forged line", "a\\u000d\\u000aINFO forged line")]
    [InlineData("\u001b[31mred", "\\u001b[31mred")]
    [InlineData("tab\there", "tab\\u0009here")]
    [InlineData("del\u007f c1\u0085", "del\\u007f c1\\u0085")]
    [InlineData("sep\u2028x\u2029", "sep\\u2028x\\u2029")]
    [InlineData("bidi\u202eevil\u2066", "bidi\\u202eevil\\u2066")]
    public void Control_characters_are_escaped(string raw, string logged)
    {
        Assert.Equal(logged, LogText.Escape(raw));
    }

    [Fact]
    public void Long_text_is_cut_with_the_number_of_characters_left_out()
    {
        string escaped = LogText.Escape(new string('x', 1000));
        Assert.StartsWith(new string('x', LogText.MaxLength) + "...(744 more characters)", escaped);
        Assert.Equal(string.Empty, LogText.Escape(null));
    }
}
