using CsiScst.Commands;
using CsiScst.Core.Grpc;

namespace CsiScst.Tests.Foundation;

public sealed class EndpointAndParsingTests
{
    [Theory]
    [InlineData("unix:///csi/csi.sock", "/csi/csi.sock", null, 0)]
    [InlineData("tcp://10.0.0.5:9820", null, "10.0.0.5", 9820)]
    [InlineData("127.0.0.1:3260", null, "127.0.0.1", 3260)]
    [InlineData("tcp://[fd00::1]:9820", null, "fd00::1", 9820)]
    public void Endpoints_parse(string text, string? socket, string? host, int port)
    {
        var endpoint = EndpointAddress.Parse(text);
        Assert.Equal(socket, endpoint.SocketPath);
        Assert.Equal(host, endpoint.Host);
        Assert.Equal(port, endpoint.Port);
    }

    [Theory]
    [InlineData("unix://relative.sock")]
    [InlineData("")]
    [InlineData("tcp://host")]
    [InlineData("tcp://host:99999")]
    public void Bad_endpoints_say_what_is_expected(string text)
    {
        Assert.False(EndpointAddress.TryParse(text, out _, out var error));
        Assert.NotEmpty(error);
    }

    [Theory]
    [InlineData("1073741824", 1073741824L)]
    [InlineData("1Gi", 1073741824L)]
    [InlineData("512Mi", 536870912L)]
    [InlineData("10G", 10_000_000_000L)]
    [InlineData("4Ki", 4096L)]
    public void Sizes_parse(string text, long bytes)
    {
        Assert.True(Parsing.TryParseSize(text, out var parsed));
        Assert.Equal(bytes, parsed);
    }

    [Theory]
    [InlineData("")]
    [InlineData("Gi")]
    [InlineData("1Xi")]
    [InlineData("-1")]
    [InlineData("99999999999Ti")]
    public void Bad_sizes_do_not_parse(string text)
    {
        Assert.False(Parsing.TryParseSize(text, out _));
    }

    [Fact]
    public void Pairs_keep_equals_signs_in_values_and_reject_missing_keys()
    {
        var map = Parsing.ParsePairs(["a=1", "b=x=y"], "--param");
        Assert.Equal("1", map["a"]);
        Assert.Equal("x=y", map["b"]);
        Assert.Throws<FormatException>(() => Parsing.ParsePairs(["=v"], "--param"));
        Assert.Throws<FormatException>(() => Parsing.ParsePairs(["novalue"], "--param"));
    }
}
