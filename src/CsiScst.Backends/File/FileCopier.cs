using Microsoft.Win32.SafeHandles;

namespace CsiScst.Backends.File;

/// <summary>
/// Copies one volume file into a new file: by reflink when allowed and supported, otherwise as a sparse
/// copy that only reads and writes the source's data regions (holes stay holes, all-zero blocks are skipped).
/// The caller gives a fresh temp path and renames it once this returns (crash safety lives there).
/// </summary>
internal static class FileCopier
{
    // copy_file_range in bounded steps so cancellation is honoured and no single call runs for minutes.
    private const long Step = 64L * 1024 * 1024;
    private const int BufferSize = 1024 * 1024;

    public enum Outcome
    {
        Reflinked,
        Copied,
    }

    /// <summary>
    /// Creates <paramref name="destination"/> (must not exist) with the content of <paramref name="source"/>,
    /// sized <paramref name="size"/> (≥ the source's size), flushed to disk. <paramref name="reflinkErrno"/>
    /// is set when a reflink was attempted and refused by the filesystem; with <paramref name="reflinkOnly"/>
    /// that refusal throws <see cref="NotSupportedException"/> instead of copying.
    /// </summary>
    public static Outcome Copy(string source, string destination, long size, bool tryReflink, bool reflinkOnly, out int reflinkErrno, CancellationToken cancellationToken)
    {
        reflinkErrno = 0;
        using var input = System.IO.File.OpenHandle(source, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        var sourceSize = RandomAccess.GetLength(input);
        if (size < sourceSize)
        {
            throw new ArgumentOutOfRangeException(nameof(size), $"copy of {sourceSize} bytes cannot be {size} bytes");
        }

        using var stream = new FileStream(destination, new FileStreamOptions
        {
            Mode = FileMode.CreateNew,
            Access = FileAccess.ReadWrite,
            Share = FileShare.None,
            UnixCreateMode = FileBackend.FileMode,
        });
        var output = stream.SafeFileHandle;
        var outcome = Outcome.Copied;
        if (tryReflink)
        {
            reflinkErrno = FileNative.TryReflink(input, output);
            if (reflinkErrno == 0)
            {
                outcome = Outcome.Reflinked;
            }
            else if (!FileNative.IsReflinkUnsupported(reflinkErrno))
            {
                throw FileNative.Error("ioctl(FICLONE)", destination, reflinkErrno);
            }
        }
        if (outcome == Outcome.Copied && reflinkOnly)
        {
            throw new NotSupportedException($"reflink to {destination} refused by the filesystem");
        }
        if (outcome == Outcome.Copied)
        {
            // Set the length first: every region we do not write is a hole.
            RandomAccess.SetLength(output, sourceSize);
            CopySparse(input, output, sourceSize, cancellationToken);
        }
        if (size > sourceSize)
        {
            RandomAccess.SetLength(output, size);
        }
        FileNative.FSync(output, destination);
        return outcome;
    }

    private static void CopySparse(SafeFileHandle input, SafeFileHandle output, long length, CancellationToken cancellationToken)
    {
        var useCopyRange = true;
        byte[]? buffer = null;
        long position = 0;
        while (position < length)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var dataStart = FileNative.SeekData(input, position);
            if (dataStart < 0 || dataStart >= length)
            {
                break;
            }
            var dataEnd = Math.Min(FileNative.SeekHole(input, dataStart), length);
            var offset = dataStart;
            while (offset < dataEnd)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var chunk = Math.Min(Step, dataEnd - offset);
                if (useCopyRange)
                {
                    var inOffset = offset;
                    var outOffset = offset;
                    var copied = FileNative.CopyRange(input, ref inOffset, output, ref outOffset, chunk);
                    if (copied > 0)
                    {
                        offset += copied;
                        continue;
                    }
                    if (copied == 0)
                    {
                        // The source shrank under us: what is left is past its end.
                        return;
                    }
                    var errno = (int)-copied;
                    if (errno is FileNative.EXDEV or FileNative.ENOSYS or FileNative.EINVAL or FileNative.EOPNOTSUPP)
                    {
                        useCopyRange = false;
                    }
                    else
                    {
                        throw FileNative.Error("copy_file_range", "", errno);
                    }
                }
                buffer ??= new byte[BufferSize];
                var span = buffer.AsSpan(0, (int)Math.Min(BufferSize, dataEnd - offset));
                var read = RandomAccess.Read(input, span, offset);
                if (read == 0)
                {
                    return;
                }
                // Filesystems report allocated-but-zero blocks as data; writing them would un-sparse the copy.
                if (span[..read].ContainsAnyExcept((byte)0))
                {
                    RandomAccess.Write(output, span[..read], offset);
                }
                offset += read;
            }
            position = dataEnd;
        }
    }
}
