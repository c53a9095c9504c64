using CsiScst.Backends.Pools;
using CsiScst.Core.Errors;
using Grpc.Core;

namespace CsiScst.Tests.Backends;

public sealed class PoolOptionsParserTests
{
    [Fact]
    public void File_pool_with_defaults()
    {
        var pool = Assert.IsType<FilePoolOptions>(PoolOptionsParser.Parse("name=files,backend=file,path=/var/lib/csi-scst/volumes"));
        Assert.Equal("files", pool.Name);
        Assert.Equal("file", pool.Backend);
        Assert.Equal("/var/lib/csi-scst/volumes", pool.Path);
        Assert.Equal(ReflinkMode.Auto, pool.Reflink);
        Assert.Equal(1.0, pool.Overcommit);
        Assert.True(pool.Create);
    }

    [Fact]
    public void File_pool_with_every_key()
    {
        var pool = Assert.IsType<FilePoolOptions>(PoolOptionsParser.Parse(" name = f1 , backend=file,path=/srv/v,reflink=always,overcommit=2.5,create=false"));
        Assert.Equal("f1", pool.Name);
        Assert.Equal(ReflinkMode.Always, pool.Reflink);
        Assert.Equal(2.5, pool.Overcommit);
        Assert.False(pool.Create);
    }

    [Fact]
    public void Lvm_thin_and_thick_pools()
    {
        var thin = Assert.IsType<LvmPoolOptions>(PoolOptionsParser.Parse("name=vg0,backend=lvm,vg=vg0,thinpool=tp0,overcommit=2.0"));
        Assert.Equal("vg0", thin.VolumeGroup);
        Assert.Equal("tp0", thin.ThinPool);
        Assert.Equal(2.0, thin.Overcommit);

        var thick = Assert.IsType<LvmPoolOptions>(PoolOptionsParser.Parse("name=thick,backend=lvm,vg=data-vg,cow_percent=25,thick_clones=refuse"));
        Assert.Null(thick.ThinPool);
        Assert.Equal(25, thick.CowPercent);
        Assert.False(thick.ThickClones);
    }

    [Fact]
    public void Rbd_pool_with_list_values_spanning_commas()
    {
        var pool = Assert.IsType<RbdPoolOptions>(PoolOptionsParser.Parse(
            "name=ceph,backend=rbd,pool=rbd,user=client.k8s,keyring=/etc/ceph/ceph.client.k8s.keyring,conf=/etc/ceph/ceph.conf,"
            + "mon_host=10.0.0.1:6789,10.0.0.2:6789,features=layering,exclusive-lock,object-map,flatten=on-depth:3,object_size=8M,timeout=20"));
        Assert.Equal("rbd", pool.Pool);
        Assert.Equal("k8s", pool.User);
        Assert.Equal("/etc/ceph/ceph.client.k8s.keyring", pool.Keyring);
        Assert.Equal("10.0.0.1:6789,10.0.0.2:6789", pool.MonHost);
        Assert.Equal(["layering", "exclusive-lock", "object-map"], pool.Features);
        Assert.Equal(new FlattenPolicy(FlattenPolicy.Mode.OnDepth, 3), pool.Flatten);
        Assert.Equal(8L * 1024 * 1024, pool.ObjectSize);
        Assert.Equal(TimeSpan.FromSeconds(20), pool.Timeout);
    }

    [Fact]
    public void Rbd_pool_defaults()
    {
        var pool = Assert.IsType<RbdPoolOptions>(PoolOptionsParser.Parse("name=ceph,backend=rbd,pool=rbd"));
        Assert.Equal("admin", pool.User);
        Assert.Null(pool.Keyring);
        Assert.Equal("/etc/ceph/ceph.conf", pool.Conf);
        Assert.Equal(["layering", "exclusive-lock", "object-map", "fast-diff", "deep-flatten"], pool.Features);
        Assert.Equal(FlattenPolicy.Default, pool.Flatten);
    }

    [Theory]
    [InlineData("", "empty")]
    [InlineData("backend=file,path=/x", "'name' is missing")]
    [InlineData("name=Files,backend=file,path=/x", "key 'name'")]
    [InlineData("name=f,path=/x", "key 'backend' is missing")]
    [InlineData("name=f,backend=nfs,path=/x", "key 'backend' is 'nfs'")]
    [InlineData("name=f,backend=file", "key 'path' is missing")]
    [InlineData("name=f,backend=file,path=relative/dir", "key 'path'")]
    [InlineData("name=f,backend=file,path=/x,path=/y", "key 'path' is given twice")]
    [InlineData("name=f,backend=file,path=/x,vg=vg0", "unknown key 'vg'")]
    [InlineData("name=f,backend=file,path=/x,reflink=maybe", "key 'reflink'")]
    [InlineData("name=f,backend=file,path=/x,overcommit=lots", "key 'overcommit'")]
    [InlineData("name=f,backend=file,path=/x,create=perhaps", "key 'create'")]
    [InlineData("layering,name=f", "'layering' is not key=value")]
    [InlineData("name=v,backend=lvm", "key 'vg' is missing")]
    [InlineData("name=v,backend=lvm,vg=-bad", "key 'vg'")]
    [InlineData("name=v,backend=lvm,vg=vg0,overcommit=2", "key 'overcommit': applies to thin pools only")]
    [InlineData("name=v,backend=lvm,vg=vg0,thinpool=tp,overcommit=0.5", "key 'overcommit'")]
    [InlineData("name=v,backend=lvm,vg=vg0,thinpool=tp,cow_percent=10", "key 'cow_percent': applies to thick pools only")]
    [InlineData("name=v,backend=lvm,vg=vg0,cow_percent=0", "key 'cow_percent'")]
    [InlineData("name=v,backend=lvm,vg=vg0,thick_clones=sometimes", "key 'thick_clones'")]
    [InlineData("name=c,backend=rbd", "key 'pool' is missing")]
    [InlineData("name=c,backend=rbd,pool=rbd,features=layering,turbo", "key 'features': 'turbo'")]
    [InlineData("name=c,backend=rbd,pool=rbd,features=layering,object-map", "key 'features': 'object-map' needs 'exclusive-lock'")]
    [InlineData("name=c,backend=rbd,pool=rbd,flatten=on-depth:0", "key 'flatten'")]
    [InlineData("name=c,backend=rbd,pool=rbd,flatten=sometimes", "key 'flatten'")]
    [InlineData("name=c,backend=rbd,pool=rbd,object_size=3M", "key 'object_size'")]
    [InlineData("name=c,backend=rbd,pool=rbd,keyring=ceph.keyring", "key 'keyring'")]
    [InlineData("name=c,backend=rbd,pool=rbd,timeout=0", "key 'timeout'")]
    [InlineData("name=c,backend=rbd,pool=rbd,user=", "key 'user': is empty")]
    public void Errors_name_the_key(string text, string expected)
    {
        var e = Assert.Throws<StatusException>(() => PoolOptionsParser.Parse(text));
        Assert.Equal(StatusCode.InvalidArgument, e.Code);
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("never", FlattenPolicy.Mode.Never, 0)]
    [InlineData("always", FlattenPolicy.Mode.Always, 0)]
    [InlineData("on-depth:1", FlattenPolicy.Mode.OnDepth, 1)]
    [InlineData("on-depth:64", FlattenPolicy.Mode.OnDepth, 64)]
    public void Flatten_policies_round_trip(string text, FlattenPolicy.Mode mode, int depth)
    {
        Assert.True(FlattenPolicy.TryParse(text, out var policy));
        Assert.Equal(mode, policy.When);
        Assert.Equal(depth, policy.Depth);
        Assert.Equal(text, policy.ToString());
    }
}
