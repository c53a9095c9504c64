namespace CsiScst.IntegrationTests.Infrastructure;

/// <summary>
/// Where the real csi-scst executable is: $CSI_SCST_BINARY (e.g. a Native AOT build) or the apphost the
/// test project's build copied next to the tests.
/// </summary>
public static class DriverBinary
{
    public static string Path
    {
        get
        {
            var fromEnv = Environment.GetEnvironmentVariable("CSI_SCST_BINARY");
            if (!string.IsNullOrEmpty(fromEnv))
            {
                return fromEnv;
            }
            var local = System.IO.Path.Combine(AppContext.BaseDirectory, "csi-scst");
            if (File.Exists(local))
            {
                return local;
            }
            throw new InvalidOperationException($"csi-scst executable not found at {local}; build src/CsiScst or set CSI_SCST_BINARY");
        }
    }
}
