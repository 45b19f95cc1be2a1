#!/usr/bin/env bash
# Backup throughput of the worker's path against plain `pg_dump -Fc > file`.
#
#   baseline  pg_dump -Fc -d DB > file
#   worker    pg_dump -Fc -d DB | odooops-worker storage put file:///...   (what backup/10-dump runs:
#             streamed, SHA-256 computed, fsync + rename)
#   run       a whole backup run through the queue (claim, steps, dump + filestore, finish)
#   s3        the same pipe into the loopback S3 server (multipart, SigV4) -- the server is
#             a Node.js test double, so this measures it more than us; reported for reference
#
# Needs PGHOST/PGPORT/PGUSER of a server with odooops preloaded and build/odooops-worker.
#   ROWS=1500000 REPS=3 bench/worker_backup.sh
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
W=${WORKER_BIN:-$ROOT/build/odooops-worker}
ROWS=${ROWS:-1500000}
REPS=${REPS:-3}
DB=odooops_bench_backup_src
WORK=$(mktemp -d /tmp/odooops-bench-backup.XXXXXX)
chmod 755 "$WORK"
cleanup() {
  [ -n "${S3_PID:-}" ] && kill "$S3_PID" 2>/dev/null
  [ -n "${WPID:-}" ] && kill "$WPID" 2>/dev/null
  psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "DROP DATABASE IF EXISTS odooops_bench_cp WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
export PGOPTIONS="-c client_min_messages=warning"

psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB" >/dev/null
psql -X -q -d "$DB" -c "CREATE TABLE res_partner AS SELECT g AS id, 'Partner ' || g AS name,
                          md5(g::text) || '@example.com' AS email, md5((g * 3)::text) AS ref,
                          now() - (g || ' seconds')::interval AS create_date
                          FROM generate_series(1, $ROWS) g;
                        CREATE INDEX ON res_partner (email);"
size=$(psql -X -A -t -d "$DB" -c "SELECT pg_database_size('$DB')")
echo "database $DB: $(( size / 1048576 )) MiB ($ROWS rows)"

now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
base=(); pipe=()
# Alternate which goes first, so a noisy neighbour hurts both alike.
run_base() { rm -f "$WORK/plain.dump"; sync; t0=$(now); pg_dump -Fc -d "$DB" >"$WORK/plain.dump"; sync; t1=$(now); base+=("$(echo "$t1 - $t0" | bc)"); }
run_pipe() { t0=$(now); pg_dump -Fc -d "$DB" | "$W" storage put "file://$WORK/store/db.dump" >"$WORK/put.json"; sync; t1=$(now); pipe+=("$(echo "$t1 - $t0" | bc)"); }
pg_dump -Fc -d "$DB" >/dev/null   # warm the cache
for i in $(seq 1 "$REPS"); do
  if [ $((i % 2)) = 1 ]; then run_base; run_pipe; else run_pipe; run_base; fi
done
dump_bytes=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["size_bytes"])' "$WORK/put.json")
b=$(printf '%s\n' "${base[@]}" | median); p=$(printf '%s\n' "${pipe[@]}" | median)
echo "dump size: $(( dump_bytes / 1048576 )) MiB"
printf 'baseline pg_dump -Fc > file:            %6.2f s  (%s)\n' "$b" "${base[*]}"
printf 'worker pg_dump | storage put file://:   %6.2f s  (%s)\n' "$p" "${pipe[*]}"
printf 'throughput ratio worker/baseline:       %6.3f   (target >= 0.9)\n' "$(echo "$b / $p" | bc -l)"

# The whole backup run through the queue (same database, copied as an environment's).
psql -X -q -d postgres -c "CREATE DATABASE odooops_bench_cp" >/dev/null
psql -X -q -d odooops_bench_cp -c "CREATE EXTENSION odooops;
  INSERT INTO ops.projects (slug, name) VALUES ('bench', 'Bench');
  INSERT INTO ops.environments (project_id, name, stage, db_name) VALUES (1, 'production', 'production', '$DB');"
"$W" --dsn dbname=odooops_bench_cp --worker-id bench --state-dir "$WORK/state" --storage "file://$WORK/store" \
  --poll-interval 0.2 >"$WORK/worker.log" 2>&1 &
WPID=$!
run=$(psql -X -A -t -q -d odooops_bench_cp -c "SELECT id FROM ops._queue_run_trusted(1, 'production', NULL, NULL, '{}', 'backup')")
for _ in $(seq 1 6000); do
  st=$(psql -X -A -t -d odooops_bench_cp -c "SELECT status FROM ops.runs WHERE id = $run")
  case $st in succeeded|failed) break ;; esac; sleep 0.1
done
[ "$st" = succeeded ] || { cat "$WORK/worker.log"; exit 1; }
r=$(psql -X -A -t -d odooops_bench_cp -c "SELECT extract(epoch FROM finished_at - started_at) FROM ops.runs WHERE id = $run")
printf 'backup run (start_run -> finish_run):   %6.2f s  (ratio to baseline %.3f)\n' "$r" "$(echo "$b / $r" | bc -l)"
kill "$WPID"; wait "$WPID" 2>/dev/null || true; WPID=

if [ -d "$ROOT/tests/harness/node_modules/@20minutes/s3rver" ]; then
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  node "$ROOT/tests/harness/s3_server.js" "$port" "$WORK/s3" bench >"$WORK/s3.log" 2>&1 &
  S3_PID=$!
  for _ in $(seq 1 100); do grep -q listening "$WORK/s3.log" && break; sleep 0.1; done
  t0=$(now)
  pg_dump -Fc -d "$DB" | "$W" storage put s3://bench/db.dump --s3-endpoint "http://127.0.0.1:$port" \
    --s3-access-key S3RVER --s3-secret-key S3RVER >/dev/null
  t1=$(now)
  printf 'pg_dump | storage put s3:// (s3rver):  %6.2f s  (ratio %.3f; the Node test server is the bottleneck)\n' \
    "$(echo "$t1 - $t0" | bc)" "$(echo "$b / ($t1 - $t0)" | bc -l)"
fi
