#!/usr/bin/env bash
# Builds odooops and runs every test: GoogleTest (pure C++), pg_regress and
# isolation specs against a temporary PostgreSQL 15 with the library
# preloaded, the multi-process tests, the long tests of tests/background/
# (in the background, each on a cluster of its own), and the end-to-end tests of the
# worker (tests/e2e/: real git, the real odooops-worker, the Odoo stand-in,
# an S3 server that verifies SigV4), and the same steps on real Odoo when an
# Odoo source tree is present (ODOO_SRC, default /opt/odoo/17.0; SKIPPED
# otherwise). Exits non-zero on any failure.
#
# Usage: tests/run_all.sh        (as root on Debian it installs what it needs)
set -euo pipefail
cd "$(dirname "$0")/.."
# PG_CONFIG selects the PostgreSQL installation (default: Debian's 15).
export PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
PG_BINDIR=$("$PG_CONFIG" --bindir)
export PATH=$PG_BINDIR:$PATH

step() { printf '\n==> %s\n' "$*"; }

# The Odoo source tree of the real-Odoo suite, if this machine has one.
ODOO_SRC=${ODOO_SRC:-/opt/odoo/17.0}
[ -f "$ODOO_SRC/odoo-bin" ] && [ -d "$ODOO_SRC/odoo/addons/base" ] || ODOO_SRC=
export ODOO_SRC

step "dependencies"
tests/harness/deps.sh
[ -z "$ODOO_SRC" ] || tests/harness/odoo_deps.sh
tests/harness/npm_deps.sh

step "formatting (clang-format)"
make -s format-check

step "build (warnings are errors)"
make -s -j2 WERROR=1 PG_CONFIG="$PG_CONFIG"
make -s install PG_CONFIG="$PG_CONFIG"

step "unit tests (GoogleTest)"
make -s unit | tee /tmp/odooops-unit.$$
passed=$(sed -n 's/.*tests passed, 0 tests failed out of \([0-9]*\).*/\1/p' /tmp/odooops-unit.$$)
rm -f /tmp/odooops-unit.$$

WORK=$(mktemp -d /tmp/odooops-test.XXXXXX)
chmod 755 "$WORK"
BACKGROUND_PIDS=()
cleanup() {
  # Background tests still running when this script fails stop (their own
  # cleanup stops their clusters).
  for pid in "${BACKGROUND_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${BACKGROUND_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  tests/harness/cluster.sh stop "$WORK/pg" || true
  if [ "${KEEP_TEST_DIR:-}" = "" ]; then rm -rf "$WORK"; else echo "kept $WORK"; fi
}
trap cleanup EXIT

step "temporary cluster"
tests/harness/cluster.sh start "$WORK/pg" >/dev/null
# shellcheck disable=SC1091
source "$WORK/pg/env"
echo "PostgreSQL on port $PGPORT, data in $WORK/pg"

step "pg_regress and isolation specs"
if ! make -s installcheck PG_CONFIG="$PG_CONFIG" | tee "$WORK/installcheck.log"; then
  [ -f regression.diffs ] && head -200 regression.diffs
  [ -f output_iso/regression.diffs ] && head -200 output_iso/regression.diffs
  exit 1
fi
while read -r n; do
  passed=$((passed + n))
done < <(sed -n 's/^ *All \([0-9]*\) tests passed.*/\1/p' "$WORK/installcheck.log")
# The suites try to crash the server (pathological inputs, hostile search
# paths); a backend that died of a signal makes the postmaster restart all
# sessions, which the suites might not notice. The log must show none.
if grep -E "terminated by signal|was terminated by exception|server process .* exited with exit code [^01]" \
     "$WORK/pg/server.log"; then
  echo "the server log shows a crashed backend" >&2
  exit 1
fi

step "pg_regress on shifted clocks and in other TimeZones"
tests/harness/shifted_clocks.sh | tee "$WORK/shifted.log"
passed=$((passed + $(sed -n 's/^\([0-9]*\) runs passed$/\1/p' "$WORK/shifted.log")))

# The long tests (tests/background/, e.g. a 10-minute control-plane outage)
# run on clusters of their own while the multi-process and end-to-end
# suites run, and are waited for at the end.
BACKGROUND_NAMES=()
for t in tests/background/*.sh; do
  [ -e "$t" ] || continue
  step "in the background: $(basename "$t") (log in $WORK/$(basename "$t" .sh).log)"
  "$t" >"$WORK/$(basename "$t" .sh).log" 2>&1 &
  BACKGROUND_PIDS+=($!)
  BACKGROUND_NAMES+=("$(basename "$t" .sh)")
done

for t in tests/multiprocess/*.sh; do
  [ -e "$t" ] || continue
  step "multi-process: $(basename "$t")"
  "$t"
  passed=$((passed + 1))
done

for t in tests/e2e/*.sh; do
  case $(basename "$t") in lib.sh | real_odoo.sh) continue ;; esac
  step "end-to-end: $(basename "$t")"
  "$t"
  passed=$((passed + 1))
done

for i in "${!BACKGROUND_PIDS[@]}"; do
  name=${BACKGROUND_NAMES[$i]}
  step "background: $name.sh (waiting for it)"
  if wait "${BACKGROUND_PIDS[$i]}"; then
    tail -n 1 "$WORK/$name.log"
    passed=$((passed + 1))
  else
    rc=$?
    cat "$WORK/$name.log"
    echo "$name.sh failed (exit $rc)" >&2
    exit 1
  fi
done
BACKGROUND_PIDS=()

# Real Odoo: an Odoo source tree at ODOO_SRC (default /opt/odoo/17.0, see the
# README); never downloaded. Without one the suite is skipped, and a skip is
# not counted as a pass.
step "end-to-end on real Odoo: real_odoo.sh"
if [ -n "$ODOO_SRC" ]; then
  ODOO_SRC=$ODOO_SRC tests/e2e/real_odoo.sh
  passed=$((passed + 1))
else
  echo "SKIPPED: no Odoo source tree (set ODOO_SRC, or put one at /opt/odoo/17.0); the real-Odoo suite did not run"
fi

step "all tests passed"
# GoogleTest cases, pg_regress and isolation suites, multi-process and
# end-to-end scripts; any failure has exited above.
echo "$passed passed, 0 failed"
