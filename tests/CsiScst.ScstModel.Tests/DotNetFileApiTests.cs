using CsiScst.ScstModel.Tests.Infrastructure;

namespace CsiScst.ScstModel.Tests;

/// <summary>
/// interfaces.md A.3 (.NET, UNCONFIRMED there): what .NET's own file APIs make of the errno values, seen
/// through the model, for engine code that uses them instead of raw write(2).
/// </summary>
public sealed class DotNetFileApiTests : ModelTest
{
    [Fact]
    public void A3_dotnet_reads_and_writes_attributes()
    {
        File.WriteAllText(M.P("handlers/vdisk_nullio/mgmt"), "add_device n1\n");
        Assert.Equal("512\n", File.ReadAllText(M.P("devices/n1/blocksize")));
        Assert.Contains("n1", Directory.GetFileSystemEntries(M.P("devices")).Select(Path.GetFileName));
    }

    [Fact]
    public void A3_dotnet_turns_EEXIST_and_EINVAL_into_IOException_with_the_errno()
    {
        File.WriteAllText(M.P("handlers/vdisk_nullio/mgmt"), "add_device n1\n");
        IOException exists = Assert.Throws<IOException>(() => File.WriteAllText(M.P("handlers/vdisk_nullio/mgmt"), "add_device n1\n"));
        Assert.Equal(Sys.EEXIST, exists.HResult & 0xFFFF);
        IOException invalid = Assert.Throws<IOException>(() => File.WriteAllText(M.P("handlers/vdisk_nullio/mgmt"), "bogus\n"));
        Assert.Equal(Sys.EINVAL, invalid.HResult & 0xFFFF);
    }

    [Fact]
    public void A3_dotnet_turns_EPERM_and_EACCES_into_UnauthorizedAccessException()
    {
        Assert.Equal(0, M.Control("iscsi_scstd", "stop\n"));
        Assert.Throws<UnauthorizedAccessException>(() => File.WriteAllText(M.P("targets/iscsi/mgmt"), $"add_target {ModelHarness.Target}\n"));
        Assert.Throws<UnauthorizedAccessException>(() => File.WriteAllText(M.P("version"), "x\n"));
    }

    [Fact]
    public void A3_dotnet_turns_ENOENT_into_FileNotFoundException()
    {
        Assert.Throws<FileNotFoundException>(() => File.WriteAllText(M.P("handlers/vdisk_fileio/mgmt"), "add_device f1 filename=/no/such/file\n"));
    }
}
