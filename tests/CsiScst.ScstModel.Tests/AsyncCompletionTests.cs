using CsiScst.ScstModel.Tests.Infrastructure;

namespace CsiScst.ScstModel.Tests;

/// <summary>interfaces.md A.3: queued work, EAGAIN and last_sysfs_mgmt_res.</summary>
public sealed class AsyncCompletionTests : ModelTest
{
    /// <summary>Polls last_sysfs_mgmt_res until the queue is idle; returns the value.</summary>
    private string WaitForLastResult()
    {
        for (int i = 0; i < 600; i++)
        {
            int errno = M.ReadErrno("last_sysfs_mgmt_res", out string text);
            if (errno == 0)
            {
                return text;
            }

            Assert.Equal(Sys.EAGAIN, errno);
            Thread.Sleep(50);
        }

        throw new TimeoutException("work still in flight after 30 s");
    }

    [Fact]
    public void A3_a_write_whose_work_outlasts_the_wait_gets_EAGAIN_but_the_work_completes()
    {
        M.Control("work_ms", "1000\n");
        M.Control("wait_ms", "50\n");
        Assert.Equal(Sys.EAGAIN, M.W("handlers/vdisk_nullio/mgmt", "add_device n1\n"));

        // While the work is in flight, last_sysfs_mgmt_res itself answers EAGAIN.
        Assert.Equal(Sys.EAGAIN, M.ReadErrno("last_sysfs_mgmt_res", out _));

        Assert.Equal("0\n", WaitForLastResult());
        Assert.True(M.Exists("devices/n1"));
    }

    [Fact]
    public void A3_after_EAGAIN_last_sysfs_mgmt_res_holds_the_negated_errno_of_the_failed_work()
    {
        M.Ok("handlers/vdisk_nullio/mgmt", "add_device n1\n");
        M.Control("work_ms", "500\n");
        M.Control("wait_ms", "10\n");
        Assert.Equal(Sys.EAGAIN, M.W("handlers/vdisk_nullio/mgmt", "add_device n1\n"));
        Assert.Equal("-17\n", WaitForLastResult());
    }

    [Fact]
    public void F_a_failed_write_returns_its_errno_and_last_sysfs_mgmt_res_holds_it_negated()
    {
        // interfaces.md F: duplicate device -> EEXIST (-17); unknown command -> EINVAL (-22); missing path -> ENOENT (-2).
        M.Ok("handlers/vdisk_nullio/mgmt", "add_device n1\n");
        Assert.Equal("0\n", M.R("last_sysfs_mgmt_res"));
        Assert.Equal(Sys.EEXIST, M.W("handlers/vdisk_nullio/mgmt", "add_device n1\n"));
        Assert.Equal("-17\n", M.R("last_sysfs_mgmt_res"));
        Assert.Equal(Sys.EINVAL, M.W("handlers/vdisk_nullio/mgmt", "frobnicate n1\n"));
        Assert.Equal("-22\n", M.R("last_sysfs_mgmt_res"));
        Assert.Equal(Sys.ENOENT, M.W("handlers/vdisk_fileio/mgmt", "add_device f1 filename=/no/such/file\n"));
        Assert.Equal("-2\n", M.R("last_sysfs_mgmt_res"));
        M.Ok("handlers/vdisk_nullio/mgmt", "del_device n1\n");
        Assert.Equal("0\n", M.R("last_sysfs_mgmt_res"));
    }

    [Fact]
    public void A3_last_sysfs_mgmt_res_is_global_and_reflects_the_last_completed_work_of_any_writer()
    {
        M.AddTarget();
        Assert.Equal(Sys.EEXIST, M.W("targets/iscsi/mgmt", $"add_target {ModelHarness.Target}\n"));
        Assert.Equal("-17\n", M.R("last_sysfs_mgmt_res"));
        M.Ok($"{M.T()}/ini_groups/mgmt", "create g1\n");
        Assert.Equal("0\n", M.R("last_sysfs_mgmt_res"));
    }

    [Fact]
    public void A3_a_check_done_before_queueing_leaves_last_sysfs_mgmt_res_alone()
    {
        // scst_sysfs.c scst_tgt_enable_store checks the first character before it queues any work.
        M.AddTarget();
        Assert.Equal(Sys.EEXIST, M.W("targets/iscsi/mgmt", $"add_target {ModelHarness.Target}\n"));
        Assert.Equal(Sys.EINVAL, M.W($"{M.T()}/enabled", "x\n"));
        Assert.Equal("-17\n", M.R("last_sysfs_mgmt_res"));
    }

    [Fact]
    public void A3_some_reads_are_queued_work_too_and_can_fail_with_EAGAIN()
    {
        // interfaces.md A.3: "Some reads also go through the work queue, for example a device's filename".
        string img = M.AddFileDevice("d1");
        M.Control("work_ms", "800\n");
        M.Control("wait_ms", "20\n");
        Assert.Equal(Sys.EAGAIN, M.ReadErrno("devices/d1/filename", out _));
        WaitForLastResult();
        M.Control("work_ms", "0\n");
        M.Control("wait_ms", "15000\n");
        Assert.Equal($"{img}\n[key]\n", M.R("devices/d1/filename"));

        // A read-only work does not change last_sysfs_mgmt_res.
        Assert.Equal("0\n", M.R("last_sysfs_mgmt_res"));
    }

    [Fact]
    public async Task A3_works_complete_in_order_and_each_waiting_writer_gets_its_own_result()
    {
        M.Control("work_ms", "200\n");
        var writers = new[] { "add_device n1\n", "add_device n1\n", "add_device n2\n" }
            .Select(cmd => Task.Run(() => M.W("handlers/vdisk_nullio/mgmt", cmd)))
            .ToArray();

        // Which of the two identical commands runs first is up to the scheduler; one of them must fail.
        int[] results = await Task.WhenAll(writers);
        Assert.Equal(2, results.Count(r => r == 0));
        Assert.Equal(1, results.Count(r => r == Sys.EEXIST));
    }
}
