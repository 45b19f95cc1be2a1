#!/usr/bin/env bash
# Run-queue benchmark: odooops against pgbench -N on the same throw-away
# cluster (tests/harness/cluster.sh, default settings, fsync on), in one run.
#
#   bench/queue_bench.sh     measure (about 7 minutes), then rewrite the
#                            generated part of BENCHMARKS.md (between the
#                            markers; the text around them is kept)
#
# Environment: ROUNDS (5) x ROUND_SECONDS (3) per measurement, CLIENTS
# ("1 8 16"), BATCH_CLIENTS ("1 8"), QUEUE_RUNS (runs queued for each queue
# round, 150000), PROFILE (1: afterwards profile with
# pg_stat_statements), BENCH_PORT, KEEP_BENCH_DIR (keep the cluster
# directory), OUT (BENCHMARKS.md).
#
# Measurements (pgbench -j 2):
#   baseline   pgbench -N (simple-update) after pgbench -i -s 10, in simple
#              and in prepared query mode
#   native     claim -> start -> 3 x append_event -> finish     (6 commits/run)
#   raw        the same statements as plain SQL                  (6 commits/run)
#   minimal    claim_next_run -> finish_run(failed)              (2 commits/run)
#   raw-min    the same as plain SQL                             (2 commits/run)
#   batch      claim_runs(w, 100) -> finish_runs(w, results)     (2 commits/100 runs)
#   bare       reference, not odooops: pgmq's read + archive statements on
#              a bare two-table queue, as plain SQL               (2 commits/message)
#   pgmq, pgmq-batch
#              the peer itself, measured only when PGMQ_SQL names pgmq
#              1.5's plain-SQL install script (pgmq-extension/sql/pgmq.sql
#              of its repository): read(q, 30, 1) + archive, and
#              read(q, 30, 100) + archive(ids)                    (2 commits/message, /100)
# Latency (bench/claim_latency.cpp, libpq, 1 client), after the above:
#   claim      ops.claim_next_run, one per transaction, on a queue of
#              LATENCY_QUEUED runs and no history ("empty"), and on the same
#              queue next to LATENCY_FINISHED finished runs ("full"),
#              LATENCY_CLAIMS claims per round, the two alternating
#   wake       queue_run on one connection; a second one LISTENing on
#              odooops_runs wakes and claims: notification to claim
# Each is measured in ROUNDS rounds, interleaved with the others of the same
# client count, and reported as the median round (with min-max), so that
# drift on a shared machine hits all of them alike. Every queue round runs on
# a fresh copy of a template database holding QUEUE_RUNS queued runs (rows
# and events as ops.queue_run writes them, then VACUUM ANALYZE); the copy
# (CREATE DATABASE ... STRATEGY FILE_COPY) also checkpoints. The queue
# scripts run with -M prepared, as a worker's driver would; ratios are
# against pgbench -N in the same query mode.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export PATH=/usr/lib/postgresql/15/bin:$PATH

ROUNDS=${ROUNDS:-5}
ROUND_SECONDS=${ROUND_SECONDS:-3}
CLIENTS=${CLIENTS:-1 8 16}
BATCH_CLIENTS=${BATCH_CLIENTS:-1 8}
QUEUE_RUNS=${QUEUE_RUNS:-150000}
# pgmq's batch path drains 150000 messages in under 3 s: give it more.
PGMQ_MESSAGES=${PGMQ_MESSAGES:-$((QUEUE_RUNS * 4))}
LATENCY_QUEUED=${LATENCY_QUEUED:-10000}
LATENCY_FINISHED=${LATENCY_FINISHED:-1000000}
LATENCY_CLAIMS=${LATENCY_CLAIMS:-1000}
WAKES=${WAKES:-200}
PROFILE=${PROFILE:-1}
PROFILE_SECONDS=${PROFILE_SECONDS:-5}
OUT=${OUT:-$ROOT/BENCHMARKS.md}
THREADS=2

log() { printf '%s  %s\n' "$(date +%T)" "$*" >&2; }

WORK=$(mktemp -d /tmp/odooops-bench.XXXXXX)
chmod 755 "$WORK"
cleanup() {
  tests/harness/cluster.sh stop "$WORK/pg" >/dev/null 2>&1 || true
  if [ "${KEEP_BENCH_DIR:-}" = "" ]; then rm -rf "$WORK"; else log "kept $WORK"; fi
}
trap cleanup EXIT

as_owner() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
q() { PGOPTIONS="-c client_min_messages=warning" psql -X -q -v ON_ERROR_STOP=1 "$@"; }
scalar() { local db=$1; shift; psql -X -A -t -q -v ON_ERROR_STOP=1 -d "$db" -c "$*"; }

START_LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
started=$(date +%s)
log "cluster in $WORK"
tests/harness/cluster.sh start "$WORK/pg" ${BENCH_PORT:+"$BENCH_PORT"} >/dev/null
# shellcheck disable=SC1091
source "$WORK/pg/env"

# phase clients round tps transactions runs commits_per_run dry
RESULTS=$WORK/results.tsv
: >"$RESULTS"

# Runs pgbench; prints "tps transactions". Any error fails the benchmark.
run_pgbench() {
  local name=$1; shift
  local logf="$WORK/pgbench.$name.log"
  if ! pgbench "$@" >"$logf" 2>&1 || grep -qE 'aborted|error' "$logf"; then
    cat "$logf" >&2
    log "pgbench failed in $name"
    exit 1
  fi
  local tps tx
  tps=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time)$/\1/p' "$logf")
  tx=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*$/\1/p' "$logf")
  echo "$tps $tx"
}

# Queues N runs as ops.queue_run leaves them (a queued row and its
# "queued" transition event), 10000 per statement. Not through
# ops.queue_run itself: its permission checks (about 1 ms a call on this
# machine) would make the setup take longer than the measurements, and no
# phase here measures queuing.
queue_runs() {
  local db=$1 n=$2 chunk
  while [ "$n" -gt 0 ]; do
    chunk=$(( n < 10000 ? n : 10000 ))
    scalar "$db" "WITH queued AS (
        INSERT INTO ops.runs (project_id, environment_id, workflow, git_sha, git_ref, requested_by)
        SELECT 1, 1, 'build', 'abc123', 'main', 'bench' FROM generate_series(1, $chunk)
        RETURNING id, workflow, git_sha, git_ref, requested_by)
      INSERT INTO ops.run_events (run_id, kind, level, message, to_status, actor, payload)
      SELECT q.id, 'transition', 'info', 'queued ' || q.workflow, 'queued', q.requested_by,
             jsonb_build_object('git_sha', q.git_sha, 'git_ref', q.git_ref)
        FROM queued q" >/dev/null
    n=$(( n - chunk ))
  done
}

# ---------------------------------------------------------------- setup
log "pgbench -i -s 10"
q -d postgres -c "CREATE DATABASE bench_pgbench"
pgbench -i -q -s 10 bench_pgbench >"$WORK/pgbench-init.log" 2>&1

log "template: $QUEUE_RUNS queued runs"
q -d postgres -c "CREATE DATABASE bench_queue_tpl"
t0=$(date +%s)
q -d bench_queue_tpl >/dev/null <<SQL
CREATE EXTENSION odooops;
INSERT INTO ops.projects (slug, name) VALUES ('bench', 'Bench');
INSERT INTO ops.environments (project_id, name, stage, db_name)
VALUES (1, 'dev', 'development', 'bench_dev');
-- The reference queue of bench/bare_read_archive.sql (pgmq 1.5's table shapes).
CREATE TABLE bare_queue (msg_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  read_ct integer NOT NULL DEFAULT 0, enqueued_at timestamptz NOT NULL DEFAULT now(),
  vt timestamptz NOT NULL DEFAULT now(), message jsonb);
CREATE INDEX ON bare_queue (vt);
CREATE TABLE bare_archive (msg_id bigint PRIMARY KEY, read_ct integer NOT NULL DEFAULT 0,
  enqueued_at timestamptz NOT NULL, archived_at timestamptz NOT NULL DEFAULT now(),
  vt timestamptz NOT NULL, message jsonb);
CREATE INDEX ON bare_archive (archived_at);
INSERT INTO bare_queue (message) SELECT '{"workflow": "build"}' FROM generate_series(1, $QUEUE_RUNS);
VACUUM ANALYZE;
SQL
queue_runs bench_queue_tpl "$QUEUE_RUNS"
if [ -n "${PGMQ_SQL:-}" ]; then
  log "pgmq peer from $PGMQ_SQL"
  q -d bench_queue_tpl -f "$PGMQ_SQL" >/dev/null
  q -d bench_queue_tpl >/dev/null <<SQL
SELECT pgmq.create('bench');
SELECT count(*) FROM pgmq.send_batch('bench', ARRAY(SELECT '{"workflow": "build"}'::jsonb FROM generate_series(1, $PGMQ_MESSAGES)));
VACUUM ANALYZE;
SQL
fi
QUEUE_SECONDS=$(( $(date +%s) - t0 ))
log "queued $QUEUE_RUNS runs in $QUEUE_SECONDS s"
EXTVERSION=$(scalar bench_queue_tpl "SELECT extversion FROM pg_extension WHERE extname = 'odooops'")

fresh_queue() {
  q -d postgres -c "DROP DATABASE IF EXISTS bench_queue" \
    -c "CREATE DATABASE bench_queue TEMPLATE bench_queue_tpl STRATEGY FILE_COPY"
}

# ---------------------------------------------------------------- phases
baseline() {
  local c=$1 mode=$2 round=$3 r
  log "round $round: pgbench -N -M $mode, $c clients"
  # without -n: pgbench vacuums its tables and empties history first
  r=$(run_pgbench "N-$mode-$c-$round" -N -M "$mode" -c "$c" -j "$THREADS" -T "$ROUND_SECONDS" bench_pgbench)
  printf 'N-%s\t%s\t%s\t%s\t%s\t%s\t1\t0\n' "$mode" "$c" "$round" "${r% *}" "${r#* }" "${r#* }" >>"$RESULTS"
}

queue_phase() {
  local phase=$1 script=$2 commits=$3 c=$4 round=$5 r runs left
  log "round $round: $phase, $c clients"
  fresh_queue
  r=$(run_pgbench "$phase-$c-$round" -n -M prepared -c "$c" -j "$THREADS" -T "$ROUND_SECONDS" \
        -f "bench/$script" bench_queue)
  if [ "$phase" = bare ]; then
    runs=$(scalar bench_queue "SELECT count(*) FROM bare_archive")
    left=$(scalar bench_queue "SELECT count(*) FROM bare_queue")
  elif [ "${phase#pgmq}" != "$phase" ]; then
    runs=$(scalar bench_queue "SELECT count(*) FROM pgmq.a_bench")
    left=$(scalar bench_queue "SELECT count(*) FROM pgmq.q_bench")
  else
    runs=$(scalar bench_queue "SELECT count(*) FROM ops.runs WHERE status IN ('succeeded', 'failed')")
    left=$(scalar bench_queue "SELECT count(*) FROM ops.runs WHERE status = 'queued'")
  fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$phase" "$c" "$round" "${r% *}" "${r#* }" \
    "$runs" "$commits" "$([ "$left" = 0 ] && echo 1 || echo 0)" >>"$RESULTS"
}

for c in $CLIENTS; do
  for round in $(seq 1 "$ROUNDS"); do
    baseline "$c" simple "$round"
    baseline "$c" prepared "$round"
    queue_phase native native_cycle.sql 6 "$c" "$round"
    queue_phase raw raw_cycle.sql 6 "$c" "$round"
    queue_phase minimal claim_finish.sql 2 "$c" "$round"
    queue_phase raw-min raw_claim_finish.sql 2 "$c" "$round"
    queue_phase bare bare_read_archive.sql 2 "$c" "$round"
    [ -z "${PGMQ_SQL:-}" ] || queue_phase pgmq pgmq_cycle.sql 2 "$c" "$round"
  done
done
for c in $BATCH_CLIENTS; do
  for round in $(seq 1 "$ROUNDS"); do
    queue_phase batch batch_cycle.sql 0.02 "$c" "$round"
    [ -z "${PGMQ_SQL:-}" ] || queue_phase pgmq-batch pgmq_batch.sql 0.02 "$c" "$round"
  done
done

# ---------------------------------------------------------------- latency
# kind round p50_ms p99_ms max_ms
LATENCY=$WORK/latency.tsv
: >"$LATENCY"
log "latency: building bench/claim_latency.cpp"
${CXX:-g++} -std=c++17 -O2 -Wall -Wextra -I"$(pg_config --includedir)" bench/claim_latency.cpp \
  -lpq -o "$WORK/claim_latency"
for kind in empty full; do
  log "latency: $kind queue ($LATENCY_QUEUED queued runs$([ "$kind" = full ] && echo ", $LATENCY_FINISHED finished"))"
  q -d postgres -c "CREATE DATABASE bench_lat_$kind"
  q -d "bench_lat_$kind" >/dev/null <<SQL
CREATE EXTENSION odooops;
INSERT INTO ops.projects (slug, name) VALUES ('bench', 'Bench');
INSERT INTO ops.environments (project_id, name, stage, db_name)
VALUES (1, 'dev', 'development', 'bench_dev');
SQL
  if [ "$kind" = full ]; then
    # History: finished runs as the queue leaves them, a month old.
    q -d bench_lat_full >/dev/null <<SQL
INSERT INTO ops.runs (project_id, environment_id, workflow, status, git_sha, git_ref, attempt,
                      claimed_by, claimed_at, finished_at, error, created_at, available_at, updated_at)
SELECT 1, 1, 'build', 'failed', 'abc123', 'main', 1, 'old', t, t, 'failed', t, t, t
  FROM (SELECT now() - interval '30 days' + g * interval '1 ms' AS t
          FROM generate_series(1, $LATENCY_FINISHED) g) s;
SQL
  fi
  queue_runs "bench_lat_$kind" $(( LATENCY_QUEUED + ROUNDS * LATENCY_CLAIMS ))
  q -d "bench_lat_$kind" -c "VACUUM ANALYZE" >/dev/null
done
for round in $(seq 1 "$ROUNDS"); do
  for kind in empty full; do
    log "round $round: claim latency, $kind"
    printf 'claim-%s\t%s\t%s\n' "$kind" "$round" \
      "$(PGDATABASE=bench_lat_$kind "$WORK/claim_latency" claim "$LATENCY_CLAIMS" | tr ' ' '\t')" >>"$LATENCY"
  done
done
for kind in empty full; do
  log "wake to claim, $kind, $WAKES wakes"
  printf 'wake-%s\t1\t%s\n' "$kind" \
    "$(PGDATABASE=bench_lat_$kind "$WORK/claim_latency" wake "$WAKES" | tr ' ' '\t')" >>"$LATENCY"
done
FINISHED_ROWS=$(scalar bench_lat_full "SELECT count(*) FROM ops.runs WHERE status IN ('succeeded', 'failed')")
QUEUED_ROWS=$(scalar bench_lat_full "SELECT count(*) FROM ops.runs WHERE status = 'queued'")
END_LOAD=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- profile
# After the timed phases: pg_stat_statements with track = all shows the
# statements the native functions run through SPI next to the calls
# themselves. The "generic plans" variants set plan_cache_mode for the
# session only (a diagnosis, not a setting odooops needs).
PROFILE_MD=$WORK/profile.md
: >"$PROFILE_MD"
if [ "$PROFILE" = 1 ]; then
  log "profile: restart with pg_stat_statements (track = all)"
  as_owner sh -c "cat >>'$WORK/pg/data/postgresql.conf'" <<CONF
shared_preload_libraries = 'odooops,pg_stat_statements'
pg_stat_statements.track = all
pg_stat_statements.track_planning = on
CONF
  tests/harness/cluster.sh restart "$WORK/pg"
  for p in "native|native_cycle.sql|" \
           "native, generic plans forced|native_cycle.sql|-c plan_cache_mode=force_generic_plan" \
           "raw|raw_cycle.sql|" \
           "minimal|claim_finish.sql|" \
           "minimal, generic plans forced|claim_finish.sql|-c plan_cache_mode=force_generic_plan" \
           "batch|batch_cycle.sql|"; do
    IFS='|' read -r phase script options <<<"$p"
    log "profile $phase, 1 client, $PROFILE_SECONDS s"
    fresh_queue
    q -d bench_queue -c "CREATE EXTENSION pg_stat_statements" -c "SELECT pg_stat_statements_reset()" >/dev/null
    r=$(PGOPTIONS="$options" run_pgbench "profile-$script$options" -n -M prepared -c 1 -j 1 \
          -T "$PROFILE_SECONDS" -f "bench/$script" bench_queue)
    {
      # shellcheck disable=SC2016  # backquotes are Markdown here
      printf '\n#### %s (`bench/%s`%s, 1 client, %s s: %s tx/s with pg_stat_statements loaded)\n\n' \
        "$phase" "$script" "${options:+, PGOPTIONS=\`$options\`}" "$PROFILE_SECONDS" \
        "$(printf '%.0f' "${r% *}")"
      echo '| calls | exec ms/call | plans/call | plan ms/plan | level | statement |'
      echo '|---:|---:|---:|---:|:-:|---|'
      psql -X -A -t -F $'\t' -v ON_ERROR_STOP=1 -d bench_queue -c "
        SELECT calls, round((total_exec_time / calls)::numeric, 3),
               round((plans::numeric / calls), 2),
               round((total_plan_time / nullif(plans, 0))::numeric, 3),
               CASE WHEN toplevel THEN 'call' ELSE 'SPI' END,
               left(regexp_replace(query, '\s+', ' ', 'g'), 110)
          FROM pg_stat_statements
         WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
           AND calls > 1 AND query !~* 'pg_stat_statements'
         ORDER BY total_exec_time + total_plan_time DESC LIMIT 9" |
        awk -F'\t' '{ q = $6; gsub(/\|/, "\\|", q); gsub(/`/, "", q);
                      printf "| %s | %s | %s | %s | %s | `%s` |\n", $1, $2, $3, $4, $5, q }'
    } >>"$PROFILE_MD"
  done
fi

# ---------------------------------------------------------------- report
PGVERSION=$(scalar postgres "SHOW server_version")
CPU=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
MEM=$(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)
SETTINGS=$(scalar postgres "SELECT string_agg(name || '=' || setting || coalesce(unit, ''), ', ' ORDER BY name)
  FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit', 'shared_buffers', 'max_wal_size',
                                  'wal_level', 'checkpoint_timeout', 'max_connections')")
LIBDIR=$(pg_config --pkglibdir)
LIBRARY="$LIBDIR/odooops.so (md5 $(md5sum "$LIBDIR/odooops.so" | cut -c1-12), built $(date -u -r "$LIBDIR/odooops.so" '+%Y-%m-%d %H:%M UTC'))"
COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
ELAPSED=$(( $(date +%s) - started ))

COMMAND="${PGMQ_SQL:+PGMQ_SQL=$(basename "$PGMQ_SQL") }ROUNDS=$ROUNDS ROUND_SECONDS=$ROUND_SECONDS CLIENTS='$CLIENTS' BATCH_CLIENTS='$BATCH_CLIENTS' QUEUE_RUNS=$QUEUE_RUNS bench/queue_bench.sh"
if [ -n "${PGMQ_SQL:-}" ]; then
  PEER="pgmq $(sed -n "s/^.*default_version = '\(.*\)'.*$/\1/p" "$(dirname "$PGMQ_SQL")/../pgmq.control" 2>/dev/null | head -1) from its plain-SQL install script (sha256 $(sha256sum "$PGMQ_SQL" | cut -c1-12)), in the same cluster and the same rounds, $PGMQ_MESSAGES messages per round"
else
  PEER="none (PGMQ_SQL not set): no ratio against pgmq"
fi
GENERATED=$WORK/generated.md
awk -F'\t' -v rounds="$ROUNDS" -v secs="$ROUND_SECONDS" -v nproc="$(nproc)" -v pgv="$PGVERSION" \
    -v cpu="$CPU" -v mem="$MEM" -v settings="$SETTINGS" -v date="$(date -u '+%Y-%m-%d %H:%M UTC')" \
    -v load0="$START_LOAD" -v load1="$END_LOAD" -v queue_runs="$QUEUE_RUNS" \
    -v queue_secs="$QUEUE_SECONDS" -v clients="$CLIENTS" -v batch_clients="$BATCH_CLIENTS" \
    -v library="$LIBRARY" -v extversion="$EXTVERSION" -v commit="$COMMIT" -v elapsed="$ELAPSED" \
    -v command="$COMMAND" -v peerdesc="$PEER" '
function fmt(x) { return sprintf("%.0f", x) }
function ratio(x) { return sprintf("%.2f×", x) }
# median of v[1..n]; sets LO and HI
function median(v, n,    i, j, t) {
  for (i = 2; i <= n; i++) { t = v[i]; for (j = i - 1; j >= 1 && v[j] > t; j--) v[j + 1] = v[j]; v[j + 1] = t }
  LO = v[1]; HI = v[n]
  return (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
}
# median over rounds of a measurement (b empty) or of the per-round ratio
# a/b of two measurements taken back to back in the same round
function med(a, b, c,    r, n, v) {
  n = 0
  for (r = 1; r <= rounds; r++) {
    if (!((a, c, r) in val)) continue
    if (b == "") v[++n] = val[a, c, r]
    else if (((b, c, r) in val) && val[b, c, r] > 0) v[++n] = val[a, c, r] / val[b, c, r]
  }
  if (n == 0) { LO = HI = 0; return 0 }
  return median(v, n)
}
function cell(a, c,    m) { m = med(a, "", c); return fmt(m) " (" fmt(LO) "–" fmt(HI) ")" }
function rcell(a, b, c,    m) { m = med(a, b, c); return ratio(m) " (" sprintf("%.2f", LO) "–" sprintf("%.2f", HI) ")" }
{
  # phase clients round tps transactions runs commits_per_run dry
  phase = $1; c = $2; rd = $3; tps = $4; tx = $5; runs = $6
  if (!((phase, c) in seen)) { seen[phase, c] = 1; order[++n] = phase SUBSEP c }
  # runs per second: the transaction rate times runs per transaction
  val[phase, c, rd] = (tx > 0) ? tps * runs / tx : 0
  cpr[phase] = $7
  if ($8) dry[phase, c] = 1
}
END {
  nb = split(clients, cl, " ")
  nbc = split(batch_clients, bc, " ")

  print "## Results"
  print ""
  printf "Recorded %s by `bench/queue_bench.sh` in %d s. Every measurement ran in %d rounds of %d s, interleaved with the other measurements of the same client count; a number is the median round (min–max in brackets), and a ratio is the median of the per-round ratios of two measurements taken back to back, which cancels most of the drift of a shared machine. pgbench -j 2.\n\n", date, elapsed, rounds, secs
  printf "- Machine: %s CPUs (%s), %s RAM; PostgreSQL %s. Load average %s at the start, %s at the end of the timed phases (the machine is shared with other jobs, so absolute numbers vary by ±30%% from round to round).\n", nproc, cpu, mem, pgv, load0, load1
  printf "- Cluster: `tests/harness/cluster.sh` defaults (%s).\n", settings
  printf "- Extension: odooops %s from %s; repository at %s.\n", extversion, library, commit
  printf "- Command: `%s`.\n", command
  printf "- Peer: %s.\n", peerdesc
  printf "- Queue: every queue round starts on a fresh copy of a vacuumed template holding %s queued runs (rows and events as `ops.queue_run` writes them, 10000 per statement, in %s s). Queue scripts use `-M prepared`.\n", queue_runs, queue_secs
  print ""
  print "### Baseline: pgbench -N (simple-update), scale 10"
  print ""
  print "| clients | TPS, -M simple | TPS, -M prepared |"
  print "|---:|---:|---:|"
  for (i = 1; i <= nb; i++) printf "| %s | %s | %s |\n", cl[i], cell("N-simple", cl[i]), cell("N-prepared", cl[i])
  print ""
  print "### Queue cycles"
  print ""
  print "Ratios: runs/s ÷ pgbench -N TPS with `-M prepared` (the mode of the queue scripts), per round; in the last column against `-M simple`."
  print ""
  print "| phase | clients | runs/s | commits/run | commits/s | ÷ -N TPS (prepared) | ÷ -N TPS (simple) |"
  print "|---|---:|---:|---:|---:|---:|---:|"
  for (i = 1; i <= n; i++) {
    split(order[i], key, SUBSEP); p = key[1]; c = key[2]
    if (p ~ /^N-/) continue
    note = ((p, c) in dry) ? " (queue ran dry: lower bound)" : ""
    printf "| %s | %s | %s%s | %s | %s | %s | %s |\n", p, c, cell(p, c), note, cpr[p],
      fmt(med(p, "", c) * cpr[p]), rcell(p, "N-prepared", c), ratio(med(p, "N-simple", c))
  }
  print ""
  print "### Targets"
  print ""
  print "| target | clients | measured (per-round min–max) | goal | result |"
  print "|---|---:|---:|---:|:-:|"
  for (i = 1; i <= nb; i++) {
    c = cl[i]
    if ((("native", c) in seen) && (("raw", c) in seen)) {
      x = med("native", "raw", c)
      printf "| full lifecycle (native cycle) vs the same SQL sent raw | %s | %s of raw | ≥ 1.00 | %s |\n", c, rcell("native", "raw", c), (x >= 1 ? "pass" : "**FAIL**")
    }
  }
  peer[1] = 0.48; peer[8] = 0.62; peer[16] = 0.73
  for (i = 1; i <= nb; i++) {
    c = cl[i]
    if ((("minimal", c) in seen) && (c in peer)) {
      x = med("minimal", "N-prepared", c); xs = med("minimal", "N-simple", c)
      printf "| claim+finish vs pgbench -N (peer: pgmq read+archive) | %s | %s; %s vs simple | ≥ %.2f× | %s |\n", c, rcell("minimal", "N-prepared", c), ratio(xs), peer[c], (x >= peer[c] ? "pass" : (xs >= peer[c] ? "pass vs simple only" : "**FAIL**"))
    }
  }
  for (i = 1; i <= nb; i++) {
    c = cl[i]
    if ((("minimal", c) in seen) && (("pgmq", c) in seen)) {
      x = med("minimal", "pgmq", c)
      printf "| claim+finish vs pgmq read+archive, same run | %s | %s of pgmq (pgmq: %s of -N) | ≥ 1.00 | %s |\n", c, rcell("minimal", "pgmq", c), ratio(med("pgmq", "N-prepared", c)), (x >= 1 ? "pass" : "**FAIL**")
    }
  }
  for (i = 1; i <= nbc; i++) {
    c = bc[i]
    if ((("batch", c) in seen) && (("pgmq-batch", c) in seen)) {
      x = med("batch", "pgmq-batch", c)
      printf "| batch vs pgmq read(100)+archive(ids), same run | %s | %s of pgmq (pgmq: %s of -N) | ≥ 1.00 | %s |\n", c, rcell("batch", "pgmq-batch", c), ratio(med("pgmq-batch", "N-prepared", c)), (x >= 1 ? "pass" : "**FAIL**")
    }
  }
  for (i = 1; i <= nb; i++) {
    c = cl[i]
    if ((("minimal", c) in seen) && (("bare", c) in seen))
      printf "| (reference) claim+finish vs the bare queue of `bare_read_archive.sql` | %s | %s of bare | — | — |\n", c, rcell("minimal", "bare", c)
  }
  for (i = 1; i <= nbc; i++) {
    c = bc[i]
    if (("batch", c) in seen) {
      x = med("batch", "N-prepared", c); xs = med("batch", "N-simple", c)
      printf "| batch: claim_runs(100) + finish_runs vs pgbench -N | %s | %s; %s vs simple | ≥ 10× | %s |\n", c, rcell("batch", "N-prepared", c), ratio(xs), (x >= 10 ? "pass" : (xs >= 10 ? "pass vs simple only" : "**FAIL**"))
    }
  }
}' "$RESULTS" >"$GENERATED"

awk -F'\t' -v finished="$FINISHED_ROWS" -v queued="$QUEUED_ROWS" -v claims="$LATENCY_CLAIMS" \
    -v lq="$LATENCY_QUEUED" -v wakes="$WAKES" '
function median(v, n,    i, j, t) {
  for (i = 2; i <= n; i++) { t = v[i]; for (j = i - 1; j >= 1 && v[j] > t; j--) v[j + 1] = v[j]; v[j + 1] = t }
  LO = v[1]; HI = v[n]
  return (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
}
{ p50[$1, $2] = $3; p99[$1, $2] = $4; mx[$1, $2] = $5; if ($2 > rounds) rounds = $2 }
END {
  print ""
  print "### Claim latency (bench/claim_latency.cpp, libpq, 1 client)"
  print ""
  printf "`claim`: %s claims per round, each `ops.claim_next_run` in its own transaction (the claimed run is then failed, untimed), on a queue of %s or more queued runs with no history (empty) and with %s finished runs next to them (full; %s queued at the end), alternating. `wake`: one connection queues a run, a second one LISTENing on `odooops_runs` wakes and claims it; timed from the queuing commit to the claim (%s times). Milliseconds; median round (min–max).\n\n", claims, lq, finished, queued, wakes
  print "| measurement | p50 ms | p99 ms | max ms |"
  print "|---|---:|---:|---:|"
  split("claim-empty claim-full wake-empty wake-full", kinds, " ")
  for (k = 1; k <= 4; k++) {
    n = 0; for (r = 1; r <= rounds; r++) if ((kinds[k], r) in p50) a[++n] = p50[kinds[k], r]
    if (n == 0) continue
    m50 = median(a, n); r50 = sprintf("%.2f (%.2f–%.2f)", m50, LO, HI)
    n = 0; for (r = 1; r <= rounds; r++) if ((kinds[k], r) in p99) a[++n] = p99[kinds[k], r]
    m99 = median(a, n); r99 = sprintf("%.2f (%.2f–%.2f)", m99, LO, HI)
    n = 0; for (r = 1; r <= rounds; r++) if ((kinds[k], r) in mx) a[++n] = mx[kinds[k], r]
    mm = median(a, n)
    printf "| %s | %s | %s | %.2f |\n", kinds[k], r50, r99, mm
    M50[kinds[k]] = m50
  }
  n = 0
  for (r = 1; r <= rounds; r++)
    if ((("claim-full", r) in p99) && (("claim-empty", r) in p99) && p99["claim-empty", r] > 0)
      a[++n] = p99["claim-full", r] / p99["claim-empty", r]
  print ""
  print "| target | measured | goal | result |"
  print "|---|---:|---:|:-:|"
  if (n > 0) {
    x = median(a, n)
    printf "| claim p99, full ÷ empty (per round) | %.2f× (%.2f–%.2f) | ≤ 1.20× | %s |\n", x, LO, HI, (x <= 1.2 ? "pass" : "**FAIL**")
  }
  for (k = 3; k <= 4; k++)
    if (kinds[k] in M50)
      printf "| NOTIFY wake → claim p50, %s | %.2f ms | ≤ 5 ms | %s |\n", substr(kinds[k], 6), M50[kinds[k]], (M50[kinds[k]] <= 5 ? "pass" : "**FAIL**")
}' "$LATENCY" >>"$GENERATED"

if [ -s "$PROFILE_MD" ]; then
  {
    echo
    echo "### Where the time goes (pg_stat_statements, track = all, after the timed phases)"
    echo
    echo "\`call\` rows are what pgbench sends; \`SPI\` rows are the statements the native functions run inside those calls (and the foreign-key checks). \`plans/call\` = 1.00 means the statement is planned again on every call."
    cat "$PROFILE_MD"
  } >>"$GENERATED"
fi

# Splice the generated part into BENCHMARKS.md, keeping the text around it.
BEGIN_MARK='<!-- queue_bench:begin (generated by bench/queue_bench.sh; edit outside the markers) -->'
END_MARK='<!-- queue_bench:end -->'
if [ -f "$OUT" ] && grep -qF "$BEGIN_MARK" "$OUT" && grep -qF "$END_MARK" "$OUT"; then
  awk -v b="$BEGIN_MARK" -v e="$END_MARK" -v gen="$GENERATED" '
    $0 == b { print; while ((getline line < gen) > 0) print line; skip = 1; next }
    $0 == e { skip = 0 }
    !skip { print }' "$OUT" >"$WORK/out.md"
  cp "$WORK/out.md" "$OUT"
else
  {
    echo "# Benchmarks"
    echo
    echo "Reproduce: \`bench/queue_bench.sh\` (about 8 minutes on 2 CPUs; settings in the script's header)."
    echo
    echo "$BEGIN_MARK"
    cat "$GENERATED"
    echo "$END_MARK"
  } >"$OUT"
fi
log "wrote $OUT in $ELAPSED s"
cat "$GENERATED"
