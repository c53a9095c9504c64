namespace CsiScst.Targets.Scst;

/// <summary>
/// One command for an SCST sysfs file. <see cref="Display"/> is what logs and error messages show:
/// the text with any CHAP secret replaced, so a failed write never leaks a secret.
/// </summary>
internal sealed record ScstCommand(string Text, string Display)
{
    public static ScstCommand Of(string text) => new(text, text);

    /// <summary>A command whose last word is a secret.</summary>
    public static ScstCommand WithSecret(string prefix, string secret) => new($"{prefix} {secret}", $"{prefix} ***");

    public override string ToString() => Display;
}
