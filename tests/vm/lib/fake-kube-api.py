#!/usr/bin/env python3
"""A stand-in for kube-apiserver inside the test VM (no Kubernetes can run there), implementing only the
calls the controller makes for `chap: generated`: get / create / list by label selector / delete Secrets
in one namespace, with the API's JSON shapes and status codes (404, 409; stringData becomes base64 data).
The controller reaches it through its real Kubernetes client, configured by the kubeconfig written here.
Same behaviour as tests/CsiScst.IntegrationTests/Controller/FakeKubernetesApi.cs.

    fake-kube-api.py DIR NAMESPACE   # writes DIR/kubeconfig and DIR/port, serves until killed;
                                     # DIR/secrets/NAME.json mirrors each stored Secret (for the scenario)
"""
import base64
import json
import os
import sys
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

state_dir, namespace = sys.argv[1], sys.argv[2]
secrets = {}
os.makedirs(os.path.join(state_dir, "secrets"), exist_ok=True)


def mirror(name):
    path = os.path.join(state_dir, "secrets", name + ".json")
    if name in secrets:
        with open(path + ".tmp", "w") as f:
            json.dump(secrets[name], f)
        os.replace(path + ".tmp", path)
    elif os.path.exists(path):
        os.remove(path)


def matches(item, selector):
    labels = item.get("metadata", {}).get("labels") or {}
    for term in filter(None, selector.split(",")):
        key, _, value = term.partition("=")
        if labels.get(key) != value:
            return False
    return True


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        sys.stderr.write("fake-kube-api: %s %s\n" % (self.command, self.path))

    def reply(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def status(self, code, message):
        self.reply(code, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message, "code": code})

    def route(self):
        url = urllib.parse.urlsplit(self.path)
        parts = url.path.strip("/").split("/")
        query = urllib.parse.parse_qs(url.query)
        if len(parts) < 5 or parts[:3] != ["api", "v1", "namespaces"] or parts[3] != namespace or parts[4] not in ("secrets", "pods"):
            return self.status(404, "unknown path %s" % url.path)
        if parts[4] == "pods":
            return self.reply(200, {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": []})
        selector = query.get("labelSelector", [""])[0]
        name = parts[5] if len(parts) > 5 else None
        if self.command == "GET" and name is None:
            items = [s for s in secrets.values() if matches(s, selector)]
            return self.reply(200, {"kind": "SecretList", "apiVersion": "v1", "metadata": {}, "items": items})
        if self.command == "GET":
            return self.reply(200, secrets[name]) if name in secrets else self.status(404, 'secrets "%s" not found' % name)
        if self.command == "POST" and name is None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            new = body["metadata"]["name"]
            data = body.get("data") or {}
            for k, v in (body.pop("stringData", None) or {}).items():
                data[k] = base64.b64encode(v.encode()).decode()
            body.update({"data": data, "kind": "Secret", "apiVersion": "v1"})
            if new in secrets:
                return self.status(409, 'secrets "%s" already exists' % new)
            secrets[new] = body
            mirror(new)
            return self.reply(201, body)
        if self.command == "DELETE" and name is not None:
            if secrets.pop(name, None) is None:
                return self.status(404, 'secrets "%s" not found' % name)
            mirror(name)
            return self.reply(200, {"kind": "Status", "apiVersion": "v1", "status": "Success"})
        return self.status(405, "not implemented by the fake")

    do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = route


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
port = server.server_address[1]
with open(os.path.join(state_dir, "kubeconfig"), "w") as f:
    f.write(f"""apiVersion: v1
kind: Config
clusters:
- name: vm
  cluster:
    server: http://127.0.0.1:{port}
contexts:
- name: vm
  context:
    cluster: vm
    user: vm
    namespace: {namespace}
current-context: vm
users:
- name: vm
  user:
    token: vm-token
""")
with open(os.path.join(state_dir, "port.tmp"), "w") as f:
    f.write(str(port))
os.replace(os.path.join(state_dir, "port.tmp"), os.path.join(state_dir, "port"))
server.serve_forever()
