using System.Collections.Concurrent;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace CsiScst.Testing;

/// <summary>
/// A stand-in for kube-apiserver (none can run on this machine) implementing exactly the calls the
/// controller makes: list pods by label selector, and get / create / list by label / delete secrets,
/// in one namespace, with the API's JSON shapes and status codes (404, 409). The controller talks to it
/// through the real KubernetesClient over HTTP, configured by a kubeconfig file.
/// </summary>
public sealed class FakeKubernetesApi : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly string _directory;

    public ConcurrentDictionary<string, JsonObject> Secrets { get; } = new(StringComparer.Ordinal);
    public List<JsonObject> Pods { get; } = [];
    public ConcurrentQueue<string> Requests { get; } = new();
    public string Namespace { get; }
    public string KubeconfigPath { get; }
    /// <summary>When set, every call answers this status (e.g. 503, 403).</summary>
    public int? FailWith { get; set; }

    private FakeKubernetesApi(WebApplication app, string ns, string directory, string kubeconfig)
    {
        _app = app;
        Namespace = ns;
        _directory = directory;
        KubeconfigPath = kubeconfig;
    }

    public static async Task<FakeKubernetesApi> StartAsync(string ns = "csi-scst")
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0));
        var app = builder.Build();
        var directory = Directory.CreateTempSubdirectory("csi-scst-kube-").FullName;
        FakeKubernetesApi? api = null;
        app.Run(context => api!.HandleAsync(context));
        await app.StartAsync();
        var port = new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First()).Port;
        var kubeconfig = Path.Combine(directory, "kubeconfig");
        await File.WriteAllTextAsync(kubeconfig, $"""
            apiVersion: v1
            kind: Config
            clusters:
            - name: fake
              cluster:
                server: http://127.0.0.1:{port}
            contexts:
            - name: fake
              context:
                cluster: fake
                user: fake
                namespace: {ns}
            current-context: fake
            users:
            - name: fake
              user:
                token: test-token
            """);
        api = new FakeKubernetesApi(app, ns, directory, kubeconfig);
        return api;
    }

    public void AddPod(string name, string ip, string phase, Dictionary<string, string> labels, string nodeName)
    {
        var labelsJson = new JsonObject();
        foreach (var (k, v) in labels)
        {
            labelsJson[k] = v;
        }
        Pods.Add(new JsonObject
        {
            ["metadata"] = new JsonObject { ["name"] = name, ["namespace"] = Namespace, ["labels"] = labelsJson },
            ["spec"] = new JsonObject { ["nodeName"] = nodeName },
            ["status"] = new JsonObject { ["phase"] = phase, ["podIP"] = ip },
        });
    }

    private async Task HandleAsync(HttpContext context)
    {
        var request = context.Request;
        Requests.Enqueue($"{request.Method} {request.Path}{request.QueryString}");
        if (FailWith is { } code)
        {
            await Status(context, code, "injected failure");
            return;
        }
        var parts = request.Path.Value!.Trim('/').Split('/');
        // /api/v1/namespaces/{ns}/{resource}[/{name}]
        if (parts.Length < 5 || parts[0] != "api" || parts[1] != "v1" || parts[2] != "namespaces")
        {
            await Status(context, 404, "unknown path");
            return;
        }
        if (parts[3] != Namespace)
        {
            await List(context, "PodList", []);
            return;
        }
        var selector = request.Query["labelSelector"].ToString();
        switch (parts[4], parts.Length, request.Method)
        {
            case ("pods", 5, "GET"):
                await List(context, "PodList", Pods.Where(p => Matches(p, selector)));
                return;
            case ("secrets", 5, "GET"):
                await List(context, "SecretList", Secrets.Values.Where(s => Matches(s, selector)));
                return;
            case ("secrets", 6, "GET"):
                if (Secrets.TryGetValue(parts[5], out var found))
                {
                    await Json(context, 200, found);
                }
                else
                {
                    await Status(context, 404, $"secrets \"{parts[5]}\" not found");
                }
                return;
            case ("secrets", 5, "POST"):
                var body = (JsonObject)(await JsonNode.ParseAsync(request.Body))!;
                var name = body["metadata"]!["name"]!.GetValue<string>();
                // The API server turns stringData into base64 data.
                var data = body["data"] as JsonObject ?? new JsonObject();
                if (body["stringData"] is JsonObject stringData)
                {
                    foreach (var (k, v) in stringData)
                    {
                        data[k] = Convert.ToBase64String(Encoding.UTF8.GetBytes(v!.GetValue<string>()));
                    }
                    body.Remove("stringData");
                }
                body["data"] = data;
                body["kind"] = "Secret";
                body["apiVersion"] = "v1";
                if (!Secrets.TryAdd(name, body))
                {
                    await Status(context, 409, $"secrets \"{name}\" already exists");
                    return;
                }
                await Json(context, 201, body);
                return;
            case ("secrets", 6, "DELETE"):
                if (Secrets.TryRemove(parts[5], out _))
                {
                    await Json(context, 200, new JsonObject { ["kind"] = "Status", ["apiVersion"] = "v1", ["status"] = "Success" });
                }
                else
                {
                    await Status(context, 404, $"secrets \"{parts[5]}\" not found");
                }
                return;
            default:
                await Status(context, 405, "not implemented by the fake");
                return;
        }
    }

    private static bool Matches(JsonObject item, string selector)
    {
        if (string.IsNullOrEmpty(selector))
        {
            return true;
        }
        var labels = item["metadata"]?["labels"] as JsonObject;
        return selector.Split(',').All(term =>
        {
            var eq = term.Split('=', 2);
            return labels is not null && labels.TryGetPropertyValue(eq[0], out var value) && value?.GetValue<string>() == eq[1];
        });
    }

    private static Task List(HttpContext context, string kind, IEnumerable<JsonObject> items)
    {
        var array = new JsonArray();
        foreach (var item in items)
        {
            array.Add(item.DeepClone());
        }
        return Json(context, 200, new JsonObject { ["kind"] = kind, ["apiVersion"] = "v1", ["metadata"] = new JsonObject(), ["items"] = array });
    }

    private static Task Status(HttpContext context, int code, string message) =>
        Json(context, code, new JsonObject { ["kind"] = "Status", ["apiVersion"] = "v1", ["status"] = "Failure", ["message"] = message, ["code"] = code });

    private static async Task Json(HttpContext context, int code, JsonObject body)
    {
        context.Response.StatusCode = code;
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync(body.ToJsonString());
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
        Directory.Delete(_directory, recursive: true);
    }
}
