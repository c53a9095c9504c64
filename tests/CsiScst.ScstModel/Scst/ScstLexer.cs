namespace CsiScst.ScstModel.Scst;

/// <summary>
/// The command lexer of SCST's sysfs (interfaces.md A.3, scst_lib.c scst_get_next_lexem /
/// scst_get_next_token_str), over one write's text:
/// <list type="bullet">
/// <item>a lexem is a run of characters other than whitespace and '='; both separate lexems, so a value
/// can contain neither;</item>
/// <item>a token string (one parameter) runs up to ';' or a newline; an empty one (";;") ends the list.</item>
/// </list>
/// </summary>
internal sealed class ScstLexer(string text)
{
    private readonly string _text = text;
    private int _pos;

    public static bool IsSpace(char c) => c is ' ' or '\t' or '\n' or '\v' or '\f' or '\r';

    /// <summary>The next lexem, or "" at the end. Consumes the one separator that ends it.</summary>
    public string NextLexem()
    {
        while (_pos < _text.Length && (IsSpace(_text[_pos]) || _text[_pos] == '='))
        {
            _pos++;
        }

        int start = _pos;
        while (_pos < _text.Length && !IsSpace(_text[_pos]) && _text[_pos] != '=')
        {
            _pos++;
        }

        string lexem = _text[start.._pos];
        if (_pos < _text.Length)
        {
            _pos++;
        }

        return lexem;
    }

    /// <summary>
    /// The next parameter (up to ';' or a newline), or null at the end of the list, which is also
    /// where an empty item stops it.
    /// </summary>
    public string? NextTokenString()
    {
        int end = _pos;
        while (end < _text.Length && _text[end] != ';' && _text[end] != '\n')
        {
            end++;
        }

        if (end == _pos)
        {
            return null;
        }

        string token = _text[_pos..end];
        _pos = end < _text.Length ? end + 1 : end;
        return token;
    }

    public string Rest => _text[_pos..];
}

/// <summary>The kernel's kstrto* family with base 0 (interfaces.md A.3: a leading 0 means octal, 0x hex).</summary>
internal static class KernelNumbers
{
    /// <summary>kstrtoull(s, 0): 0 or EINVAL/ERANGE. One trailing newline is allowed.</summary>
    public static int ParseULong(string s, out ulong value)
    {
        value = 0;
        ReadOnlySpan<char> span = s;
        if (span.Length > 0 && span[^1] == '\n')
        {
            span = span[..^1];
        }

        if (span.Length > 0 && span[0] == '+')
        {
            span = span[1..];
        }

        int radix = 10;
        if (span.Length >= 3 && span[0] == '0' && (span[1] | 0x20) == 'x' && Uri.IsHexDigit(span[2]))
        {
            radix = 16;
            span = span[2..];
        }
        else if (span.Length >= 1 && span[0] == '0')
        {
            radix = 8;
        }

        if (span.Length == 0)
        {
            return Errno.EINVAL;
        }

        ulong result = 0;
        foreach (char c in span)
        {
            int digit = c switch
            {
                >= '0' and <= '9' => c - '0',
                >= 'a' and <= 'f' => c - 'a' + 10,
                >= 'A' and <= 'F' => c - 'A' + 10,
                _ => 99,
            };
            if (digit >= radix)
            {
                return Errno.EINVAL;
            }

            if (result > (ulong.MaxValue - (ulong)digit) / (ulong)radix)
            {
                return Errno.ERANGE;
            }

            result = (result * (ulong)radix) + (ulong)digit;
        }

        value = result;
        return 0;
    }

    /// <summary>kstrtoul into an unsigned long (64-bit on x86_64).</summary>
    public static int ParseULong(string s, ulong max, out ulong value)
    {
        int errno = ParseULong(s, out value);
        if (errno == 0 && value > max)
        {
            value = 0;
            return Errno.ERANGE;
        }

        return errno;
    }

    /// <summary>kstrtol(s, 0): a leading '-' is allowed.</summary>
    public static int ParseLong(string s, out long value)
    {
        value = 0;
        bool negative = s.StartsWith('-');
        int errno = ParseULong(negative ? s[1..] : s, out ulong magnitude);
        if (errno != 0)
        {
            return errno;
        }

        if (negative ? magnitude > (ulong)long.MaxValue + 1 : magnitude > long.MaxValue)
        {
            return Errno.ERANGE;
        }

        value = negative ? (long)(0 - magnitude) : (long)magnitude;
        return 0;
    }

    /// <summary>
    /// strtol(s, NULL, 0) as iscsi-scstd uses it for parameter values: leading blanks, a sign, the base
    /// prefix, digits up to the first other character; no digits give 0. The result is stored in an
    /// unsigned 32-bit field, so it wraps.
    /// </summary>
    public static uint StrToUInt32(string s)
    {
        int i = 0;
        while (i < s.Length && ScstLexer.IsSpace(s[i]))
        {
            i++;
        }

        bool negative = false;
        if (i < s.Length && (s[i] == '+' || s[i] == '-'))
        {
            negative = s[i] == '-';
            i++;
        }

        int radix = 10;
        if (i + 1 < s.Length && s[i] == '0' && (s[i + 1] | 0x20) == 'x' && i + 2 < s.Length && Uri.IsHexDigit(s[i + 2]))
        {
            radix = 16;
            i += 2;
        }
        else if (i < s.Length && s[i] == '0')
        {
            radix = 8;
        }

        long value = 0;
        for (; i < s.Length; i++)
        {
            int digit = s[i] switch
            {
                >= '0' and <= '9' => s[i] - '0',
                >= 'a' and <= 'f' => s[i] - 'a' + 10,
                >= 'A' and <= 'F' => s[i] - 'A' + 10,
                _ => 99,
            };
            if (digit >= radix)
            {
                break;
            }

            value = Math.Min((value * radix) + digit, long.MaxValue / 64);
        }

        return unchecked((uint)(negative ? -value : value));
    }
}
