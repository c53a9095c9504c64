using System.Buffers.Binary;

namespace CsiScst.ScstModel.Fuse;

/// <summary>
/// The kernel FUSE protocol (include/uapi/linux/fuse.h), major 7. We answer INIT with minor
/// <see cref="OurMinor"/>; every structure we read or write has had its current layout since 7.9, and
/// the newer minors only append fields we do not need.
/// </summary>
internal static class FuseProtocol
{
    public const uint KernelMajor = 7;
    public const uint OurMinor = 31;
    public const ulong RootId = 1;

    public const int InHeaderSize = 40;
    public const int OutHeaderSize = 16;
    public const int AttrSize = 88;

    // INIT flags
    public const uint AtomicOTrunc = 1 << 3;
    public const uint BigWrites = 1 << 5;

    // OPEN reply flags
    public const uint FopenDirectIo = 1 << 0;

    // SETATTR valid bits
    public const uint FattrSize = 1 << 3;

    // Mode type bits
    public const uint SIfDir = 0x4000;
    public const uint SIfReg = 0x8000;
    public const uint SIfLnk = 0xA000;

    // dirent types
    public const uint DtDir = 4;
    public const uint DtReg = 8;
    public const uint DtLnk = 10;
}

internal enum FuseOpcode : uint
{
    Lookup = 1,
    Forget = 2,
    GetAttr = 3,
    SetAttr = 4,
    ReadLink = 5,
    Symlink = 6,
    MkNod = 8,
    MkDir = 9,
    Unlink = 10,
    RmDir = 11,
    Rename = 12,
    Link = 13,
    Open = 14,
    Read = 15,
    Write = 16,
    StatFs = 17,
    Release = 18,
    FSync = 20,
    SetXAttr = 21,
    GetXAttr = 22,
    ListXAttr = 23,
    RemoveXAttr = 24,
    Flush = 25,
    Init = 26,
    OpenDir = 27,
    ReadDir = 28,
    ReleaseDir = 29,
    FSyncDir = 30,
    Access = 34,
    Create = 35,
    Interrupt = 36,
    Destroy = 38,
    BatchForget = 42,
    Rename2 = 45,
}

/// <summary>The fixed header every request starts with (struct fuse_in_header).</summary>
internal readonly record struct FuseInHeader(uint Length, FuseOpcode Opcode, ulong Unique, ulong NodeId, uint Uid, uint Gid, uint Pid)
{
    public static FuseInHeader Parse(ReadOnlySpan<byte> b) => new(
        BinaryPrimitives.ReadUInt32LittleEndian(b),
        (FuseOpcode)BinaryPrimitives.ReadUInt32LittleEndian(b[4..]),
        BinaryPrimitives.ReadUInt64LittleEndian(b[8..]),
        BinaryPrimitives.ReadUInt64LittleEndian(b[16..]),
        BinaryPrimitives.ReadUInt32LittleEndian(b[24..]),
        BinaryPrimitives.ReadUInt32LittleEndian(b[28..]),
        BinaryPrimitives.ReadUInt32LittleEndian(b[32..]));
}

/// <summary>Little-endian writer for reply payloads.</summary>
internal ref struct FuseWriter(Span<byte> buffer)
{
    private readonly Span<byte> _buffer = buffer;
    private int _pos;

    public readonly int Length => _pos;

    public void U64(ulong v)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(_buffer[_pos..], v);
        _pos += 8;
    }

    public void U32(uint v)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(_buffer[_pos..], v);
        _pos += 4;
    }

    public void U16(ushort v)
    {
        BinaryPrimitives.WriteUInt16LittleEndian(_buffer[_pos..], v);
        _pos += 2;
    }

    public void Bytes(ReadOnlySpan<byte> data)
    {
        data.CopyTo(_buffer[_pos..]);
        _pos += data.Length;
    }

    public void Zeros(int count)
    {
        _buffer.Slice(_pos, count).Clear();
        _pos += count;
    }

    /// <summary>struct fuse_attr.</summary>
    public void Attr(ulong ino, FsNodeInfo info, ulong time)
    {
        uint type = info.Kind switch
        {
            FsKind.Directory => FuseProtocol.SIfDir,
            FsKind.Symlink => FuseProtocol.SIfLnk,
            _ => FuseProtocol.SIfReg,
        };
        U64(ino);
        U64((ulong)info.Size);
        U64(0);                 // blocks
        U64(time);              // atime
        U64(time);              // mtime
        U64(time);              // ctime
        U32(0);
        U32(0);
        U32(0);
        U32(type | (uint)info.Permissions);
        U32(info.Kind == FsKind.Directory ? 2u : 1u);
        U32(0);                 // uid
        U32(0);                 // gid
        U32(0);                 // rdev
        U32(4096);              // blksize
        U32(0);                 // flags
    }
}
