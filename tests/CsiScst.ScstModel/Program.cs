using System.Globalization;
using System.Runtime.InteropServices;
using CsiScst.ScstModel;

// dotnet CsiScst.ScstModel.dll --mount DIR [--work-ms N] [--wait-ms N] [--no-iscsi-scstd] [--forcibly-close-sessions]
// Mounts the SCST sysfs model on DIR until SIGTERM or SIGINT. Prints "mounted DIR" once it is ready.
string? mount = null;
var options = new ScstModelOptions();
for (int i = 0; i < args.Length; i++)
{
    string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
    switch (args[i])
    {
        case "--mount":
            mount = Next();
            break;
        case "--work-ms":
            options.WorkMs = int.Parse(Next(), CultureInfo.InvariantCulture);
            break;
        case "--wait-ms":
            options.WaitMs = int.Parse(Next(), CultureInfo.InvariantCulture);
            break;
        case "--no-iscsi-scstd":
            options.IscsiScstdRunningAtBoot = false;
            break;
        case "--forcibly-close-sessions":
            options.ForciblyCloseSessions = true;
            break;
        default:
            Console.Error.WriteLine($"unknown argument {args[i]}");
            return 2;
    }
}

if (mount is null)
{
    Console.Error.WriteLine("usage: CsiScst.ScstModel --mount DIR [--work-ms N] [--wait-ms N] [--no-iscsi-scstd] [--forcibly-close-sessions]");
    return 2;
}

var stop = new ManualResetEventSlim();
using PosixSignalRegistration term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c =>
{
    c.Cancel = true;
    stop.Set();
});
using PosixSignalRegistration interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, c =>
{
    c.Cancel = true;
    stop.Set();
});

await using (ScstModelMount model = await ScstModelMount.StartAsync(mount, options))
{
    Console.WriteLine($"mounted {model.MountPoint}");
    Console.Out.Flush();
    stop.Wait();
}

Console.WriteLine("unmounted");
return 0;
