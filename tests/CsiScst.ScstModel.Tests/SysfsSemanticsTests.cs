using CsiScst.ScstModel.Tests.Infrastructure;

namespace CsiScst.ScstModel.Tests;

/// <summary>The tree (A.2) and the kernfs behaviour of its files as the engine's syscalls see them.</summary>
public sealed class SysfsSemanticsTests : ModelTest
{
    [Fact]
    public void A2_root_holds_the_documented_attributes_and_directories()
    {
        // interfaces.md A.2: version setup_id threads suspend trace_level last_sysfs_mgmt_res measure_latency poll_us cluster_name
        foreach (string name in new[] { "version", "setup_id", "threads", "suspend", "trace_level", "last_sysfs_mgmt_res", "measure_latency", "poll_us", "cluster_name", "handlers", "devices", "targets", "sgv", "sgv/global_stats" })
        {
            Assert.True(M.Exists(name), name);
        }

        Assert.Equal("3.11.0-pre\n", M.R("version"));
        Assert.Equal("0\n", M.R("last_sysfs_mgmt_res"));
        foreach (string h in new[] { "vdisk_blockio", "vdisk_fileio", "vdisk_nullio" })
        {
            Assert.Equal("0 - Direct-access device (e.g., magnetic disk)\n", M.R($"handlers/{h}/type"));
        }
    }

    [Fact]
    public void A2_setup_id_shows_key_only_when_set()
    {
        // interfaces.md A.2/A.7: "[key]" marks a non-default value; setup_id is a global key attribute.
        Assert.Equal("0x0\n\n", M.R("setup_id"));
        M.Ok("setup_id", "0x1234\n");
        Assert.Equal("0x1234\n[key]\n", M.R("setup_id"));
    }

    [Fact]
    public void F_reading_any_mgmt_file_prints_its_command_syntax()
    {
        // interfaces.md F: "Reading any mgmt file prints its command syntax."
        M.AddFileDevice("d1");
        M.AddTarget();
        M.Ok($"{M.T()}/ini_groups/mgmt", "create grp1\n");
        string[] mgmt =
        [
            "handlers/vdisk_blockio/mgmt", "handlers/vdisk_fileio/mgmt", "handlers/vdisk_nullio/mgmt",
            "targets/iscsi/mgmt", $"{M.T()}/luns/mgmt", $"{M.T()}/ini_groups/mgmt",
            $"{M.T()}/ini_groups/grp1/luns/mgmt", $"{M.T()}/ini_groups/grp1/initiators/mgmt",
            "targets/copy_manager/copy_manager_tgt/luns/mgmt",
        ];
        foreach (string file in mgmt)
        {
            Assert.StartsWith("Usage: echo \"", M.R(file));
        }

        Assert.Contains("add_device device_name [parameters]", M.R("handlers/vdisk_fileio/mgmt"));
        Assert.Contains("add_target target_name [parameters]", M.R("targets/iscsi/mgmt"));
        Assert.Contains("echo \"create GROUP_NAME\" >mgmt", M.R($"{M.T()}/ini_groups/mgmt"));
        Assert.Contains("move INITIATOR_NAME DEST_GROUP_NAME", M.R($"{M.T()}/ini_groups/grp1/initiators/mgmt"));
        Assert.Contains("replace_no_ua", M.R($"{M.T()}/luns/mgmt"));
    }

    [Fact]
    public void A4_a_read_only_attribute_cannot_be_opened_for_writing_even_by_root()
    {
        // interfaces.md A.4: blocksize is read-only; kernfs answers EACCES at open(2) regardless of root.
        M.AddFileDevice("d1");
        Assert.Equal(Sys.EACCES, M.W("devices/d1/blocksize", "4096\n"));
        Assert.Equal(Sys.EACCES, M.W("version", "x\n"));
    }

    [Fact]
    public void A4_a_write_only_attribute_cannot_be_read()
    {
        // interfaces.md A.4: resync_size and sync are write-only.
        M.AddFileDevice("d1");
        Assert.Equal(Sys.EACCES, M.ReadErrno("devices/d1/resync_size", out _));
        Assert.Equal(Sys.EACCES, M.ReadErrno("devices/d1/sync", out _));
    }

    [Fact]
    public void A2_files_cannot_be_created_and_entries_cannot_be_removed()
    {
        // interfaces.md A.2 is a kernel tree: a new file gives EACCES (no create), mkdir/unlink give EPERM.
        Assert.Equal(Sys.EACCES, Sys.Write(M.P("handlers/no_such_file"), "1\n", Sys.OCreat));
        Assert.Equal(Sys.EPERM, Sys.Mkdir(M.P("devices/newdir")));
        Assert.Equal(Sys.EPERM, Sys.Unlink(M.P("version")));
        Assert.Equal(Sys.ENOENT, M.W("devices/nothing/usn", "x\n"));
    }

    [Fact]
    public void A3_open_with_O_TRUNC_writes_like_plain_open()
    {
        // interfaces.md A.3: one command per write; a shell's "echo > file" opens with O_TRUNC, which sysfs ignores.
        Assert.Equal(0, Sys.Write(M.P("handlers/vdisk_nullio/mgmt"), "add_device n1\n", Sys.OTrunc));
        Assert.True(M.Exists("devices/n1"));
    }

    [Fact]
    public void A3_every_write_call_is_one_store()
    {
        // interfaces.md A.3: one command per write(); two writes on one open file are two commands.
        int fd = Sys.Open(M.P("handlers/vdisk_nullio/mgmt"), Sys.OWrOnly);
        Assert.True(fd >= 0);
        try
        {
            Assert.Equal(0, Sys.WriteFd(fd, "add_device n1\n"));
            Assert.Equal(0, Sys.WriteFd(fd, "add_device n2\n"));
            Assert.Equal(Sys.EEXIST, Sys.WriteFd(fd, "add_device n2\n"));
        }
        finally
        {
            Sys.Close(fd);
        }

        Assert.True(M.Exists("devices/n1"));
        Assert.True(M.Exists("devices/n2"));
    }

    [Fact]
    public void A2_device_and_lun_links_are_relative_as_in_sysfs()
    {
        // interfaces.md A.2: handler -> .., luns/N/device -> ../../../../../devices/<dev>, exported/exportN -> <lun dir>
        M.AddFileDevice("d1");
        M.AddTarget();
        M.Ok($"{M.T()}/luns/mgmt", "add d1 0\n");
        Assert.Equal("../../handlers/vdisk_fileio", new FileInfo(M.P("devices/d1/handler")).LinkTarget);
        Assert.Equal("../../../../../devices/d1", new FileInfo(M.P($"{M.T()}/luns/0/device")).LinkTarget);
        Assert.Equal("../../devices/d1", new FileInfo(M.P("handlers/vdisk_fileio/d1")).LinkTarget);
        Assert.Equal($"../../../{M.T()}/luns/0", new FileInfo(M.P("devices/d1/exported/export1")).LinkTarget);
        Assert.Equal(M.R("devices/d1/usn"), File.ReadAllText(M.P($"{M.T()}/luns/0/device/usn")));
    }
}
