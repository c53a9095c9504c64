using Csi.V1;
using CsiScst.Core.Errors;
using CsiScst.Csi.Controller;
using CsiScst.Csi.Controller.Chap;
using Grpc.Core;

namespace CsiScst.Tests.Controller;

public sealed class CapacityAndTokenTests
{
    private const long MiB = 1L << 20;

    [Theory]
    [InlineData(0, 0, 1024, 4, 0, 1024)]           // default size
    [InlineData(0, 512, 1024, 4, 0, 512)]          // default capped by the limit
    [InlineData(0, 510, 1024, 4, 0, 508)]          // … and rounded down inside it
    [InlineData(5, 0, 1024, 4, 0, 8)]              // rounded up
    [InlineData(5, 8, 1024, 4, 0, 8)]
    [InlineData(1, 0, 1024, 4, 100, 100)]          // a copy is at least its source
    public void Sizes_follow_range_default_granularity_and_source(long required, long limit, long @default, long granularity, long minimum, long expected) =>
        Assert.Equal(expected, Capacity.Choose(Range(required, limit), @default, granularity, minimum));

    [Theory]
    [InlineData(5, 7, 4, 0)]
    [InlineData(0, 3, 4, 0)]
    [InlineData(1, 50, 4, 100)]
    public void Impossible_ranges_are_out_of_range(long required, long limit, long granularity, long minimum)
    {
        var e = Assert.Throws<StatusException>(() => Capacity.Choose(Range(required, limit), 1024, granularity, minimum));
        Assert.Equal(StatusCode.OutOfRange, e.Code);
    }

    [Fact]
    public void Tokens_round_trip_and_foreign_tokens_are_aborted()
    {
        var token = new ListToken("storage-a", "engine:token\nwith newline");
        Assert.Equal(token, ListToken.Decode(token.Encode()));
        Assert.Null(ListToken.Decode(""));
        foreach (var bad in new[] { "invalid-token", "dDEKbm8gbm9kZQ", "%%%" })
        {
            Assert.Equal(StatusCode.Aborted, Assert.Throws<StatusException>(() => ListToken.Decode(bad)).Code);
        }
    }

    [Fact]
    public void Generated_chap_secrets_are_long_and_safe_for_the_target_lexers()
    {
        var seen = new HashSet<string>();
        for (var i = 0; i < 200; i++)
        {
            var secret = ChapSecrets.Generate();
            ChapSecrets.Check(secret, "password", isSecret: true);
            Assert.True(secret.Length >= ChapSecrets.MinimumSecretLength);
            Assert.True(seen.Add(secret));
        }
        Assert.Throws<StatusException>(() => ChapSecrets.Check("has space in it", "password", true));
        Assert.Throws<StatusException>(() => ChapSecrets.Check("semi;colon;secret", "password", true));
    }

    [Fact]
    public void Backend_specific_keys_are_recognised_by_prefix()
    {
        Assert.Equal("rbd", VolumeParameters.BackendOf("rbdFeatures"));
        Assert.Equal("lvm", VolumeParameters.BackendOf("lvmStripes"));
        Assert.Null(VolumeParameters.BackendOf("rbd"));
        Assert.Null(VolumeParameters.BackendOf("rbdfeatures"));
        Assert.Null(VolumeParameters.BackendOf("poolName"));
    }

    private static CapacityRange? Range(long required, long limit) =>
        required == 0 && limit == 0 ? null : new CapacityRange { RequiredBytes = required, LimitBytes = limit };
}
