#!/usr/bin/env bash
# Events per second from a chatty step: a step prints LINES lines as fast as
# it can; the worker batches them into ops.append_events. Reported: lines/s
# over the step's duration (first to last event), for a few batch sizes.
#
#   LINES=200000 bench/worker_events.sh
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
W=${WORKER_BIN:-$ROOT/build/odooops-worker}
LINES=${LINES:-200000}
DB=odooops_bench_events
WORK=$(mktemp -d /tmp/odooops-bench-events.XXXXXX)
cleanup() { [ -n "${WPID:-}" ] && kill "$WPID" 2>/dev/null; psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true; rm -rf "$WORK"; }
trap cleanup EXIT
export PGOPTIONS="-c client_min_messages=warning"
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB" >/dev/null
psql -X -q -d "$DB" -c "CREATE EXTENSION odooops;
  INSERT INTO ops.projects (slug, name) VALUES ('bench', 'Bench');
  INSERT INTO ops.environments (project_id, name, stage, db_name) VALUES (1, 'dev', 'development', 'bench_dev');"
mkdir -p "$WORK/steps/test"
cat >"$WORK/steps/test/10-chatty" <<SH
#!/usr/bin/env python3
import sys
for i in range($LINES):
    sys.stdout.write("compiling module part %d of $LINES: ok\n" % i)
SH
chmod +x "$WORK/steps/test/10-chatty"
echo "chatty step: $LINES lines"
for batch in 200 1000; do
  "$W" --dsn "dbname=$DB" --worker-id "bench-$batch" --state-dir "$WORK/state" --steps-dir "$WORK/steps" \
    --event-batch "$batch" --poll-interval 0.2 >"$WORK/worker.log" 2>&1 &
  WPID=$!
  run=$(psql -X -A -t -q -d "$DB" -c "SELECT id FROM ops.queue_run(1, 'dev', 'abc1234', 'main', '{}', 'test')")
  for _ in $(seq 1 6000); do
    st=$(psql -X -A -t -d "$DB" -c "SELECT status FROM ops.runs WHERE id = $run")
    case $st in succeeded|failed) break ;; esac; sleep 0.1
  done
  [ "$st" = succeeded ] || { cat "$WORK/worker.log"; exit 1; }
  read -r n secs < <(psql -X -A -t -F ' ' -d "$DB" -c "SELECT count(*), extract(epoch FROM max(created_at) - min(created_at))
      FROM ops.run_events WHERE run_id = $run AND stream = 'stdout'")
  [ "$n" = "$LINES" ] || { echo "expected $LINES events, got $n"; exit 1; }
  ordered=$(psql -X -A -t -d "$DB" -c "SELECT bool_and(ok) FROM (SELECT split_part(message, ' ', 4)::int
      = row_number() OVER (ORDER BY id) - 1 AS ok FROM ops.run_events WHERE run_id = $run AND stream = 'stdout') s")
  printf 'event batch %4d: %d events in %.2f s = %.0f events/s, in order: %s\n' "$batch" "$n" "$secs" "$(echo "$n / $secs" | bc -l)" "$ordered"
  kill "$WPID"; wait "$WPID" 2>/dev/null || true; WPID=
done
