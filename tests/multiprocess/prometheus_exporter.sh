#!/usr/bin/env bash
# A real scrape: prometheus-postgres-exporter with
# monitoring/postgres-exporter-queries.yaml, connected as a login granted
# odooops_monitor, serves the odooops metrics. Queuing and finishing runs
# moves the queue gauges and the run counters; every counter only grows
# from one scrape to the next; a series whose value is 0 is still there;
# an environment's database size and its worker-reported filestore size and
# disk appear.
#
# Needs PGHOST/PGPORT/PGUSER of a server with odooops preloaded, and
# prometheus-postgres-exporter (tests/harness/deps.sh). EXPORTER_PORT: its
# port (default: a free one).
set -euo pipefail
cd "$(dirname "$0")/../.."
DB=odooops_prom
MONITOR=odooops_prom_scraper
fail() { echo "prometheus_exporter: FAIL: $*" >&2; exit 1; }
sql() { psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$DB" "$@"; }
WORK=$(mktemp -d /tmp/odooops-prom.XXXXXX)
exporter=
cleanup() {
  if [ -n "$exporter" ]; then kill "$exporter" 2>/dev/null; wait "$exporter" 2>/dev/null || true; fi
  PGOPTIONS="-c client_min_messages=warning" psql -X -q -d postgres \
    -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "DROP DATABASE IF EXISTS prom_dev WITH (FORCE)" \
    -c "DROP ROLE IF EXISTS $MONITOR" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
PGOPTIONS="-c client_min_messages=warning" psql -X -q -d postgres \
  -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "DROP DATABASE IF EXISTS prom_dev WITH (FORCE)" \
  -c "DROP ROLE IF EXISTS $MONITOR" -c "CREATE DATABASE $DB" -c "CREATE DATABASE prom_dev"
sql <<SQL
CREATE EXTENSION odooops;
CREATE ROLE $MONITOR LOGIN IN ROLE odooops_monitor;
INSERT INTO ops.projects (slug, name) VALUES ('prom', 'Prom');
INSERT INTO ops.environments (project_id, name, stage, db_name) VALUES (1, 'dev', 'development', 'prom_dev');
SQL

port=${EXPORTER_PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
host=${PGHOST:-/var/run/postgresql}
DATA_SOURCE_NAME="host=$host port=${PGPORT:-5432} user=$MONITOR dbname=$DB sslmode=disable" \
  prometheus-postgres-exporter --web.listen-address="127.0.0.1:$port" \
    --extend.query-path=monitoring/postgres-exporter-queries.yaml \
    --disable-default-metrics --disable-settings-metrics >"$WORK/exporter.log" 2>&1 &
exporter=$!

n=0
scrape() {
  n=$((n + 1))
  # The exporter labels every sample with the server it scraped: left out here.
  curl -sf "http://127.0.0.1:$port/metrics" | grep '^odooops_' |
    sed -E 's/,?server="[^"]*"//; s/\{,/{/; s/\{\}//' | sort >"$WORK/scrape.$n" ||
    { cat "$WORK/exporter.log" >&2; fail "scrape $n failed"; }
}
# value METRIC{LABELS}: the sample's value in the last scrape (labels sorted
# as the exporter prints them), empty when the series is absent.
value() { awk -v s="$1" '$1 == s { print $2 }' "$WORK/scrape.$n"; }
expect() {
  local got
  got=$(value "$1")
  [ "$got" = "$2" ] || { grep -F "${1%%\{*}" "$WORK/scrape.$n" >&2 || true; fail "scrape $n: $1 is '${got}', expected $2"; }
}
# Every *_total series of scrape N-1 is in scrape N with a value not lower.
counters_only_grow() {
  awk 'NR == FNR { if ($1 ~ /_total\{/) before[$1] = $2; next }
       { after[$1] = $2 }
       END { for (s in before) {
               if (!(s in after)) { print "gone: " s; bad = 1 }
               else if (after[s] + 0 < before[s] + 0) { print "down: " s " " before[s] " -> " after[s]; bad = 1 } }
             exit bad }' "$WORK/scrape.$((n - 1))" "$WORK/scrape.$n" >&2 ||
    fail "a counter went down or disappeared between scrapes $((n - 1)) and $n"
}

for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$port/metrics" >/dev/null 2>&1 && break
  kill -0 "$exporter" 2>/dev/null || { cat "$WORK/exporter.log" >&2; fail "the exporter exited"; }
  sleep 0.1
done
scrape
expect 'odooops_runs_total{outcome="queued",workflow="build"}' 0
expect 'odooops_runs_total{outcome="failed",workflow="destroy"}' 0
expect 'odooops_queue_runs{state="queued",workflow="build"}' 0
expect 'odooops_webhook_deliveries_total{outcome="dead"}' 0
expect 'odooops_alerts_opened_total{kind="worker_lost"}' 0
expect 'odooops_backups_backups{environment="dev",project="prom",stage="development",status="completed"}' 0
expect 'odooops_backup_has_success{environment="dev",project="prom",stage="development"}' 0
expect 'odooops_environment_database_measured{environment="dev",project="prom",stage="development"}' 1
expect 'odooops_environment_filestore_reported{environment="dev",project="prom",stage="development"}' 0
db_bytes=$(value 'odooops_environment_database_bytes{environment="dev",project="prom",stage="development"}')
[ "$(sql -c "SELECT pg_database_size('prom_dev')")" = "$(printf '%.0f' "$db_bytes")" ] ||
  fail "database size $db_bytes is not pg_database_size('prom_dev')"

# Three builds queued: the queue holds them, the counter counts them.
sql -c "SELECT ops.queue_run(1, 'dev', 'abcd0' || i, 'main', '{}', 'build') FROM generate_series(1, 3) i" >/dev/null
scrape
counters_only_grow
expect 'odooops_queue_runs{state="queued",workflow="build"}' 3
expect 'odooops_runs_total{outcome="queued",workflow="build"}' 3
age=$(value 'odooops_queue_oldest_seconds{state="queued",workflow="build"}')
awk -v a="$age" 'BEGIN { exit !(a > 0) }' || fail "the oldest queued build's age is $age, expected > 0"

# A worker claims two and finishes one of each outcome; the third is cancelled.
sql <<'SQL' >/dev/null
SELECT ops.register_agent('prom-w1');
SELECT ops.claim_runs('prom-w1', 2, 300, ARRAY['build']);
SELECT ops.start_run(id, 'prom-w1', attempt) FROM ops.runs WHERE status = 'claimed' ORDER BY id LIMIT 1;
SQL
scrape
counters_only_grow
expect 'odooops_queue_runs{state="queued",workflow="build"}' 1
expect 'odooops_queue_runs{state="claimed",workflow="build"}' 1
expect 'odooops_queue_runs{state="running",workflow="build"}' 1
expect 'odooops_agent_runs_held{status="active",worker_id="prom-w1"}' 2
sql <<'SQL' >/dev/null
SELECT ops.start_run(id, 'prom-w1', attempt) FROM ops.runs WHERE status = 'claimed';
SELECT ops.finish_run(id, 'succeeded', '{}', 'prom-w1', attempt) FROM ops.runs WHERE id = 1;
SELECT ops.finish_run(id, 'failed', '{}', 'prom-w1', attempt) FROM ops.runs WHERE id = 2;
SELECT ops.cancel_run(3, 'not needed');
SQL
scrape
counters_only_grow
expect 'odooops_queue_runs{state="queued",workflow="build"}' 0
expect 'odooops_queue_runs{state="running",workflow="build"}' 0
expect 'odooops_runs_total{outcome="queued",workflow="build"}' 3
expect 'odooops_runs_total{outcome="succeeded",workflow="build"}' 1
expect 'odooops_runs_total{outcome="failed",workflow="build"}' 1
expect 'odooops_runs_total{outcome="cancelled",workflow="build"}' 1
expect 'odooops_runs_total{outcome="succeeded",workflow="deploy"}' 0

# The worker hosting the environment reports its filestore and its disk.
sql <<'SQL' >/dev/null
UPDATE ops.environments SET host_worker_id = 'prom-w1' WHERE name = 'dev';
SELECT ops.report_agent_usage('prom-w1', '/var/lib/odooops-worker', 1000000, 250000,
                              '{"prom/dev": 4096, "prom/elsewhere": 1}');
SQL
scrape
counters_only_grow
expect 'odooops_environment_filestore_bytes{environment="dev",project="prom",stage="development"}' 4096
expect 'odooops_environment_filestore_reported{environment="dev",project="prom",stage="development"}' 1
expect 'odooops_agent_disk_free_bytes{path="/var/lib/odooops-worker",worker_id="prom-w1"}' 250000
expect 'odooops_agent_disk_total_bytes{path="/var/lib/odooops-worker",worker_id="prom-w1"}' 1e+06

# An alert opens and resolves: the gauge goes back to 0, the counter stays.
sql -c "INSERT INTO ops.alerts (kind, dedup_key, severity, message) VALUES ('worker_lost', 'prom-w9', 'warning', 'gone')" >/dev/null
scrape
counters_only_grow
expect 'odooops_alerts_opened_total{kind="worker_lost"}' 1
expect 'odooops_alerts_open{kind="worker_lost"}' 1
sql -c "UPDATE ops.alerts SET status = 'resolved', resolved_at = now() WHERE dedup_key = 'prom-w9'" >/dev/null
scrape
counters_only_grow
expect 'odooops_alerts_opened_total{kind="worker_lost"}' 1
expect 'odooops_alerts_open{kind="worker_lost"}' 0

# The scraper's login reads the metrics and nothing else.
if psql -X -q -d "$DB" -U "$MONITOR" -c "SELECT count(*) FROM ops.runs" >/dev/null 2>&1; then
  fail "the odooops_monitor login can read ops.runs"
fi
echo "prometheus_exporter: OK: a real scrape shows the queue move, counters grow, zero series stay"
