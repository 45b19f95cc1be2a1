#!/usr/bin/env bash
# Without shared_preload_libraries the extension says what to set, instead
# of PostgreSQL's "cannot create PGC_POSTMASTER variables after startup".
# Runs a throw-away cluster of its own (PRELOAD_HINT_PORT, default: a free
# port) and needs the extension installed.
set -euo pipefail
cd "$(dirname "$0")/../.."
fail() { echo "preload_hint: FAIL: $*" >&2; exit 1; }
WORK=$(mktemp -d /tmp/odooops-preload-hint.XXXXXX)
chmod 755 "$WORK"
trap 'tests/harness/cluster.sh stop "$WORK/pg" >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT
tests/harness/cluster.sh start "$WORK/pg" ${PRELOAD_HINT_PORT:+"$PRELOAD_HINT_PORT"} >/dev/null
sed -i "/^shared_preload_libraries/d" "$WORK/pg/data/postgresql.conf"
tests/harness/cluster.sh restart "$WORK/pg"
# shellcheck disable=SC1091
source "$WORK/pg/env"
[ "$(psql -X -A -t -c "SHOW shared_preload_libraries")" = "" ] || fail "the library is still preloaded"
out=$(psql -X -v VERBOSITY=verbose -c "CREATE EXTENSION odooops" 2>&1) && fail "CREATE EXTENSION succeeded without the library preloaded"
grep -q "odooops must be loaded at server start" <<<"$out" || fail "no clear error: $out"
grep -q "shared_preload_libraries = 'odooops'" <<<"$out" || fail "the hint does not name the setting: $out"
grep -q "55000" <<<"$out" || fail "not SQLSTATE 55000 (object not in prerequisite state): $out"
grep -q "PGC_POSTMASTER" <<<"$out" && fail "PostgreSQL's own message still shows: $out"
[ "$(psql -X -A -t -c "SELECT count(*) FROM pg_extension WHERE extname = 'odooops'")" = 0 ] || fail "the extension was created"
echo "preload_hint: OK: $(grep -m1 HINT <<<"$out")"
