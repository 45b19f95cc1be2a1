#!/usr/bin/env bash
# NOTIFY odooops_runs: a listener sees exactly one notification per
# transaction that made runs claimable (however many runs it queued), and
# none for transactions that made nothing claimable.
#
# Needs PGHOST/PGPORT/PGUSER of a server with odooops preloaded.
set -euo pipefail
DB=odooops_notify
fail() { echo "notify: FAIL: $*" >&2; exit 1; }
sql() { psql -X -q -v ON_ERROR_STOP=1 -d "$DB" "$@"; }

PGOPTIONS="-c client_min_messages=warning" psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
trap 'psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true' EXIT
sql <<'SQL'
CREATE EXTENSION odooops;
INSERT INTO ops.projects (slug, name) VALUES ('n', 'Notify');
INSERT INTO ops.environments (project_id, name, stage, db_name) VALUES (1, 'dev', 'development', 'n_dev');
SQL

# Counts the notifications a listener receives while `$1` (SQL) runs.
notifications_during() {
  local out
  out=$(mktemp)
  { echo "LISTEN odooops_runs;"; sleep 1.5; echo "SELECT 1;"; } | psql -X -d "$DB" >"$out" 2>&1 &
  local listener=$!
  sleep 0.5
  sql -c "$1" >/dev/null
  wait "$listener"
  grep -c 'Asynchronous notification "odooops_runs"' "$out" || true
  rm -f "$out"
}

n=$(notifications_during "BEGIN; SELECT ops.queue_run(1, 'dev', 'abcd01', 'main', '{}', 'build') FROM generate_series(1, 50); COMMIT;")
[ "$n" = 1 ] || fail "50 runs queued in one transaction gave $n notifications, expected 1"

n=$(notifications_during "SELECT ops.queue_run(1, 'dev', 'abcd02', 'main', '{}', 'build')")
[ "$n" = 1 ] || fail "one queued run gave $n notifications, expected 1"

n=$(notifications_during "BEGIN; SELECT ops.claim_runs('w1', 10); SELECT ops.append_event(id, 'info', 'x') FROM ops.runs WHERE status = 'claimed'; COMMIT;")
[ "$n" = 0 ] || fail "claims and events gave $n notifications, expected 0"

n=$(notifications_during "SELECT ops.release_run(id, 'w1', 1) FROM ops.runs WHERE status = 'claimed'")
[ "$n" = 1 ] || fail "releasing 10 runs in one statement gave $n notifications, expected 1"

n=$(notifications_during "BEGIN; SELECT ops.queue_run(1, 'dev', 'abcd03', 'main', '{}', 'build'); ROLLBACK;")
[ "$n" = 0 ] || fail "a rolled-back queue_run gave $n notifications, expected 0"

echo "notify: OK: one notification per claimable-making transaction, none otherwise"
