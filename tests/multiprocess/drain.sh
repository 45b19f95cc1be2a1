#!/usr/bin/env bash
# Multi-process drain: 8 concurrent worker sessions (pgbench clients) drain
# 5,000 queued runs through the fenced worker API
#   claim_next_run -> start_run -> append_event x3 -> finish_run
# each call its own transaction, then SQL checks that no run was claimed
# twice, started twice, finished twice, or lost an event.
#
# Needs PGHOST/PGPORT/PGUSER for a running server with odooops preloaded
# (tests/run_all.sh exports them). Creates and drops its own database.
#
#   RUNS=5000 CLIENTS=8 tests/multiprocess/drain.sh
set -euo pipefail

DB=${DRAIN_DB:-odooops_drain}
RUNS=${RUNS:-5000}
CLIENTS=${CLIENTS:-8}
THREADS=${THREADS:-2}
# pgbench has no "stop this client" command, so every client gets a fixed
# number of transactions with headroom; a transaction that finds the queue
# empty is a no-op. Rounds repeat (bounded) until nothing is left queued.
PER_CLIENT=$(( (RUNS + CLIENTS - 1) / CLIENTS + RUNS / (CLIENTS * 10) + 20 ))
MAX_ROUNDS=5

fail() { echo "drain: FAIL: $*" >&2; exit 1; }
psql_db() { PGOPTIONS="-c client_min_messages=warning" psql -X -q -v ON_ERROR_STOP=1 -d "$1" "${@:2}"; }
scalar() { psql -X -A -t -q -v ON_ERROR_STOP=1 -d "$DB" -c "$1"; }

WORK=$(mktemp -d /tmp/odooops-drain.XXXXXX)
cleanup() {
  rm -rf "$WORK"
  if [ "${KEEP_DRAIN_DB:-}" = "" ]; then
    psql_db postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT

psql_db postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB" >/dev/null
psql_db "$DB" >/dev/null <<SQL
CREATE EXTENSION odooops;
INSERT INTO ops.projects (slug, name) VALUES ('drain', 'Drain');
INSERT INTO ops.environments (project_id, name, stage, db_name)
VALUES (1, 'dev', 'development', 'drain_dev');
SELECT count(*) FROM (SELECT ops.queue_run(1, 'dev', 'abc123', 'main', '{}', 'build')
                        FROM generate_series(1, $RUNS)) q;
SQL
queued=$(scalar "SELECT count(*) FROM ops.runs WHERE status = 'queued'")
[ "$queued" = "$RUNS" ] || fail "expected $RUNS queued runs, found $queued"

# One worker step. The LEFT JOIN turns "nothing to claim" into rid = 0, so
# \gset always gets one row. Every statement is its own transaction.
cat >"$WORK/worker.sql" <<'PGBENCH'
SELECT coalesce(c.id, 0) AS rid, coalesce(c.attempt, 0) AS att
  FROM (VALUES (1)) AS one(x)
  LEFT JOIN ops.claim_next_run('w' || :client_id) AS c ON true \gset
\if :rid > 0
SELECT status AS st FROM ops.start_run(:rid, 'w' || :client_id, :att) \gset
SELECT ops.append_event(:rid, 'info', 'step 1', '{"n": 1}', 'w' || :client_id, :att);
SELECT ops.append_event(:rid, 'info', 'step 2', '{"n": 2}', 'w' || :client_id, :att);
SELECT ops.append_event(:rid, 'info', 'step 3', '{"n": 3}', 'w' || :client_id, :att);
SELECT status AS st FROM ops.finish_run(:rid, 'succeeded', '{}', 'w' || :client_id, :att) \gset
\endif
PGBENCH

echo "drain: $RUNS runs, $CLIENTS workers, up to $PER_CLIENT steps each per round"
start_ms=$(( $(date +%s%N) / 1000000 ))
round=0
while :; do
  round=$((round + 1))
  if ! pgbench -n -c "$CLIENTS" -j "$THREADS" -t "$PER_CLIENT" \
       -f "$WORK/worker.sql" "$DB" >"$WORK/pgbench.$round.log" 2>&1; then
    cat "$WORK/pgbench.$round.log" >&2
    fail "pgbench round $round failed"
  fi
  if grep -qiE 'error|aborted' "$WORK/pgbench.$round.log"; then
    grep -iE 'error|aborted' "$WORK/pgbench.$round.log" | head -20 >&2
    fail "a worker hit an error in round $round"
  fi
  left=$(scalar "SELECT count(*) FROM ops.runs WHERE status IN ('queued', 'claimed', 'running')")
  [ "$left" = 0 ] && break
  [ "$round" -lt "$MAX_ROUNDS" ] || fail "$left runs still unfinished after $round rounds"
done
elapsed_ms=$(( $(date +%s%N) / 1000000 - start_ms ))

# Every check yields (name, bad count, detail); all are reported, then any
# non-zero bad count fails the test.
psql -X -A -t -F '|' -q -v ON_ERROR_STOP=1 -d "$DB" >"$WORK/checks" <<SQL
WITH ev AS (
  SELECT run_id, attempt, kind, to_status, actor FROM ops.run_events
), per_run AS (
  -- queue_run writes the 'queued' transition (attempt 0, actor = the
  -- queuing user); every later event belongs to a worker's attempt.
  SELECT r.id, r.status, r.attempt, r.claimed_by,
         count(*) FILTER (WHERE e.kind = 'transition' AND e.to_status = 'queued')    AS queued,
         count(*) FILTER (WHERE e.kind = 'transition' AND e.to_status = 'claimed')   AS claimed,
         count(*) FILTER (WHERE e.kind = 'transition' AND e.to_status = 'running')   AS started,
         count(*) FILTER (WHERE e.kind = 'transition' AND e.to_status = 'succeeded') AS succeeded,
         count(*) FILTER (WHERE e.kind = 'transition'
                            AND e.to_status NOT IN ('queued', 'claimed', 'running', 'succeeded')) AS other,
         count(*) FILTER (WHERE e.kind = 'log') AS logs,
         count(DISTINCT e.actor) FILTER (WHERE e.to_status IS DISTINCT FROM 'queued') AS actors,
         coalesce(bool_and(e.actor = r.claimed_by)
                    FILTER (WHERE e.to_status IS DISTINCT FROM 'queued'), false) AS same_actor
    FROM ops.runs r LEFT JOIN ev e ON e.run_id = r.id
   GROUP BY r.id
)
SELECT 'runs total',              abs(count(*) - $RUNS), count(*)::text FROM per_run
UNION ALL
SELECT 'runs not succeeded',      count(*) FILTER (WHERE status <> 'succeeded'), '' FROM per_run
UNION ALL
SELECT 'runs with attempt <> 1',  count(*) FILTER (WHERE attempt <> 1), '' FROM per_run
UNION ALL
SELECT 'runs queued <> once',     count(*) FILTER (WHERE queued <> 1), '' FROM per_run
UNION ALL
SELECT 'runs claimed <> once',    count(*) FILTER (WHERE claimed <> 1), '' FROM per_run
UNION ALL
SELECT 'runs started <> once',    count(*) FILTER (WHERE started <> 1), '' FROM per_run
UNION ALL
SELECT 'runs finished <> once',   count(*) FILTER (WHERE succeeded <> 1), '' FROM per_run
UNION ALL
SELECT 'runs with other transitions', count(*) FILTER (WHERE other <> 0), '' FROM per_run
UNION ALL
SELECT 'runs with log events <> 3', count(*) FILTER (WHERE logs <> 3), '' FROM per_run
UNION ALL
SELECT 'runs touched by two workers', count(*) FILTER (WHERE actors <> 1 OR NOT same_actor), '' FROM per_run
UNION ALL
SELECT '(run, attempt) started <> once', count(*), '' FROM (
  SELECT r.id, a.attempt
    FROM ops.runs r CROSS JOIN LATERAL generate_series(1, r.attempt) AS a(attempt)
    LEFT JOIN ev e ON e.run_id = r.id AND e.attempt = a.attempt
                  AND e.kind = 'transition' AND e.to_status = 'running'
   GROUP BY r.id, a.attempt HAVING count(e.run_id) <> 1) x
UNION ALL
SELECT 'worker events outside a handed-out attempt', count(*), '' FROM ev e
  JOIN ops.runs r ON r.id = e.run_id
 WHERE e.to_status IS DISTINCT FROM 'queued' AND e.attempt NOT BETWEEN 1 AND r.attempt
UNION ALL
SELECT 'workers that claimed', 0, count(DISTINCT claimed_by)::text FROM ops.runs
UNION ALL
SELECT 'events total', 0, count(*)::text FROM ev;
SQL

bad=0
while IFS='|' read -r name count detail; do
  if [ "$count" != 0 ]; then
    echo "drain: FAIL: $name: $count" >&2
    bad=1
  fi
  case $name in
    'runs total') total=$detail ;;
    'workers that claimed') workers=$detail ;;
    'events total') events=$detail ;;
  esac
done <"$WORK/checks"
[ "$bad" = 0 ] || { cat "$WORK/checks" >&2; fail "invariants violated (see above)"; }

rate=$(( total * 1000 / (elapsed_ms > 0 ? elapsed_ms : 1) ))
printf 'drain: OK: %s runs succeeded by %s workers in %d.%01d s (%s runs/s, %s pgbench round(s)); %s events: 1 queued, 1 claimed, 1 started, 3 log, 1 succeeded per run; attempt 1 for all\n' \
  "$total" "$workers" $((elapsed_ms / 1000)) $((elapsed_ms % 1000 / 100)) "$rate" "$round" "$events"
