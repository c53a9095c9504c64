using CsiScst.ScstModel.Tests.Infrastructure;

namespace CsiScst.ScstModel.Tests;

/// <summary>interfaces.md A.3: how one write's text is split into a command and its parameters.</summary>
public sealed class LexerTests : ModelTest
{
    [Fact]
    public void A3_a_trailing_newline_is_accepted_and_not_required()
    {
        M.Ok("handlers/vdisk_nullio/mgmt", "add_device n1\n");
        M.Ok("handlers/vdisk_nullio/mgmt", "add_device n2");
        Assert.True(M.Exists("devices/n1"));
        Assert.True(M.Exists("devices/n2"));
    }

    [Fact]
    public void A3_parameters_are_name_value_pairs_separated_by_semicolons()
    {
        string img = M.Image(8 << 20);
        M.Ok("handlers/vdisk_fileio/mgmt", $"add_device d1 filename={img};blocksize=4096;rotational=0\n");
        Assert.Equal("4096\n[key]\n", M.R("devices/d1/blocksize"));
        Assert.Equal("0\n[key]\n", M.R("devices/d1/rotational"));
    }

    [Fact]
    public void A3_the_lexer_splits_on_whitespace_and_on_equals_signs()
    {
        string img = M.Image(8 << 20);
        // "name = value" and "name value" both read as a pair.
        M.Ok("handlers/vdisk_fileio/mgmt", $"add_device d1 filename = {img}; blocksize 4096\n");
        Assert.Equal("4096\n[key]\n", M.R("devices/d1/blocksize"));

        // So a value cannot contain '=' (it becomes a third lexem: too many values) ...
        Assert.Equal(Sys.EINVAL, M.W("handlers/vdisk_fileio/mgmt", $"add_device d2 filename={img}=x\n"));
        Assert.Contains("Too many parameter's filename values (device d2)", M.Dmesg);

        // ... nor a space.
        Assert.Equal(Sys.EINVAL, M.W("handlers/vdisk_fileio/mgmt", $"add_device d3 filename={img} x\n"));
        Assert.False(M.Exists("devices/d2"));
        Assert.False(M.Exists("devices/d3"));
    }

    [Fact]
    public void A3_an_empty_item_silently_ends_the_parameter_list()
    {
        string img = M.Image(8 << 20);
        M.Ok("handlers/vdisk_fileio/mgmt", $"add_device d1 filename={img};;blocksize=4096\n");
        Assert.Equal("512\n", M.R("devices/d1/blocksize"));

        // Whatever follows the empty item is not even checked.
        M.Ok("handlers/vdisk_nullio/mgmt", "add_device n1 blocksize=4096;;no_such_parameter=1\n");
        Assert.Equal("4096\n[key]\n", M.R("devices/n1/blocksize"));
    }

    [Fact]
    public void A3_parameter_names_and_commands_are_case_insensitive()
    {
        string img = M.Image(8 << 20);
        M.Ok("handlers/vdisk_fileio/mgmt", $"ADD_DEVICE d1 FileName={img};BlockSize=4096\n");
        Assert.Equal("4096\n[key]\n", M.R("devices/d1/blocksize"));
    }

    [Fact]
    public void A3_numbers_are_parsed_with_base_0_so_0x_is_hex_and_a_leading_0_is_octal()
    {
        M.Ok("handlers/vdisk_nullio/mgmt", "add_device hex blocksize=0x1000\n");
        Assert.Equal("4096\n[key]\n", M.R("devices/hex/blocksize"));
        M.Ok("handlers/vdisk_nullio/mgmt", "add_device oct blocksize=010000\n");
        Assert.Equal("4096\n[key]\n", M.R("devices/oct/blocksize"));

        // 08 is not octal: EINVAL.
        Assert.Equal(Sys.EINVAL, M.W("handlers/vdisk_nullio/mgmt", "add_device bad blocksize=08\n"));

        // LUN numbers too: "add n1 010" is LUN 8.
        M.AddTarget();
        M.Ok($"{M.T()}/luns/mgmt", "add hex 010\n");
        Assert.True(M.Exists($"{M.T()}/luns/8"));
        M.Ok($"{M.T()}/luns/mgmt", "add oct 0x10\n");
        Assert.True(M.Exists($"{M.T()}/luns/16"));
    }

    [Fact]
    public void A3_a_number_out_of_range_is_ERANGE()
    {
        Assert.Equal(Sys.ERANGE, M.W("handlers/vdisk_nullio/mgmt", "add_device n1 blocksize=99999999999999999999999\n"));
    }

    [Fact]
    public void A3_one_command_per_write_so_a_second_line_is_no_second_command()
    {
        // The second line is read as more parameters of the first command, which then fails as a whole.
        Assert.Equal(Sys.EINVAL, M.W("handlers/vdisk_nullio/mgmt", "add_device n1\nadd_device n2\n"));
        Assert.False(M.Exists("devices/n1"));
        Assert.False(M.Exists("devices/n2"));
    }

    [Fact]
    public void A3_a_parameter_without_value_is_EINVAL()
    {
        Assert.Equal(Sys.EINVAL, M.W("handlers/vdisk_nullio/mgmt", "add_device n1 blocksize\n"));
        Assert.Contains("Parameter blocksize value missed for device n1", M.Dmesg);
    }
}
