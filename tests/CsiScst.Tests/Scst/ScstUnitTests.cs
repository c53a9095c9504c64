using CsiScst.Core.Errors;
using CsiScst.Targets;
using CsiScst.Targets.Scst;
using Grpc.Core;
using Microsoft.Extensions.Options;

namespace CsiScst.Tests.Scst;

public sealed class ScstValueParsingTests
{
    [Theory]
    [InlineData("/dev/vg/lv\n[key]\n", "/dev/vg/lv", true)]
    [InlineData("512\n", "512", false)]
    [InlineData("", "", false)]
    [InlineData("[key]\n", "", true)]
    [InlineData("line one\nline two\n", "line one\nline two", false)]
    public void Parse_strips_the_key_line(string raw, string text, bool isKey)
    {
        var value = ScstSysfs.Parse(raw);
        Assert.Equal(text, value.Text);
        Assert.Equal(isKey, value.IsKey);
    }

    [Theory]
    [InlineData("iqn.1993-08.org.debian:01:abc", "iqn.1993-08.org.debian:01:abc")]
    [InlineData("iqn.1993-08.org.debian:01:abc_1", "iqn.1993-08.org.debian:01:abc")]
    [InlineData("iqn.1993-08.org.debian:01:abc_12", "iqn.1993-08.org.debian:01:abc")]
    [InlineData("iqn.1993-08.org.debian:01:abc#10.0.0.5", "iqn.1993-08.org.debian:01:abc")]
    [InlineData("iqn.1993-08.org.debian:01:abc#10.0.0.5_1", "iqn.1993-08.org.debian:01:abc")]
    [InlineData("name_x", "name_x")]
    public void Session_directories_map_to_their_initiator(string directory, string initiator) =>
        Assert.Equal(initiator, ScstPaths.InitiatorOfSession(directory));
}

public sealed class ScstConfigFormatTests
{
    [Theory]
    [InlineData("IncomingUser1", "IncomingUser")]
    [InlineData("IncomingUser", "IncomingUser")]
    [InlineData("allowed_portal12", "allowed_portal")]
    [InlineData("lun0", "lun")]
    [InlineData("x2y3", "x2y3")]
    [InlineData("123", "123")]
    public void Numbered_attributes_fold_like_scstadmin(string name, string folded) =>
        Assert.Equal(folded, ScstConfigWriter.FoldNumbered(name));

    [Theory]
    [InlineData("plain", "plain")]
    [InlineData("user secret", "\"user secret\"")]
    [InlineData("a#b", "a\\#b")]
    [InlineData("a\\b c", "\"a\\\\b c\"")]
    public void Values_are_escaped_and_quoted_like_scstadmin(string value, string written) =>
        Assert.Equal(written, ScstConfigWriter.EscapeValue(value));

    [Fact]
    public void Create_parameters_come_from_the_mgmt_help_line()
    {
        const string help = "Usage: echo \"add_device device_name [parameters]\" >mgmt\n" +
                            "       echo \"del_device device_name\" >mgmt\n" +
                            "The following parameters available: filename, blocksize, write_through, nv_cache, rotational, t10_dev_id.\n";
        Assert.Equal(new[] { "blocksize", "filename", "nv_cache", "rotational", "t10_dev_id", "write_through" },
            ScstConfigWriter.ParseCreateParameters(help).Order());
        Assert.Empty(ScstConfigWriter.ParseCreateParameters("Usage: echo \"create GROUP\" >mgmt\n"));
    }

    [Fact]
    public void Key_attributes_are_serialized_sorted_with_numbered_ones_folded_and_static_ones_filtered()
    {
        ScstConfigWriter.Attribute A(string name, string? value, bool key, bool isStatic = false) => new(name, value, key, isStatic);
        var attributes = new[]
        {
            A("IncomingUser1", "bob secret-bbbbbbbb", true),
            A("IncomingUser", "alice secret-aaaaaaa", true),
            A("enabled", "1", false),
            A("blocksize", "4096", true, isStatic: true),
            A("size", "1048576", true, isStatic: true),
            A("rel_tgt_id", "3", true),
            A("QueuedCommands", "32", false),
            A("resync_size", null, false),
            A("OutgoingUser", "", true),
        };
        var text = ScstConfigWriter.SerializeKeyAttributes("\t", attributes, ["blocksize"]);
        Assert.Equal(
            "\tIncomingUser \"alice secret-aaaaaaa\"\n" +
            "\tIncomingUser \"bob secret-bbbbbbbb\"\n" +
            "\tblocksize 4096\n" +
            "\tenabled 1\n" +
            "\trel_tgt_id 3\n",
            text);
    }
}

public sealed class ScstSpecValidationTests
{
    private static ExportSpec Spec() => new()
    {
        Key = "0123456789abcdef",
        TargetIqn = "iqn.2026-11.io.csi-scst:csi.0123456789abcdef",
        DeviceName = "csi_csi_0123456789abcdef",
        BackingPath = "/dev/vg0/csi-csi-0123456789abcdef",
        IsFile = false,
        Serial = "CS0123456789abcdef",
    };

    [Fact]
    public void A_valid_spec_resolves_groups_and_portal_patterns()
    {
        var resolved = ScstSpecValidator.Validate(Spec() with
        {
            Initiators = [new InitiatorAccess("iqn.1993-08.org.debian:01:b", true), new InitiatorAccess("iqn.1993-08.org.debian:01:a", false), new InitiatorAccess("iqn.1993-08.org.debian:01:a", false)],
            Portals = ["10.0.0.5:3260", "[fd00::5]:3260", "10.0.0.5:3261"],
        });
        Assert.Equal(2, resolved.Access.Count);
        Assert.All(resolved.Access, a => Assert.StartsWith("ini_", a.Group));
        Assert.Equal(["10.0.0.5", "fd00::5"], resolved.PortalPatterns);
    }

    [Fact]
    public void A_wildcard_portal_means_no_restriction() =>
        Assert.Empty(ScstSpecValidator.Validate(Spec() with { Portals = ["10.0.0.5:3260", "0.0.0.0:3260"] }).PortalPatterns);

    [Theory]
    [InlineData("key")]
    [InlineData("iqn")]
    [InlineData("device")]
    [InlineData("path-relative")]
    [InlineData("path-space")]
    [InlineData("path-semicolon")]
    [InlineData("serial-long")]
    [InlineData("blocksize")]
    [InlineData("initiator")]
    [InlineData("initiator-conflict")]
    [InlineData("portal")]
    [InlineData("chap-user")]
    [InlineData("chap-half-mutual")]
    [InlineData("chap-same-secret")]
    public void Bad_values_are_invalid_arguments_naming_the_value(string what)
    {
        var spec = what switch
        {
            "key" => Spec() with { Key = "XYZ" },
            "iqn" => Spec() with { TargetIqn = "not an iqn" },
            "device" => Spec() with { DeviceName = new string('d', 65) },
            "path-relative" => Spec() with { BackingPath = "dev/vg0/lv" },
            "path-space" => Spec() with { BackingPath = "/var/lib/my images/a.img" },
            "path-semicolon" => Spec() with { BackingPath = "/dev/a;b" },
            "serial-long" => Spec() with { Serial = new string('S', 21) },
            "blocksize" => Spec() with { BlockSize = 1000 },
            "initiator" => Spec() with { Initiators = [new InitiatorAccess("bad initiator", false)] },
            "initiator-conflict" => Spec() with { Initiators = [new InitiatorAccess("iqn.1993-08.org.debian:01:a", false), new InitiatorAccess("iqn.1993-08.org.debian:01:a", true)] },
            "portal" => Spec() with { Portals = ["nowhere:3260"] },
            "chap-user" => Spec() with { Chap = new ChapSpec("bad user", "secret-0123456789") },
            "chap-half-mutual" => Spec() with { Chap = new ChapSpec("user", "secret-0123456789", "target", null) },
            "chap-same-secret" => Spec() with { Chap = new ChapSpec("user", "secret-0123456789", "target", "secret-0123456789") },
            _ => throw new ArgumentException(what),
        };
        var error = Assert.Throws<StatusException>(() => ScstSpecValidator.Validate(spec));
        Assert.Equal(StatusCode.InvalidArgument, error.Code);
        Assert.DoesNotContain("secret-0123456789", error.Message);
    }
}

public sealed class ScstErrorMappingTests
{
    [Theory]
    [InlineData(1, StatusCode.Unavailable, "iscsi-scstd is not running")]
    [InlineData(2, StatusCode.FailedPrecondition, "ENOENT")]
    [InlineData(16, StatusCode.Unavailable, "EBUSY")]
    [InlineData(17, StatusCode.AlreadyExists, "EEXIST")]
    [InlineData(22, StatusCode.Internal, "dmesg")]
    [InlineData(57, StatusCode.FailedPrecondition, "rel_tgt_id")]
    [InlineData(124, StatusCode.FailedPrecondition, "not open")]
    [InlineData(5, StatusCode.Internal, "EIO")]
    public void Errno_values_map_to_codes_and_say_what_failed_without_secrets(int errno, StatusCode code, string text)
    {
        var command = ScstCommand.WithSecret("add_target_attribute iqn.x:y IncomingUser alice", "hunter2-secret-x");
        var error = ScstErrors.ForWrite(errno, "/sys/kernel/scst_tgt/targets/iscsi/mgmt", command);
        Assert.Equal(code, error.Code);
        Assert.Contains(text, error.Message);
        Assert.Contains("add_target_attribute iqn.x:y IncomingUser alice ***", error.Message);
        Assert.DoesNotContain("hunter2", error.Message);
    }
}

public sealed class ScstFaultPointTests
{
    [Fact]
    public void Without_a_fault_point_nothing_is_armed()
    {
        var faults = new CsiScst.Core.Faults.FaultPoints(new ScstOptions { FaultPoint = null }.FaultPoint);
        Assert.Null(faults.Armed);
        faults.Hit("scst-write");
    }

    [Fact]
    public void Another_point_than_the_armed_one_never_fires()
    {
        var faults = new CsiScst.Core.Faults.FaultPoints(new ScstOptions { FaultPoint = "scst-write:1" }.FaultPoint);
        Assert.Equal("scst-write", faults.Armed);
        faults.Hit("scst-written");
        faults.Hit("scst-poll");
    }
}
