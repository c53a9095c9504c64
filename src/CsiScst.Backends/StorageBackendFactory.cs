using CsiScst.Backends.File;
using CsiScst.Backends.Lvm;
using CsiScst.Backends.Pools;
using CsiScst.Backends.Rbd;
using CsiScst.Core.Errors;
using CsiScst.Core.Exec;
using CsiScst.Core.Ids;
using CsiScst.Core.Metrics;
using Microsoft.Extensions.Logging;

namespace CsiScst.Backends;

/// <summary>Makes the backend of one configured pool.</summary>
public sealed class StorageBackendFactory
{
    private readonly IToolRunner _tools;
    private readonly ObjectNames _names;
    private readonly ExternalTime _externalTime;
    private readonly ILoggerFactory _loggers;

    public StorageBackendFactory(IToolRunner tools, ObjectNames names, ExternalTime externalTime, ILoggerFactory loggers)
    {
        _tools = tools;
        _names = names;
        _externalTime = externalTime;
        _loggers = loggers;
    }

    public IStorageBackend Create(PoolOptions options) => options switch
    {
        FilePoolOptions file => new FileBackend(file, _names, _externalTime, _loggers.CreateLogger<FileBackend>()),
        LvmPoolOptions lvm => new LvmBackend(lvm, _names, _tools, _loggers.CreateLogger<LvmBackend>()),
        RbdPoolOptions rbd => new RbdBackend(rbd, _names, _tools, _loggers.CreateLogger<RbdBackend>()),
        _ => throw StatusException.Unimplemented($"pool '{options.Name}': backend {options.Backend} is not available in this build"),
    };
}
