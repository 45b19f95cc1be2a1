#!/usr/bin/env python3
"""A small client of the Docker Engine API (v1.41) for the docker runtime
steps: python3 standard library only, over DOCKER_HOST (unix:// or tcp://).
Works against dockerd and against podman's Docker-compatible service.

  docker_api.py build TAG CONTEXT_DIR        build an image (streams the build log)
  docker_api.py push TAG                     push it (X-Registry-Auth from DOCKER_AUTH_JSON)
  docker_api.py run NAME IMAGE JSON_SPEC     create + start; JSON_SPEC: {"cmd": [...], "binds": [...],
                                             "network": "host", "env": [...], "labels": {...}, "ports": {...}}
  docker_api.py wait NAME                    wait for exit; exit with its status code
  docker_api.py remove NAME                  stop (10 s) and remove, if it exists
  docker_api.py stop NAME | start NAME       stop (10 s) / start an existing container
  docker_api.py running NAME                 exit 0 when running
  docker_api.py image NAME                   the id of the image the container runs
  docker_api.py logs NAME [N]                last N lines of its output
  docker_api.py follow NAME [N]              last N lines, then its output as it comes (until it stops)
  docker_api.py containers LABEL=VALUE...    the containers (running or not) with all these labels:
                                             one "NAME IMAGE_ID" line each
  docker_api.py remove-image IMAGE           remove an image no container uses; exit 3 when one does
"""
import base64
import http.client
import io
import json
import os
import socket
import sys
import tarfile
import urllib.parse

API = "/v1.41"


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=600):
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


def connection():
    host = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    if host.startswith("unix://"):
        return UnixConnection(host[len("unix://"):])
    if host.startswith("tcp://"):
        h, _, p = host[len("tcp://"):].partition(":")
        return http.client.HTTPConnection(h, int(p or 2375), timeout=600)
    sys.exit("unsupported DOCKER_HOST %s (unix:// or tcp://)" % host)


def request(method, path, body=None, headers=None, stream=False):
    conn = connection()
    try:
        conn.request(method, API + path, body=body, headers=headers or {})
    except OSError as exc:
        sys.exit("cannot reach the Docker API at %s: %s" % (os.environ.get("DOCKER_HOST"), exc))
    resp = conn.getresponse()
    if stream:
        return resp
    data = resp.read()
    return resp.status, data


def fail_on(status, data, what):
    if status >= 300:
        try:
            msg = json.loads(data).get("message", data.decode(errors="replace"))
        except ValueError:
            msg = data.decode(errors="replace")
        sys.exit("%s: HTTP %d: %s" % (what, status, msg.strip()))


def build(tag, context):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.add(context, arcname=".")
    q = urllib.parse.urlencode({"t": tag, "rm": "1", "forcerm": "1"})
    resp = request("POST", "/build?" + q, body=buf.getvalue(),
                   headers={"Content-Type": "application/x-tar"}, stream=True)
    error = None
    for raw in resp:
        line = raw.decode(errors="replace").strip()
        if not line:
            continue
        try:
            item = json.loads(line)
        except ValueError:
            print(line)
            continue
        if item.get("stream"):
            text = item["stream"].rstrip("\n")
            if text.strip():
                print(text)
        if item.get("error"):
            error = item.get("error")
    if resp.status >= 300 or error:
        sys.exit("image build of %s failed: %s" % (tag, error or "HTTP %d" % resp.status))
    print("built image %s" % tag)


def push(tag):
    name, _, version = tag.rpartition(":")
    auth = base64.b64encode(os.environ.get("DOCKER_AUTH_JSON", "{}").encode()).decode()
    resp = request("POST", "/images/%s/push?%s" % (urllib.parse.quote(name, safe="/:"),
                                                    urllib.parse.urlencode({"tag": version})),
                   headers={"X-Registry-Auth": auth}, stream=True)
    error = None
    for raw in resp:
        line = raw.decode(errors="replace").strip()
        if line:
            try:
                item = json.loads(line)
                error = item.get("error") or error
                if item.get("status"):
                    print(item["status"])
            except ValueError:
                print(line)
    if resp.status >= 300 or error:
        sys.exit("push of %s failed: %s" % (tag, error or "HTTP %d" % resp.status))
    print("pushed %s" % tag)


def run(name, image, spec):
    spec = json.loads(spec)
    body = {
        "Image": image,
        "Cmd": spec.get("cmd"),
        "Env": spec.get("env", []),
        "Labels": spec.get("labels", {}),
        "HostConfig": {
            "NetworkMode": spec.get("network", "host"),
            "Binds": spec.get("binds", []),
            "RestartPolicy": {"Name": spec.get("restart", "no")},
        },
    }
    if spec.get("ports"):
        body["ExposedPorts"] = {k: {} for k in spec["ports"]}
        body["HostConfig"]["PortBindings"] = {
            k: [{"HostIp": "127.0.0.1", "HostPort": str(v)}] for k, v in spec["ports"].items()}
    status, data = request("POST", "/containers/create?name=" + urllib.parse.quote(name),
                           body=json.dumps(body), headers={"Content-Type": "application/json"})
    fail_on(status, data, "creating container %s" % name)
    cid = json.loads(data)["Id"]
    status, data = request("POST", "/containers/%s/start" % cid)
    fail_on(status, data, "starting container %s" % name)
    print(cid)


def wait(name):
    status, data = request("POST", "/containers/%s/wait" % urllib.parse.quote(name))
    fail_on(status, data, "waiting for container %s" % name)
    return int(json.loads(data).get("StatusCode", 1))


def remove(name):
    q = urllib.parse.quote(name)
    status, data = request("POST", "/containers/%s/stop?t=10" % q)
    if status == 404:
        return
    status, data = request("DELETE", "/containers/%s?force=1" % q)
    if status not in (200, 204, 404):
        fail_on(status, data, "removing container %s" % name)


def running(name):
    status, data = request("GET", "/containers/%s/json" % urllib.parse.quote(name))
    return status == 200 and json.loads(data).get("State", {}).get("Running", False)


def logs(name, n=50):
    status, data = request("GET", "/containers/%s/logs?stdout=1&stderr=1&tail=%d" % (urllib.parse.quote(name), n))
    if status >= 300:
        return ""
    out, i = [], 0
    # multiplexed stream: 8-byte headers (stream, 0, 0, 0, size32) unless a TTY
    while i + 8 <= len(data) and data[i] in (0, 1, 2) and data[i + 1:i + 4] == b"\0\0\0":
        size = int.from_bytes(data[i + 4:i + 8], "big")
        out.append(data[i + 8:i + 8 + size])
        i += 8 + size
    text = b"".join(out) if out else data
    return text.decode(errors="replace")


def follow(name, n=200):
    conn = connection()
    conn.timeout = None
    try:
        conn.request("GET", API + "/containers/%s/logs?stdout=1&stderr=1&follow=1&tail=%d" % (urllib.parse.quote(name), n))
    except OSError as exc:
        sys.exit("cannot reach the Docker API at %s: %s" % (os.environ.get("DOCKER_HOST"), exc))
    resp = conn.getresponse()
    if resp.status >= 300:
        fail_on(resp.status, resp.read(), "following the logs of container %s" % name)
    out = sys.stdout.buffer
    while True:
        # multiplexed frames (8-byte header) unless the container has a TTY
        head = resp.read(8)
        if len(head) < 8:
            out.write(head)
            break
        if head[0] in (0, 1, 2) and head[1:4] == b"\0\0\0":
            out.write(resp.read(int.from_bytes(head[4:8], "big")))
        else:
            out.write(head + resp.readline())
        out.flush()


def image(name):
    status, data = request("GET", "/containers/%s/json" % urllib.parse.quote(name))
    fail_on(status, data, "inspecting container %s" % name)
    print(json.loads(data)["Image"])


def containers(labels):
    filters = json.dumps({"label": labels})
    status, data = request("GET", "/containers/json?all=1&filters=" + urllib.parse.quote(filters))
    fail_on(status, data, "listing the containers labelled %s" % ", ".join(labels))
    for c in json.loads(data):
        name = (c.get("Names") or [c["Id"]])[0].lstrip("/")
        print(name, c.get("ImageID") or c.get("Image"))


def remove_image(image):
    """Never forced: an image another container still runs stays (exit 3)."""
    status, data = request("DELETE", "/images/%s" % urllib.parse.quote(image, safe=""))
    if status == 409:
        return 3
    if status != 404:
        fail_on(status, data, "removing image %s" % image)
    return 0


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    cmd, args = argv[0], argv[1:]
    if cmd == "build":
        build(args[0], args[1])
    elif cmd == "push":
        push(args[0])
    elif cmd == "run":
        run(args[0], args[1], args[2])
    elif cmd == "wait":
        sys.exit(wait(args[0]))
    elif cmd == "remove":
        remove(args[0])
    elif cmd in ("stop", "start"):
        status, data = request("POST", "/containers/%s/%s%s" % (urllib.parse.quote(args[0]), cmd,
                                                                 "?t=10" if cmd == "stop" else ""))
        if status not in (204, 304):
            fail_on(status if status >= 300 else 500, data, "%s container %s" % (cmd, args[0]))
    elif cmd == "running":
        sys.exit(0 if running(args[0]) else 1)
    elif cmd == "image":
        image(args[0])
    elif cmd == "containers":
        containers(args)
    elif cmd == "remove-image":
        sys.exit(remove_image(args[0]))
    elif cmd == "follow":
        follow(args[0], int(args[1]) if len(args) > 1 else 200)
    elif cmd == "logs":
        sys.stdout.write(logs(args[0], int(args[1]) if len(args) > 1 else 50))
    else:
        sys.exit("unknown command %s\n%s" % (cmd, __doc__))


if __name__ == "__main__":
    main(sys.argv[1:])
