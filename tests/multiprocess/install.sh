#!/usr/bin/env bash
# What `make install` puts on a server, used from where it was installed:
# the worker, its steps and libraries, the odooops command, the systemd
# unit (checked with systemd-analyze verify), the example configuration (it
# loads) and the log rotation rules (logrotate parses them); then a deploy
# runs through the installed worker, which finds the installed steps by
# itself (tests/e2e/deploy.sh with E2E_INSTALLED=1).
#
# Installs into a staging directory (DESTDIR), never into the system; needs
# the worker built in build/ (make install or make unit) and PGHOST/PGPORT/
# PGUSER of a server with odooops preloaded (tests/run_all.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
fail() { echo "install: FAIL: $*" >&2; exit 1; }
say() { echo "[install] $*"; }
WORK=$(mktemp -d /tmp/odooops-install.XXXXXX)
chmod 755 "$WORK"
trap 'rm -rf "$WORK"' EXIT
prefix=/usr/local
make -s install-worker DESTDIR="$WORK/root" WORKER_PREFIX=$prefix >/dev/null
root=$WORK/root$prefix
for f in bin/odooops-worker bin/odooops share/odooops/steps/deploy/40-start share/odooops/steps/lib/common.sh \
         libexec/odooops/runs.sh libexec/odooops/post_receive.sh lib/systemd/system/odooops-worker@.service share/doc/odooops/worker.conf.example \
         etc/logrotate.d/odooops-worker; do
  [ -e "$root/$f" ] || fail "$prefix/$f was not installed"
done
[ ! -e "$root/libexec/odooops/demo.sh" ] || fail "the demo was installed"

# The worker finds the installed steps and says what it resolved.
version=$(sed -n "s/^default_version = '\(.*\)'/\1/p" control/odooops.control)
[ "$("$root/bin/odooops-worker" --version)" = "odooops-worker $version" ] || fail "worker --version"
[ "$("$root/bin/odooops" --version)" = "odooops $version" ] || fail "odooops --version"
[ "$("$root/bin/odooops" runs --version)" = "runs.sh $version" ] || fail "odooops runs --version"
printed=$("$root/bin/odooops-worker" --odoo-user worker --print-config)
grep -qx "steps-dir = \"$root/share/odooops/steps\"" <<<"$printed" || fail "the installed worker does not use the installed steps: $(grep steps-dir <<<"$printed")"
"$root/bin/odooops" runs --help >/dev/null || fail "odooops runs --help"
help=$("$root/bin/odooops" post-receive --help) || fail "odooops post-receive --help"
grep -q "^Usage: post_receive.sh" <<<"$help" || fail "odooops post-receive --help: $help"
code=0; "$root/bin/odooops" no-such-command 2>/dev/null || code=$?
[ "$code" = 64 ] || fail "an unknown command exits $code, not 64"
say "worker and odooops $version in $prefix/bin; the worker uses $prefix/share/odooops/steps"

# The example configuration loads (its Odoo tree replaced by a skeleton).
cp "$root/share/doc/odooops/worker.conf.example" "$WORK/worker.conf"
mkdir -p "$WORK/odoo/odoo/addons/base" "$WORK/odoo/addons/web" && touch "$WORK/odoo/odoo-bin"
sed -i "s|^odoo-src = .*|odoo-src = \"$WORK/odoo\"|" "$WORK/worker.conf"
printed=$("$root/bin/odooops-worker" --config "$WORK/worker.conf" --odoo-user worker --print-config) ||
  fail "the example configuration does not load"
grep -qx 'dsn = "service=odooops"' <<<"$printed" || fail "the example's dsn was not read"

# The unit, as systemd reads an instance of it, with no complaint.
unit=$WORK/units/odooops-worker@ci.service
mkdir -p "$WORK/units"
sed "s|$prefix/bin|$root/bin|g" "$root/lib/systemd/system/odooops-worker@.service" >"$unit"
grep -q "^ExecStart=$root/bin/odooops-worker " "$unit" || fail "the unit does not start the installed worker"
out=$(systemd-analyze verify "$unit" 2>&1) || fail "systemd-analyze verify: $out"
[ -z "$out" ] || fail "systemd-analyze verify complains: $out"
# Log rotation rules parse (debug mode changes nothing).
logrotate -d "$root/etc/logrotate.d/odooops-worker" >"$WORK/logrotate.out" 2>&1 || fail "logrotate: $(cat "$WORK/logrotate.out")"
grep -qi "error" "$WORK/logrotate.out" && fail "logrotate: $(grep -i error "$WORK/logrotate.out")"
say "the systemd unit verifies, the example configuration loads, the log rotation rules parse"

# A deploy through the installed worker and the installed steps.
E2E_INSTALLED=1 WORKER_BIN=$root/bin/odooops-worker bash tests/e2e/deploy.sh | sed 's/^/  /'
say "PASS"
