using System.Text;

namespace CsiScst.ScstModel.Scst;

/// <summary>
/// What the model would have printed to the kernel log (dmesg). interfaces.md A.3: the errno is the only
/// detail a writer gets; the reason goes here. Messages of iscsi-scstd (which really go to its syslog)
/// are kept here too, tagged "iscsi-scstd".
/// </summary>
internal sealed class KernelLog
{
    private readonly Lock _gate = new();
    private readonly List<string> _lines = [];

    public void Error(string source, string message) => Add($"{source}: ***ERROR***: {message}");

    public void Info(string source, string message) => Add($"{source}: {message}");

    public void Warning(string source, string message) => Add($"{source}: ***WARNING***: {message}");

    public void Clear()
    {
        lock (_gate)
        {
            _lines.Clear();
        }
    }

    public string Text
    {
        get
        {
            lock (_gate)
            {
                var sb = new StringBuilder();
                foreach (string line in _lines)
                {
                    sb.Append(line).Append('\n');
                }

                return sb.ToString();
            }
        }
    }

    private void Add(string line)
    {
        lock (_gate)
        {
            _lines.Add(line);
        }
    }
}

/// <summary>Every write the model's sysfs took, with the errno it answered (0 = accepted): a test aid.</summary>
internal sealed class OpsLog
{
    private readonly Lock _gate = new();
    private readonly StringBuilder _text = new();

    public void Add(string path, string text, int errno)
    {
        string escaped = text.Replace("\\", "\\\\", StringComparison.Ordinal)
            .Replace("\n", "\\n", StringComparison.Ordinal)
            .Replace("\t", "\\t", StringComparison.Ordinal);
        lock (_gate)
        {
            _text.Append(path).Append('\t').Append(escaped).Append('\t').Append(errno).Append('\n');
        }
    }

    public void Mark(string what)
    {
        lock (_gate)
        {
            _text.Append("# ").Append(what).Append('\n');
        }
    }

    public void Clear()
    {
        lock (_gate)
        {
            _text.Clear();
        }
    }

    public string Text
    {
        get
        {
            lock (_gate)
            {
                return _text.ToString();
            }
        }
    }
}
