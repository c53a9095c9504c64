using System.Diagnostics;
using CsiScst.ScstModel.Tests.Infrastructure;

namespace CsiScst.ScstModel.Tests;

/// <summary>interfaces.md A.4: handlers, add_device / del_device and device attributes.</summary>
public sealed class DeviceHandlerTests : ModelTest
{
    private const string FileIo = "handlers/vdisk_fileio/mgmt";
    private const string BlockIo = "handlers/vdisk_blockio/mgmt";
    private const string NullIo = "handlers/vdisk_nullio/mgmt";

    [Fact]
    public void A4_add_device_creates_the_device_with_its_handler_links_and_size_from_the_file()
    {
        string img = M.AddFileDevice("d1", size: 64 << 20);
        Assert.True(M.Exists("devices/d1/handler"));
        Assert.True(M.Exists("handlers/vdisk_fileio/d1"));
        Assert.Equal($"{64 << 20}\n[key]\n", M.R("devices/d1/size"));
        Assert.Equal("64\n", M.R("devices/d1/size_mb"));
        Assert.Equal($"{img}\n[key]\n", M.R("devices/d1/filename"));
        Assert.Equal("0 - Direct-access device (e.g., magnetic disk)\n", M.R("devices/d1/type"));
    }

    [Fact]
    public void A4_filename_must_start_with_a_slash()
    {
        Assert.Equal(Sys.EINVAL, M.W(FileIo, "add_device d1 filename=relative.img\n"));
        Assert.Contains("Filename relative.img must be global", M.Dmesg);
    }

    [Fact]
    public void A4_filename_must_exist_on_the_host_else_ENOENT()
    {
        // interfaces.md F: "a device path that does not exist → ENOENT (-2)".
        Assert.Equal(Sys.ENOENT, M.W(BlockIo, "add_device d1 filename=/dev/no/such/lv\n"));
        Assert.Equal(Sys.ENOENT, M.W(FileIo, "add_device d1 filename=/no/such/file.img\n"));
        Assert.False(M.Exists("devices/d1"));
    }

    [Fact]
    public void A4_filename_is_required_for_blockio_and_fileio()
    {
        Assert.Equal(Sys.EINVAL, M.W(FileIo, "add_device d1 blocksize=512\n"));
        Assert.Equal(Sys.EINVAL, M.W(BlockIo, "add_device d1\n"));
        Assert.Contains("File name required (device d1)", M.Dmesg);
    }

    [Fact]
    public void A4_blockio_rejects_parameters_not_in_its_list()
    {
        string img = M.Image(8 << 20);
        Assert.Equal(Sys.EINVAL, M.W(BlockIo, $"add_device d1 filename={img};size=1048576\n"));
        Assert.Equal(Sys.EINVAL, M.W(BlockIo, $"add_device d1 filename={img};o_direct=1\n"));
        Assert.Contains("Unknown parameter size (device d1)", M.Dmesg);
        M.Ok(BlockIo, $"add_device d1 filename={img};blocksize=4096;rotational=0;thin_provisioned=1;nv_cache=1;write_through=1\n");
    }

    [Fact]
    public void A4_nullio_rejects_parameters_not_in_its_list()
    {
        string img = M.Image(8 << 20);
        Assert.Equal(Sys.EINVAL, M.W(NullIo, $"add_device n1 filename={img}\n"));
        Assert.Equal(Sys.EINVAL, M.W(NullIo, "add_device n1 nv_cache=1\n"));
        M.Ok(NullIo, "add_device n1 size=1073741824;blocksize=512;dummy=1\n");
        Assert.Equal("1073741824\n[key]\n", M.R("devices/n1/size"));
    }

    [Fact]
    public void A4_fileio_does_not_check_its_list_so_it_takes_nullio_parameters_too()
    {
        string img = M.Image(8 << 20);
        M.Ok(FileIo, $"add_device d1 filename={img};size=1048576;size_mb=1;dummy=0;lb_per_pb_exp=1\n");

        // A name the shared parser does not know at all is still refused (vdev_parse_add_dev_params).
        Assert.Equal(Sys.EINVAL, M.W(FileIo, $"add_device d2 filename={img};no_such_param=1\n"));
    }

    [Fact]
    public void A4_t10_dev_id_has_at_most_25_characters()
    {
        M.Ok(NullIo, $"add_device n1 t10_dev_id={new string('a', 25)}\n");
        Assert.Equal($"{new string('a', 25)}\n[key]\n", M.R("devices/n1/t10_dev_id"));
        Assert.Equal(Sys.EINVAL, M.W(NullIo, $"add_device n2 t10_dev_id={new string('a', 26)}\n"));
        Assert.False(M.Exists("devices/n2"));
    }

    [Fact]
    public void A4_blocksize_must_be_a_power_of_two_of_at_least_512()
    {
        Assert.Equal(Sys.EINVAL, M.W(NullIo, "add_device n1 blocksize=256\n"));
        M.Ok(NullIo, "add_device n2 blocksize=4096\n");

        // "other values are rounded down with a kernel WARN"
        M.Ok(NullIo, "add_device n3 blocksize=1000\n");
        Assert.Equal("512\n", M.R("devices/n3/blocksize"));
        Assert.Contains("Requested block size 1000 is not a power of 2, using 512", M.Dmesg);
    }

    [Fact]
    public void A4_fileio_read_only_with_nv_cache_or_write_through_is_EINVAL()
    {
        string img = M.Image(8 << 20);
        Assert.Equal(Sys.EINVAL, M.W(FileIo, $"add_device d1 filename={img};read_only=1;nv_cache=1\n"));
        Assert.Equal(Sys.EINVAL, M.W(FileIo, $"add_device d1 filename={img};read_only=1;write_through=1\n"));
        Assert.Contains("Write options on read only device d1", M.Dmesg);
        M.Ok(FileIo, $"add_device d1 filename={img};read_only=1\n");
        Assert.Equal("1\n[key]\n", M.R("devices/d1/read_only"));
    }

    [Fact]
    public void A4_tst_only_takes_0_or_1()
    {
        Assert.Equal(Sys.EINVAL, M.W(NullIo, "add_device n1 tst=2\n"));
        M.Ok(NullIo, "add_device n1 tst=0\n");
        Assert.Equal("0\n[key]\n", M.R("devices/n1/tst"));
    }

    [Fact]
    public void A4_device_names_have_at_most_64_characters()
    {
        M.Ok(NullIo, $"add_device {new string('n', 64)}\n");
        Assert.Equal(Sys.EINVAL, M.W(NullIo, $"add_device {new string('m', 65)}\n"));
    }

    [Fact]
    public void A4_device_names_are_unique_across_all_handlers_and_F_nothing_is_logged()
    {
        M.AddFileDevice("d1");
        string before = M.Dmesg;
        Assert.Equal(Sys.EEXIST, M.W(NullIo, "add_device d1\n"));
        Assert.Equal(Sys.EEXIST, M.W(BlockIo, $"add_device d1 filename={M.Image(1 << 20)}\n"));
        Assert.Equal(before, M.Dmesg);
    }

    [Fact]
    public void A4_del_device_of_an_unknown_name_is_EINVAL()
    {
        // interfaces.md F: unknown name -> EINVAL with "Device … not found" in the kernel log.
        Assert.Equal(Sys.EINVAL, M.W(FileIo, "del_device nope\n"));
        Assert.Contains("Device nope not found", M.Dmesg);
    }

    [Fact]
    public void F_a_deleted_device_name_can_be_reused_at_once()
    {
        M.AddFileDevice("d1");
        M.Ok(FileIo, "del_device d1\n");
        Assert.False(M.Exists("devices/d1"));
        M.AddFileDevice("d1");
        Assert.True(M.Exists("devices/d1"));
    }

    [Fact]
    public void A4_del_device_first_removes_the_device_from_every_LUN_that_exports_it()
    {
        M.AddFileDevice("d1");
        M.AddTarget();
        M.AddTarget("iqn.2026-01.io.example:vol2");
        M.Ok($"{M.T()}/luns/mgmt", "add d1 0\n");
        M.Ok($"{M.T()}/ini_groups/mgmt", "create g1\n");
        M.Ok($"{M.T()}/ini_groups/g1/luns/mgmt", "add d1 3\n");
        M.Ok("targets/iscsi/iqn.2026-01.io.example:vol2/luns/mgmt", "add d1 5\n");
        Assert.Equal(4, Directory.GetFileSystemEntries(M.P("devices/d1/exported")).Length); // + copy_manager

        M.Ok(FileIo, "del_device d1\n");
        Assert.False(M.Exists($"{M.T()}/luns/0"));
        Assert.False(M.Exists($"{M.T()}/ini_groups/g1/luns/3"));
        Assert.False(M.Exists("targets/iscsi/iqn.2026-01.io.example:vol2/luns/5"));
        Assert.Empty(Directory.GetDirectories(M.P("targets/copy_manager/copy_manager_tgt/luns")));
        Assert.False(M.Exists("handlers/vdisk_fileio/d1"));
    }

    [Fact]
    public void A4_usn_is_written_afterwards_and_has_at_most_20_characters()
    {
        M.AddFileDevice("d1");
        // usn is not a creation parameter.
        Assert.Equal(Sys.EINVAL, M.W(FileIo, $"add_device d2 filename={M.Image(1 << 20)};usn=abc\n"));
        M.Ok("devices/d1/usn", "CS0123456789abcdef\n");
        Assert.Equal("CS0123456789abcdef\n[key]\n", M.R("devices/d1/usn"));
        M.Ok("devices/d1/usn", new string('u', 20) + "\n");
        Assert.Equal(Sys.EINVAL, M.W("devices/d1/usn", new string('u', 21) + "\n"));
        Assert.Equal(new string('u', 20) + "\n[key]\n", M.R("devices/d1/usn"));
    }

    [Fact]
    public void A4_default_identity_is_generated_from_the_name()
    {
        // "t10_dev_id ... Default <hex>-<name>"; the default usn comes from the same number and setup_id.
        M.AddFileDevice("d1");
        string usn = M.R("devices/d1/usn").TrimEnd('\n');
        Assert.Matches("^[0-9a-f]{1,16}$", usn);
        Assert.Equal($"{usn}-d1\n", M.R("devices/d1/t10_dev_id"));
        M.Ok("devices/d1/t10_dev_id", "CS0123456789abcdef\n");
        Assert.Equal("CS0123456789abcdef\n[key]\n", M.R("devices/d1/t10_dev_id"));
        Assert.Equal(Sys.EINVAL, M.W("devices/d1/t10_dev_id", new string('t', 26) + "\n"));
    }

    [Fact]
    public void A4_blockio_attributes_are_read_only_read_write_or_write_only_as_documented()
    {
        M.AddFileDevice("d1", handler: "vdisk_blockio");
        foreach (string ro in new[] { "blocksize", "read_only", "write_through", "nv_cache", "thin_provisioned", "rotational", "removable", "tst" })
        {
            Assert.Equal(0, M.ReadErrno($"devices/d1/{ro}", out _));
            Assert.Equal(Sys.EACCES, M.W($"devices/d1/{ro}", "1\n"));
        }

        foreach (string rw in new[] { "size", "size_mb", "filename", "active", "t10_dev_id", "usn", "eui64_id", "naa_id", "prod_id", "t10_vend_id", "vend_specific_id", "prod_rev_lvl", "inq_vend_specific", "scsi_device_name", "opt_trans_len", "lb_per_pb_exp", "cluster_mode", "expl_alua" })
        {
            Assert.Equal(0, M.ReadErrno($"devices/d1/{rw}", out _));
            int fd = Sys.Open(M.P($"devices/d1/{rw}"), Sys.OWrOnly);
            Assert.True(fd >= 0, rw);
            Sys.Close(fd);
        }

        foreach (string wo in new[] { "resync_size", "sync" })
        {
            Assert.Equal(Sys.EACCES, M.ReadErrno($"devices/d1/{wo}", out _));
            Assert.Equal(0, M.W($"devices/d1/{wo}", "1\n"));
        }
    }

    [Fact]
    public void A4_for_fileio_size_and_size_mb_are_read_only()
    {
        M.AddFileDevice("d1");
        Assert.Equal(Sys.EACCES, M.W("devices/d1/size", "1048576\n"));
        Assert.Equal(Sys.EACCES, M.W("devices/d1/size_mb", "1\n"));
    }

    [Fact]
    public void A4_resync_size_rereads_the_size_of_the_backing_file()
    {
        string img = M.AddFileDevice("d1", size: 16 << 20, handler: "vdisk_blockio");
        using (FileStream f = File.OpenWrite(img))
        {
            f.SetLength(32 << 20);
        }

        Assert.Equal($"{16 << 20}\n[key]\n", M.R("devices/d1/size"));
        M.Ok("devices/d1/resync_size", "1\n");
        Assert.Equal($"{32 << 20}\n[key]\n", M.R("devices/d1/size"));
        Assert.Contains("Size of virtual disk d1 changed from 16MB to 32MB", M.Dmesg);
    }

    [Fact]
    public void A4_resync_size_of_an_inactive_device_is_EMEDIUMTYPE()
    {
        M.AddFileDevice("d1", handler: "vdisk_blockio");
        M.Ok("devices/d1/active", "0\n");
        Assert.Equal("0\n[key]\n", M.R("devices/d1/active"));
        Assert.Equal(Sys.EMEDIUMTYPE, M.W("devices/d1/resync_size", "1\n"));
        Assert.Equal("-124\n", M.R("last_sysfs_mgmt_res"));
        M.Ok("devices/d1/active", "1\n");
        M.Ok("devices/d1/resync_size", "1\n");
    }

    [Fact]
    public void A4_writing_size_on_blockio_or_nullio_sets_the_capacity_in_block_multiples()
    {
        M.Ok(NullIo, "add_device n1 blocksize=4096\n");
        M.Ok("devices/n1/size", "8388608\n");
        Assert.Equal("8388608\n[key]\n", M.R("devices/n1/size"));
        Assert.Equal(Sys.EINVAL, M.W("devices/n1/size", "8388609\n"));
        M.Ok("devices/n1/size_mb", "16\n");
        Assert.Equal("16\n", M.R("devices/n1/size_mb"));

        M.AddFileDevice("b1", handler: "vdisk_blockio");
        M.Ok("devices/b1/size", "4194304\n");
        Assert.Equal("4194304\n[key]\n", M.R("devices/b1/size"));
    }

    [Fact]
    public void A4_nullio_size_must_be_a_multiple_of_the_block_size()
    {
        Assert.Equal(Sys.EINVAL, M.W(NullIo, "add_device n1 size=1000;blocksize=512\n"));
        M.Ok(NullIo, "add_device n1 size_mb=1;blocksize=4096\n");
        M.Ok(NullIo, "add_device n2\n");
        Assert.Equal($"{5L * 1024 * 1024 * 1024 * 1024 / 2}\n", M.R("devices/n2/size"));
    }

    [Fact]
    public void A4_non_default_values_carry_a_key_line_and_defaults_do_not()
    {
        M.Ok(NullIo, "add_device n1\n");
        M.Ok(NullIo, "add_device n2 blocksize=4096;rotational=0;read_only=1;removable=1\n");
        Assert.Equal("512\n", M.R("devices/n1/blocksize"));
        Assert.Equal("1\n", M.R("devices/n1/rotational"));
        Assert.Equal("0\n", M.R("devices/n1/read_only"));
        Assert.Equal("4096\n[key]\n", M.R("devices/n2/blocksize"));
        Assert.Equal("0\n[key]\n", M.R("devices/n2/rotational"));
        Assert.Equal("1\n[key]\n", M.R("devices/n2/read_only"));
        Assert.Equal("1\n[key]\n", M.R("devices/n2/removable"));
    }

    [Fact]
    public void A4_blockio_takes_a_loop_device()
    {
        // Deviation: the host has no SCSI; a loop device stands in for an LV (or a regular file, see above).
        string img = M.Image(24 << 20);
        string loop = Run("losetup", $"--find --show {img}").Trim();
        try
        {
            M.Ok(BlockIo, $"add_device lv1 filename={loop}\n");
            Assert.Equal($"{24 << 20}\n[key]\n", M.R("devices/lv1/size"));
            Run("truncate", $"-s {40 << 20} {img}");
            Run("losetup", $"--set-capacity {loop}");
            M.Ok("devices/lv1/resync_size", "1\n");
            Assert.Equal($"{40 << 20}\n[key]\n", M.R("devices/lv1/size"));
            M.Ok(BlockIo, "del_device lv1\n");
        }
        finally
        {
            Run("losetup", $"--detach {loop}");
        }
    }

    [Fact]
    public void F_devices_lists_SCSI_disks_of_the_machine_without_a_handler_link()
    {
        Assert.Equal(0, M.Control("scsi_disk", "2:0:0:0\n"));
        Assert.True(M.Exists("devices/2:0:0:0/type"));
        Assert.False(M.Exists("devices/2:0:0:0/handler"));
        Assert.Equal(Sys.EEXIST, M.W(NullIo, "add_device 2:0:0:0\n"));

        // vdisk handlers delete only their own devices.
        Assert.Equal(Sys.EINVAL, M.W(NullIo, "del_device 2:0:0:0\n"));
        Assert.Equal(0, M.Control("scsi_disk", "del 2:0:0:0\n"));
        Assert.False(M.Exists("devices/2:0:0:0"));
    }

    [Fact]
    public void A4_one_vdisk_handler_deletes_a_device_of_another_vdisk_handler()
    {
        // scst_vdisk keeps one device list for all its handlers (vdisk_del_device -> vdev_find).
        M.Ok(NullIo, "add_device n1\n");
        M.Ok(FileIo, "del_device n1\n");
        Assert.False(M.Exists("devices/n1"));
    }

    [Fact]
    public void A4_an_unknown_action_is_EINVAL()
    {
        Assert.Equal(Sys.EINVAL, M.W(NullIo, "resize_device n1\n"));
        Assert.Contains("Unknown action \"resize_device\"", M.Dmesg);
        Assert.Equal(Sys.EINVAL, M.W(NullIo, "add_device\n"));
        Assert.Contains("Device name required", M.Dmesg);
    }

    private static string Run(string file, string args)
    {
        var psi = new ProcessStartInfo(file, args) { RedirectStandardOutput = true, RedirectStandardError = true };
        using Process p = Process.Start(psi)!;
        string output = p.StandardOutput.ReadToEnd();
        string error = p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, $"{file} {args}: {error}");
        return output;
    }
}
