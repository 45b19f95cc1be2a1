#!/usr/bin/env bash
# Installs the Debian packages odooops needs to build and test, when missing;
# with arguments, those packages instead (tests/harness/odoo_deps.sh).
set -euo pipefail
PACKAGES=(postgresql-15 postgresql-server-dev-15 postgresql-client-15 libpq-dev
          libcurl4-openssl-dev libssl-dev nlohmann-json3-dev libgtest-dev cmake g++ make clang-format
          zstd faketime logrotate systemd shellcheck python3 python3-pip python3-setuptools python3-wheel caddy pebble prometheus-postgres-exporter python3-aiosmtpd
          debhelper dpkg-dev postgresql-server-dev-all)
[ $# -eq 0 ] || PACKAGES=("$@")
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "missing packages: ${missing[*]} (run as root, or apt-get install them)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
