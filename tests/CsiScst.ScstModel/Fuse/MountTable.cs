using System.Text;

namespace CsiScst.ScstModel.Fuse;

/// <summary>Reads /proc/self/mountinfo, to find (stale) mounts at a mount point.</summary>
internal static class MountTable
{
    /// <summary>File system types mounted at <paramref name="mountPoint"/>, innermost last.</summary>
    public static IReadOnlyList<string> TypesAt(string mountPoint)
    {
        string wanted = Normalize(mountPoint);
        var types = new List<string>();
        foreach (string line in File.ReadLines("/proc/self/mountinfo"))
        {
            // id parent major:minor root mountpoint options [optional fields...] - fstype source superoptions
            string[] fields = line.Split(' ');
            if (fields.Length < 7 || Unescape(fields[4]) != wanted)
            {
                continue;
            }

            int dash = Array.IndexOf(fields, "-", 6);
            if (dash > 0 && dash + 1 < fields.Length)
            {
                types.Add(fields[dash + 1]);
            }
        }

        return types;
    }

    public static string Normalize(string path)
    {
        string full = Path.GetFullPath(path);
        return full.Length > 1 ? full.TrimEnd('/') : full;
    }

    /// <summary>mountinfo escapes space, tab, newline and backslash as \ooo.</summary>
    private static string Unescape(string s)
    {
        if (!s.Contains('\\', StringComparison.Ordinal))
        {
            return s;
        }

        var sb = new StringBuilder(s.Length);
        for (int i = 0; i < s.Length; i++)
        {
            if (s[i] == '\\' && IsOctal(s, i + 1))
            {
                sb.Append((char)Convert.ToInt32(s.Substring(i + 1, 3), 8));
                i += 3;
            }
            else
            {
                sb.Append(s[i]);
            }
        }

        return sb.ToString();
    }

    private static bool IsOctal(string s, int start) =>
        start + 3 <= s.Length && s[start] is >= '0' and <= '7' && s[start + 1] is >= '0' and <= '7' && s[start + 2] is >= '0' and <= '7';
}
