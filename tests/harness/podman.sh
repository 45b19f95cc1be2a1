#!/usr/bin/env bash
# Podman as the container engine for the docker-runtime test: no Docker
# daemon runs on our machines, but podman serves the Docker Engine API.
#
#   tests/harness/podman.sh setup            install podman/runc/debootstrap when missing (root),
#                                            build the cached base image and the stand-in image
#   tests/harness/podman.sh start DIR        serve the Docker API on DIR/podman.sock; prints DOCKER_HOST=...
#   tests/harness/podman.sh stop DIR         stop that service
#   tests/harness/podman.sh podman ARGS...   podman with the test storage
#
# No registry is reachable, so the base image is a Debian minbase made with
# debootstrap (about 1 min, once; cached in $ODOOOPS_TEST_CACHE, default
# /var/cache/odooops-test), and the "Odoo image" of the test is that base plus
# tests/harness/odoo_standin.py as `odoo` -- a stand-in, not Odoo.
set -euo pipefail
HARNESS=$(cd "$(dirname "$0")" && pwd)
CACHE=${ODOOOPS_TEST_CACHE:-/var/cache/odooops-test}
BASE_IMAGE=localhost/odooops-test-base:bookworm
STANDIN_IMAGE=localhost/odoo-standin:17
export CONTAINERS_CONF=$CACHE/containers.conf

pm() { podman --root "$CACHE/podman/root" --runroot "/run/odooops-test-podman" --cgroup-manager cgroupfs "$@"; }

setup() {
  local missing=()
  for p in podman runc debootstrap; do command -v "$p" >/dev/null || [ -x "/usr/sbin/$p" ] || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    [ "$(id -u)" = 0 ] || { echo "missing: ${missing[*]} (run as root or apt-get install podman runc debootstrap)" >&2; exit 1; }
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends podman runc debootstrap uidmap >/dev/null
  fi
  mkdir -p "$CACHE/podman"
  cat >"$CONTAINERS_CONF" <<'CONF'
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
[engine]
runtime = "runc"
CONF
  if ! pm image exists "$BASE_IMAGE"; then
    if [ ! -x "$CACHE/rootfs/usr/bin/python3" ]; then
      echo "debootstrap of the test base image (once, about a minute)"
      rm -rf "$CACHE/rootfs.tmp"
      debootstrap --variant=minbase --include=python3,postgresql-client-15,curl bookworm "$CACHE/rootfs.tmp" >"$CACHE/debootstrap.log" 2>&1 \
        || { tail -20 "$CACHE/debootstrap.log" >&2; exit 1; }
      mv "$CACHE/rootfs.tmp" "$CACHE/rootfs"
    fi
    tar -C "$CACHE/rootfs" -c . | pm import - "$BASE_IMAGE" >/dev/null
  fi
  local sum; sum=$(sha256sum "$HARNESS/odoo_standin.py" | cut -c1-16)
  if [ "$(pm image inspect --format '{{ index .Labels "standin" }}' "$STANDIN_IMAGE" 2>/dev/null || true)" != "$sum" ]; then
    local ctx; ctx=$(mktemp -d)
    cp "$HARNESS/odoo_standin.py" "$ctx/odoo"
    printf 'FROM %s\nCOPY odoo /usr/local/bin/odoo\nRUN chmod 755 /usr/local/bin/odoo && mkdir -p /mnt/extra-addons /var/lib/odoo\nLABEL standin=%s\n' \
      "$BASE_IMAGE" "$sum" >"$ctx/Dockerfile"
    pm build -q -t "$STANDIN_IMAGE" "$ctx" >/dev/null
    rm -rf "$ctx"
  fi
  echo "images ready: $BASE_IMAGE, $STANDIN_IMAGE (Odoo stand-in, not Odoo)"
}

start() {
  local dir=$1
  mkdir -p "$dir"
  pm system service --time=0 "unix://$dir/podman.sock" >"$dir/podman-service.log" 2>&1 &
  echo $! >"$dir/podman-service.pid"
  for _ in $(seq 1 100); do [ -S "$dir/podman.sock" ] && break; sleep 0.1; done
  [ -S "$dir/podman.sock" ] || { cat "$dir/podman-service.log" >&2; exit 1; }
  echo "DOCKER_HOST=unix://$dir/podman.sock"
}

stop() {
  local dir=$1
  [ -f "$dir/podman-service.pid" ] && kill "$(cat "$dir/podman-service.pid")" 2>/dev/null || true
}

cmd=${1:?usage: podman.sh setup|start DIR|stop DIR|podman ARGS}
shift
case $cmd in
  setup) setup ;;
  start) start "$@" ;;
  stop) stop "$@" ;;
  podman) pm "$@" ;;
  *) echo "unknown command $cmd" >&2; exit 2 ;;
esac
