using CsiScst.ScstModel.Tests.Infrastructure;

namespace CsiScst.ScstModel.Tests;

/// <summary>
/// Directories that grow with the exports (devices, handler links, targets, luns, ini_groups, initiators,
/// sessions, exported) find a child by name without listing the others: through the mount, names that exist
/// resolve to the same entries readdir shows, names that do not (or differ in case or spelling) do not.
/// </summary>
public sealed class LookupTests : ModelTest
{
    private const int Count = 60;

    private static string Dev(int i) => $"n{i:D3}";

    private static string Tgt(int i) => $"iqn.2026-01.io.example:t{i:D3}";

    private void Populate()
    {
        for (int i = 0; i < Count; i++)
        {
            M.Ok("handlers/vdisk_nullio/mgmt", $"add_device {Dev(i)}\n");
            M.AddTarget(Tgt(i));
            M.Ok($"{M.T(Tgt(i))}/ini_groups/mgmt", $"create g{i}\n");
            M.Ok($"{M.T(Tgt(i))}/ini_groups/g{i}/luns/mgmt", $"add {Dev(i)} {i}\n");
            M.Ok($"{M.T(Tgt(i))}/ini_groups/g{i}/initiators/mgmt", $"add {ModelHarness.Initiator}\n");
        }
    }

    [Fact]
    public void Every_entry_of_a_large_directory_resolves_to_what_readdir_lists()
    {
        Populate();
        string[] devices = Directory.GetFileSystemEntries(M.P("devices")).Select(Path.GetFileName).ToArray()!;
        Assert.Equal(Enumerable.Range(0, Count).Select(Dev), devices.Order(StringComparer.Ordinal));
        for (int i = 0; i < Count; i++)
        {
            Assert.Equal(M.R("handlers/vdisk_nullio/type"), M.R($"devices/{Dev(i)}/type"));
            Assert.Equal($"../../devices/{Dev(i)}", new FileInfo(M.P($"handlers/vdisk_nullio/{Dev(i)}")).LinkTarget);
            Assert.Equal("0\n", M.R($"{M.T(Tgt(i))}/enabled"));
            Assert.True(M.Exists($"{M.T(Tgt(i))}/ini_groups/g{i}/luns/{i}/device"));
            Assert.True(M.Exists($"{M.T(Tgt(i))}/ini_groups/g{i}/initiators/{ModelHarness.Initiator}"));
            Assert.Contains($"../../../{M.T(Tgt(i))}/ini_groups/g{i}/luns/{i}", ExportedTargets(Dev(i)));
        }

        // readdir of the driver still lists its own files first, then the targets in name order.
        string[] driver = Directory.GetFileSystemEntries(M.P("targets/iscsi")).Select(Path.GetFileName).ToArray()!;
        Assert.Equal(Enumerable.Range(0, Count).Select(Tgt), driver.Where(n => n.StartsWith("iqn.", StringComparison.Ordinal)));
        Assert.Equal("mgmt", driver[0]);
    }

    [Fact]
    public void Names_that_do_not_exist_or_differ_in_case_or_spelling_do_not_resolve()
    {
        Populate();
        Assert.False(M.Exists("devices/n999"));
        Assert.False(M.Exists("devices/N001"));
        Assert.False(M.Exists("devices/n001 "));
        Assert.False(M.Exists("handlers/vdisk_fileio/n001"));   // another handler's device
        Assert.False(M.Exists("handlers/vdisk_nullio/n999"));
        Assert.False(M.Exists("targets/iscsi/iqn.2026-01.io.example:t999"));
        Assert.False(M.Exists("targets/iscsi/IQN.2026-01.io.example:t001"));
        Assert.False(M.Exists("targets/copy_manager/iqn.2026-01.io.example:t001"));
        Assert.False(M.Exists($"{M.T(Tgt(1))}/ini_groups/g2"));
        Assert.False(M.Exists($"{M.T(Tgt(1))}/ini_groups/G1"));
        Assert.False(M.Exists($"{M.T(Tgt(1))}/ini_groups/g1/initiators/iqn.other"));
        Assert.False(M.Exists($"{M.T(Tgt(1))}/sessions/{ModelHarness.Initiator}"));
        Assert.False(M.Exists("devices/n001/exported/export999"));

        // A LUN is named only by its canonical decimal number.
        string luns = $"{M.T(Tgt(7))}/ini_groups/g7/luns";
        Assert.True(M.Exists($"{luns}/7"));
        Assert.True(M.Exists($"{luns}/mgmt"));
        Assert.False(M.Exists($"{luns}/07"));
        Assert.False(M.Exists($"{luns}/+7"));
        Assert.False(M.Exists($"{luns}/8"));
        Assert.False(M.Exists($"{luns}/18446744073709551616"));
        Assert.False(M.Exists($"{M.T(Tgt(7))}/luns/7"));   // the target's default set is empty
    }

    [Fact]
    public void Removed_entries_stop_resolving_and_sessions_resolve_by_directory_name()
    {
        Populate();
        M.Ok($"{M.T(Tgt(3))}/ini_groups/g3/luns/mgmt", "add n003 0\n");   // a login needs LUN 0
        M.Ok($"{M.T(Tgt(3))}/enabled", "1\n");
        M.Ok("targets/iscsi/enabled", "1\n");
        Assert.Equal(0, M.Login(target: Tgt(3)));
        Assert.True(M.Exists($"{M.T(Tgt(3))}/sessions/{ModelHarness.Initiator}/lun3"));
        Assert.False(M.Exists($"{M.T(Tgt(4))}/sessions/{ModelHarness.Initiator}"));

        string lun = $"../../../{M.T(Tgt(5))}/ini_groups/g5/luns/5";
        Assert.Contains(lun, ExportedTargets("n005"));
        M.Ok($"{M.T(Tgt(5))}/ini_groups/g5/luns/mgmt", "del 5\n");
        Assert.False(M.Exists($"{M.T(Tgt(5))}/ini_groups/g5/luns/5"));
        Assert.DoesNotContain(lun, ExportedTargets("n005"));
        M.Ok("targets/iscsi/mgmt", $"del_target {Tgt(5)}\n");
        Assert.False(M.Exists(M.T(Tgt(5))));
        M.Ok("handlers/vdisk_nullio/mgmt", "del_device n005\n");
        Assert.False(M.Exists("devices/n005"));
        Assert.False(M.Exists("handlers/vdisk_nullio/n005"));
        Assert.True(M.Exists("devices/n006"));
    }

    /// <summary>The link targets of a device's exported/ entries, each looked up by the name readdir gave.</summary>
    private List<string> ExportedTargets(string device) =>
        Directory.GetFileSystemEntries(M.P($"devices/{device}/exported"))
            .Select(e => new FileInfo(M.P($"devices/{device}/exported/{Path.GetFileName(e)}")).LinkTarget!)
            .ToList();
}
