#!/usr/bin/env python3
"""A loopback HTTP receiver for webhook tests and benchmarks (stdlib only).

asyncio with HTTP/1.1 keep-alive, so one process keeps up with thousands of
requests per second. Endpoints (POST, any body):
  /ok                 200
  /slow/<ms>          200 after <ms> milliseconds
  /status/<code>      that status code
  /timeout            never answers (the client times out)
  /drop               closes the connection without an answer
  /flaky/<n>          500 for the first <n> attempts of each delivery, then 200
  /repos/...          201 (GitHub commit statuses)
  GET /stats          JSON counters
Every answered or dropped request is appended as one JSON line to --log:
  {"t": unix time, "path", "delivery", "event", "sig_ok", "status", "auth",
   "private_token", "state"}  (state: the "state" of a JSON body, e.g. a commit status)
sig_ok checks X-Odooops-Signature (t=<ts>,v1=hex HMAC-SHA256(secret, "<ts>.<body>")).

  webhook_receiver.py --port 0 --secret s3cret --log /tmp/r.log --port-file /tmp/r.port
"""
import argparse
import asyncio
import hashlib
import hmac
import json
import os
import signal
import sys
import time

ARGS = None
LOG = None
STATS = {"requests": 0, "valid_signatures": 0, "invalid_signatures": 0}
FLAKY = {}


def verify(header, body):
    if not header or not ARGS.secret:
        return None
    try:
        parts = dict(p.split("=", 1) for p in header.split(","))
        expected = hmac.new(ARGS.secret.encode(), parts["t"].encode() + b"." + body,
                            hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, parts["v1"])
    except Exception:  # malformed header
        return False


def body_state(body):
    try:
        value = json.loads(body)
        return value.get("state") if isinstance(value, dict) else None
    except ValueError:
        return None


def record(path, headers, sig_ok, status, body=b""):
    STATS["requests"] += 1
    if sig_ok is True:
        STATS["valid_signatures"] += 1
    elif sig_ok is False:
        STATS["invalid_signatures"] += 1
    if LOG:
        LOG.write(json.dumps({"t": time.time(), "path": path,
                              "delivery": headers.get("x-odooops-delivery"),
                              "event": headers.get("x-odooops-event"),
                              "sig_ok": sig_ok, "status": status,
                              "auth": headers.get("authorization"),
                              "private_token": headers.get("private-token"),
                              "state": body_state(body)}) + "\n")


async def respond(writer, status, body=b"ok"):
    reason = {200: "OK", 201: "Created", 404: "Not Found", 500: "Internal Server Error"}.get(status, "Status")
    writer.write(b"HTTP/1.1 %d %s\r\nContent-Length: %d\r\nContent-Type: text/plain\r\n\r\n"
                 % (status, reason.encode(), len(body)) + body)
    await writer.drain()


async def handle(reader, writer):
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    k, v = line.split(":", 1)
                    headers[k.strip().lower()] = v.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            path = target.split("?", 1)[0]
            if method == "GET" and path == "/stats":
                await respond(writer, 200, json.dumps(STATS).encode())
                continue
            sig_ok = verify(headers.get("x-odooops-signature"), body)
            parts = path.strip("/").split("/")
            status = 200
            if parts[0] == "slow":
                await asyncio.sleep(int(parts[1]) / 1000.0)
            elif parts[0] == "status":
                status = int(parts[1])
            elif parts[0] == "timeout":
                record(path, headers, sig_ok, None)
                await asyncio.sleep(3600)
                return
            elif parts[0] == "drop":
                record(path, headers, sig_ok, None)
                writer.transport.abort()
                return
            elif parts[0] == "flaky":
                key = headers.get("x-odooops-delivery")
                FLAKY[key] = FLAKY.get(key, 0) + 1
                status = 500 if FLAKY[key] <= int(parts[1]) else 200
            elif parts[0] in ("repos", "gl", "gt", "bb"):
                status = 201  # commit statuses: created
            record(path, headers, sig_ok, status, body)
            await respond(writer, status, b"ok" if status < 300 else b"error \x00\xff body")
    except (asyncio.IncompleteReadError, ConnectionError, ValueError, asyncio.LimitOverrunError):
        pass
    finally:
        try:
            writer.close()
        except Exception:
            pass


async def flush_log():
    while True:
        await asyncio.sleep(0.2)
        if LOG:
            LOG.flush()


async def main():
    asyncio.get_running_loop().create_task(flush_log())
    server = await asyncio.start_server(handle, "127.0.0.1", ARGS.port, backlog=4096)
    port = server.sockets[0].getsockname()[1]
    if ARGS.port_file:
        with open(ARGS.port_file + ".tmp", "w") as f:
            f.write(str(port))
        os.rename(ARGS.port_file + ".tmp", ARGS.port_file)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--secret", default="")
    p.add_argument("--log")
    p.add_argument("--port-file")
    ARGS = p.parse_args()
    if ARGS.log:
        LOG = open(ARGS.log, "a", buffering=1 << 16)

    def stop(*_):
        if LOG:
            LOG.flush()
        os._exit(0)
    signal.signal(signal.SIGTERM, stop)
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
    finally:
        if LOG:
            LOG.flush()
