using CsiScst.Core.Ids;

namespace CsiScst.Tests.Foundation;

public sealed class IdsTests
{
    private readonly ObjectNames _names = new("k8s");

    [Fact]
    public void Volume_key_is_deterministic_16_hex_and_depends_on_instance_and_name()
    {
        var key = _names.VolumeKey("pvc-0f1e2d3c");
        Assert.Matches("^[0-9a-f]{16}$", key);
        Assert.Equal(key, new ObjectNames("k8s").VolumeKey("pvc-0f1e2d3c"));
        Assert.NotEqual(key, new ObjectNames("other").VolumeKey("pvc-0f1e2d3c"));
        Assert.NotEqual(key, _names.VolumeKey("pvc-0f1e2d3d"));
        Assert.NotEqual(key, _names.SnapshotKey("pvc-0f1e2d3c"));
    }

    [Fact]
    public void Volume_id_round_trips_and_stays_within_128_bytes()
    {
        var id = new VolumeId("k8s", "storage-node-1.example.com", "lvm", "vg0-thin", _names.VolumeKey("pvc-a"));
        var text = id.ToString();
        Assert.StartsWith("v1:k8s:storage-node-1.example.com:lvm:vg0-thin:", text);
        Assert.True(text.Length <= 128);
        Assert.True(VolumeId.TryParse(text, out var parsed));
        Assert.Equal(id, parsed);
    }

    [Theory]
    [InlineData("")]
    [InlineData("v2:k8s:n:file:p:0123456789abcdef")]
    [InlineData("v1:K8S:n:file:p:0123456789abcdef")]
    [InlineData("v1:k8s:n:nfs:p:0123456789abcdef")]
    [InlineData("v1:k8s:n:file:p:0123456789ABCDEF")]
    [InlineData("v1:k8s:n:file:p:0123456789abcde")]
    [InlineData("v1:k8s:n/x:file:p:0123456789abcdef")]
    [InlineData("v1:k8s:n:file:p:0123456789abcdef:extra")]
    [InlineData("some-other-driver-volume")]
    public void Foreign_or_malformed_volume_ids_do_not_parse(string text)
    {
        Assert.False(VolumeId.TryParse(text, out _));
    }

    [Fact]
    public void Snapshot_id_round_trips_and_names_its_source()
    {
        var id = new SnapshotId("k8s", "n1", "rbd", "ceph", _names.VolumeKey("v"), _names.SnapshotKey("s"));
        Assert.True(SnapshotId.TryParse(id.ToString(), out var parsed));
        Assert.Equal(id, parsed);
        Assert.Equal(new VolumeId("k8s", "n1", "rbd", "ceph", _names.VolumeKey("v")), parsed!.SourceVolume);
        Assert.False(VolumeId.TryParse(id.ToString(), out _));
    }

    [Fact]
    public void Node_id_carries_node_name_and_initiator()
    {
        Assert.True(NodeId.TryParse("worker-1/iqn.1993-08.org.debian:01:3f5a9c", out var id));
        Assert.Equal("worker-1", id!.NodeName);
        Assert.Equal("iqn.1993-08.org.debian:01:3f5a9c", id.InitiatorIqn);
        Assert.False(NodeId.TryParse("worker-1", out _));
        Assert.False(NodeId.TryParse("worker-1/not-an-iqn", out _));
        Assert.False(NodeId.TryParse("a/b/iqn.1993-08.org.debian:01:3f", out _));
        Assert.False(NodeId.TryParse("w/iqn.1993-08.org.debian:" + new string('x', 300), out _));
    }

    [Fact]
    public void Object_names_carry_the_instance_and_map_back_to_keys()
    {
        var key = _names.VolumeKey("pvc-x");
        Assert.Equal($"iqn.2026-11.io.csi-scst:k8s.{key}", _names.TargetIqn(key));
        Assert.Equal(key, _names.KeyFromTargetIqn(_names.TargetIqn(key)));
        Assert.Null(new ObjectNames("other").KeyFromTargetIqn(_names.TargetIqn(key)));
        Assert.Null(_names.KeyFromTargetIqn("iqn.2026-11.io.csi-scst:k8s.notakey"));
        Assert.Equal($"csi_k8s_{key}", _names.DeviceName(key));
        Assert.True(_names.DeviceName(key).Length <= 64);
        Assert.Equal(key, _names.KeyFromDeviceName(_names.DeviceName(key)));
        Assert.Equal($"csi-k8s-{key}", _names.VolumeName(key));
        Assert.Equal(key, _names.KeyFromVolumeName(_names.VolumeName(key)));
        Assert.Equal("CS" + key, ObjectNames.Serial(key));
        Assert.True(ObjectNames.Serial(key).Length <= 20, "SCST usn allows 20 characters");
        Assert.Matches("^ini_[0-9a-f]{16}$", ObjectNames.InitiatorGroup("iqn.1993-08.org.debian:01:abc"));
    }

    [Theory]
    [InlineData("")]
    [InlineData("toolongid")]
    [InlineData("UPPER")]
    [InlineData("a-b")]
    public void Invalid_instance_ids_are_refused(string instance)
    {
        Assert.Throws<ArgumentException>(() => new ObjectNames(instance));
    }

    [Theory]
    [InlineData("csi-scst.io", true)]
    [InlineData("iscsi.csi.example.com", true)]
    [InlineData("-bad.io", false)]
    [InlineData("bad_.io", false)]
    [InlineData("", false)]
    public void Driver_names_follow_the_spec(string name, bool valid)
    {
        Assert.Equal(valid, Names.IsValidDriverName(name));
        Assert.False(Names.IsValidDriverName(new string('a', 64)));
    }
}
