#!/usr/bin/env bash
# Webhook dispatcher throughput and memory: deliveries per second to a
# loopback receiver (tests/harness/webhook_receiver.py, asyncio) answering
# after 0 ms and 50 ms, and the dispatcher's RSS sampled every second.
#
# For each case LATENCY:CONCURRENCY[@NOFILE] it writes N signed JSON
# deliveries in one transaction (the commit wakes the dispatcher), times
# until all are delivered, and samples /proc/<dispatcher>/status VmRSS.
# @NOFILE starts the server under `ulimit -n NOFILE` to show the
# concurrency cap below the open-file limit.
#
# Then, in PARTS (default "cases rounds compare outage hang"):
#   compare  the dispatcher and pg_net in the same run, against the same
#            receiver answering after 50 ms: CMP_N requests each, pg_net at
#            each pg_net.batch_size of PGNET_BATCHES; prints the ratio of the
#            dispatcher's rate to pg_net's best. The dispatcher runs at each
#            CONCURRENCY:HOST_CONCURRENCY of CMP_ODOOOPS (the first: its
#            defaults). pg_net is built from the source directory PG_NET_SRC
#            and installed into $PG_CONFIG's directories (run it where that
#            is allowed); without it, or when that fails, it says so and
#            prints no ratio.
#   outage   the dispatcher's memory (RssAnon, every 0.5 s) over OUTAGE_N
#            deliveries while the receiver is down for OUTAGE_S seconds.
#   hang     one receiver never answers while deliveries to healthy ones
#            (50 ms) arrive steadily: p99 of their time from commit to answer.
#
#   N=100000 CASES="0:256 50:256 50:5000@1024" PG_NET_SRC=~/src/pg_net bench/webhook_bench.sh [out.md]
# Needs a built and installed odooops (PG_CONFIG honoured, as tests/run_all.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
export PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
PG_BINDIR=$("$PG_CONFIG" --bindir)
export PATH=$PG_BINDIR:$PATH
N=${N:-100000}
CASES=${CASES:-"0:256 50:256 50:512 50:5000@1024"}
OUT=${1:-/dev/stdout}   # the "Webhook dispatcher" section of BENCHMARKS.md
PORT=${BENCH_PORT:-55580}
PARTS=${PARTS:-"cases rounds compare outage hang"}
CMP_N=${CMP_N:-20000}
PGNET_BATCHES=${PGNET_BATCHES:-"200 500 1000 2000 5000 10000"}
CMP_ODOOOPS=${CMP_ODOOOPS:-"256:128 1024:1024"}
OUTAGE_N=${OUTAGE_N:-100000}
OUTAGE_S=${OUTAGE_S:-15}
HANG_S=${HANG_S:-20}
part() { case " $PARTS " in *" $1 "*) return 0 ;; esac; return 1; }

WORK=$(mktemp -d /tmp/odooops-bench-webhooks.XXXXXX)
chmod 755 "$WORK"
RECV=
cleanup() {
  [ -n "$RECV" ] && kill "$RECV" 2>/dev/null || true
  tests/harness/cluster.sh stop "$WORK/pg" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

start_receiver() {  # start_receiver PORT (0: any)
  rm -f "$WORK/rport"
  python3 tests/harness/webhook_receiver.py --port "$1" --secret s3cret --port-file "$WORK/rport" &
  RECV=$!
  for _ in $(seq 50); do [ -s "$WORK/rport" ] && break; sleep 0.1; done
  RPORT=$(cat "$WORK/rport")
}
start_receiver 0

results=()
part cases || CASES=
for case in $CASES; do
  latency=${case%%:*}
  rest=${case#*:}
  conc=${rest%%@*}
  nofile=
  [ "$rest" != "$conc" ] && nofile=${rest#*@}
  rm -rf "$WORK/pg"
  if [ -n "$nofile" ]; then
    (ulimit -n "$nofile"; tests/harness/cluster.sh start "$WORK/pg" "$PORT" >/dev/null)
  else
    tests/harness/cluster.sh start "$WORK/pg" "$PORT" >/dev/null
  fi
  source "$WORK/pg/env"
  psql -X -q -c "CREATE DATABASE bench" >/dev/null
  psql -X -q -d bench -c "CREATE EXTENSION odooops" >/dev/null
  psql -X -q -c "ALTER SYSTEM SET odooops.database = 'bench'" \
       -c "ALTER SYSTEM SET odooops.dispatcher_concurrency = $conc" \
       -c "ALTER SYSTEM SET odooops.dispatcher_batch_size = 256" >/dev/null
  if [ -n "$nofile" ]; then
    (ulimit -n "$nofile"; tests/harness/cluster.sh restart "$WORK/pg")
  else
    tests/harness/cluster.sh restart "$WORK/pg"
  fi
  for _ in $(seq 100); do
    pid=$(psql -X -A -t -d bench -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'odooops dispatcher' AND datname = 'bench'")
    [ -n "$pid" ] && break; sleep 0.1
  done
  [ -n "$pid" ] || { echo "no dispatcher" >&2; exit 1; }
  limit_line=$(grep "odooops dispatcher: concurrency" "$WORK/pg/server.log" | tail -1 | sed 's/.*dispatcher: //')
  psql -X -q -d bench -c "INSERT INTO ops.webhook_subscriptions (name, url) VALUES ('bench', 'http://127.0.0.1:$RPORT/slow/$latency');
                          INSERT INTO ops.webhook_secrets VALUES (1, 's3cret');" >/dev/null
  rss_start=$(awk '/RssAnon/ {print $2}' /proc/$pid/status)
  vm_start=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
  : >"$WORK/rss"
  ( while kill -0 "$pid" 2>/dev/null; do awk '/RssAnon/ {print $2}' /proc/$pid/status >>"$WORK/rss" 2>/dev/null; sleep 1; done ) &
  sampler=$!
  t0=$(date +%s%N)
  psql -X -q -d bench -c "INSERT INTO ops.webhook_deliveries (subscription_id, event_type, payload)
    SELECT 1, 'run.finished', jsonb_build_object('type', 'run.finished', 'occurred_at', now(),
             'project', jsonb_build_object('id', 1, 'slug', 'acme', 'repo_full_name', 'acme/shop'),
             'environment', jsonb_build_object('id', 2, 'name', 'staging', 'stage', 'staging'),
             'data', jsonb_build_object('id', i, 'workflow', 'deploy', 'status', 'succeeded', 'attempt', 1,
                                        'git_sha', 'a1b2c3d4e5f6a7b8', 'git_ref', 'main'))
      FROM generate_series(1, $N) i" >/dev/null
  while :; do
    left=$(psql -X -A -t -d bench -c "SELECT count(*) FROM ops.webhook_deliveries WHERE status IN ('pending', 'sending')")
    [ "$left" = 0 ] && break
    sleep 0.2
  done
  t1=$(date +%s%N)
  kill "$sampler" 2>/dev/null || true; wait "$sampler" 2>/dev/null || true
  stats=$(psql -X -A -t -F ' ' -d bench -c "SELECT count(*) FILTER (WHERE status = 'delivered'),
            count(*) FILTER (WHERE status = 'dead'), max(attempts),
            (SELECT count(*) FROM ops.webhook_delivery_attempts WHERE outcome <> 'delivered')
          FROM ops.webhook_deliveries")
  read -r delivered dead _ failed_attempts <<<"$stats"
  ms=$(( (t1 - t0) / 1000000 ))
  rate=$(( N * 1000 / (ms > 0 ? ms : 1) ))
  rss_end=$(awk '/RssAnon/ {print $2}' /proc/$pid/status)
  vm_end=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
  # RSS after the first 10% of the run vs the end (steady state)
  read -r _ rss_max _ <<<"$(sort -n "$WORK/rss" | awk 'NR==1{min=$1} {a[NR]=$1} END {print min, a[NR], a[int(NR*0.1)+1]}')"
  rss_first10=$(awk -v n="$(wc -l <"$WORK/rss")" 'NR==int(n*0.1)+1 {print; exit}' "$WORK/rss")
  line="| ${latency} ms | ${conc}${nofile:+ (ulimit -n $nofile)} | ${limit_line} | $N | $delivered / $dead | $failed_attempts | $(awk "BEGIN {printf \"%.1f\", $ms/1000}") s | **$rate/s** | $(awk "BEGIN {printf \"%.1f → %.1f → %.1f MB (max %.1f)\", $rss_start/1024, $rss_first10/1024, $rss_end/1024, $rss_max/1024}") | $((vm_start/1024)) → $((vm_end/1024)) MB |"
  echo "$line"
  results+=("$line")
  tests/harness/cluster.sh stop "$WORK/pg" >/dev/null
done

# Memory over rounds: after a warm-up round, ROUNDS rounds of 10,000
# deliveries (0 ms, concurrency 256); RssAnon of the dispatcher after each.
ROUNDS=${ROUNDS:-10}
rounds=()
total=
if part rounds; then
rm -rf "$WORK/pg"
tests/harness/cluster.sh start "$WORK/pg" "$PORT" >/dev/null
source "$WORK/pg/env"
psql -X -q -c "CREATE DATABASE bench" >/dev/null
psql -X -q -d bench -c "CREATE EXTENSION odooops" >/dev/null
psql -X -q -c "ALTER SYSTEM SET odooops.database = 'bench'" >/dev/null
tests/harness/cluster.sh restart "$WORK/pg"
for _ in $(seq 100); do
  pid=$(psql -X -A -t -d bench -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'odooops dispatcher' AND datname = 'bench'")
  [ -n "$pid" ] && break; sleep 0.1
done
psql -X -q -d bench -c "INSERT INTO ops.webhook_subscriptions (name, url) VALUES ('bench', 'http://127.0.0.1:$RPORT/ok');
                        INSERT INTO ops.webhook_secrets VALUES (1, 's3cret');" >/dev/null
rounds=()
for r in $(seq 0 "$ROUNDS"); do
  psql -X -q -d bench -c "INSERT INTO ops.webhook_deliveries (subscription_id, event_type, payload)
    SELECT 1, 'run.queued', jsonb_build_object('type', 'run.queued', 'data', jsonb_build_object('id', i, 'round', $r))
      FROM generate_series(1, 10000) i" >/dev/null
  while [ "$(psql -X -A -t -d bench -c "SELECT count(*) FROM ops.webhook_deliveries WHERE status IN ('pending', 'sending')")" != 0 ]; do
    sleep 0.2
  done
  rounds+=("$(awk '/RssAnon/ {printf "%.2f", $2/1024}' /proc/$pid/status)")
done
total=$(psql -X -A -t -d bench -c "SELECT count(*) FILTER (WHERE status = 'delivered') || ' delivered, ' || count(*) FILTER (WHERE status <> 'delivered') || ' not' FROM ops.webhook_deliveries")
echo "rss rounds: ${rounds[*]} ($total)"
tests/harness/cluster.sh stop "$WORK/pg" >/dev/null
fi

# --- shared by the parts below -------------------------------------------
# new_cluster "SETTING = value" ...: a fresh cluster with a database bench,
# odooops created in it and the given postgresql.conf lines, restarted.
new_cluster() {
  rm -rf "$WORK/pg"
  tests/harness/cluster.sh start "$WORK/pg" "$PORT" >/dev/null
  source "$WORK/pg/env"
  psql -X -q -c "CREATE DATABASE bench" >/dev/null
  psql -X -q -d bench -c "CREATE EXTENSION odooops" >/dev/null
  { echo "odooops.database = 'bench'"; printf '%s\n' "$@"; } >>"$WORK/pg/data/postgresql.conf"
  tests/harness/cluster.sh restart "$WORK/pg"
}
backend_pid() {  # backend_pid BACKEND_TYPE_PATTERN
  local pid=
  for _ in $(seq 100); do
    pid=$(psql -X -A -t -d bench -c "SELECT pid FROM pg_stat_activity WHERE backend_type LIKE '$1' AND datname = 'bench' LIMIT 1")
    [ -n "$pid" ] && break; sleep 0.1
  done
  [ -n "$pid" ] || { echo "no process '$1' in bench" >&2; exit 1; }
  echo "$pid"
}
sample_rss() {  # sample_rss PID FILE &: RssAnon in kB every 0.5 s
  while kill -0 "$1" 2>/dev/null; do awk '/RssAnon/ {print $2}' "/proc/$1/status" >>"$2" 2>/dev/null; sleep 0.5; done
}
cpu_ms() {  # cpu_ms PID: user + system CPU time of the process, ms
  awk -v hz="$(getconf CLK_TCK)" '{sub(/.*\) /, ""); print int(($12 + $13) * 1000 / hz)}' "/proc/$1/stat"
}
mb() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }
PAYLOAD="jsonb_build_object('type', 'run.finished', 'occurred_at', now(),
           'project', jsonb_build_object('id', 1, 'slug', 'acme', 'repo_full_name', 'acme/shop'),
           'environment', jsonb_build_object('id', 2, 'name', 'staging', 'stage', 'staging'),
           'data', jsonb_build_object('id', i, 'workflow', 'deploy', 'status', 'succeeded', 'attempt', 1,
                                      'git_sha', 'a1b2c3d4e5f6a7b8', 'git_ref', 'main'))"
enqueue() {  # enqueue SUBSCRIPTION_ID N: N deliveries in one transaction
  psql -X -q -d bench -c "INSERT INTO ops.webhook_deliveries (subscription_id, event_type, payload)
    SELECT $1, 'run.finished', $PAYLOAD FROM generate_series(1, $2) i" >/dev/null
}
wait_delivered() {  # until none is pending or sending
  while [ "$(psql -X -A -t -d bench -c "SELECT count(*) FROM ops.webhook_deliveries WHERE status IN ('pending', 'sending')")" != 0 ]; do
    sleep 0.2
  done
}

# --- compare: the dispatcher and pg_net, same run, same receiver ----------
cmp_lines=()
cmp_summary=
if part compare; then
  pgnet_ok=
  if [ -z "${PG_NET_SRC:-}" ]; then
    cmp_summary="pg_net not measured: PG_NET_SRC (a pg_net source directory) is not set; no ratio."
  elif ! (cd "$PG_NET_SRC" && make -s PG_CONFIG="$PG_CONFIG" && make -s PG_CONFIG="$PG_CONFIG" install) >"$WORK/pgnet-build.log" 2>&1 ||
       [ ! -f "$("$PG_CONFIG" --pkglibdir)/pg_net.so" ]; then
    tail -5 "$WORK/pgnet-build.log" >&2
    cmp_summary="pg_net not measured: building or installing it from PG_NET_SRC failed; no ratio."
  else
    pgnet_ok=1
  fi
  echo "$cmp_summary"
fi
if [ -n "${pgnet_ok:-}" ]; then
  pgnet_version=$(sed -n "s/^default_version *= *'\\(.*\\)'/\\1/p" "$PG_NET_SRC/pg_net.control")
  new_cluster "shared_preload_libraries = 'odooops,pg_net'" "pg_net.database_name = 'bench'" "pg_net.ttl = '6 hours'"
  psql -X -q -d bench -c "CREATE EXTENSION pg_net" >/dev/null
  psql -X -q -d bench -c "INSERT INTO ops.webhook_subscriptions (name, url) VALUES ('bench', 'http://127.0.0.1:$RPORT/slow/50');
                          INSERT INTO ops.webhook_secrets VALUES (1, 's3cret');" >/dev/null
  # The dispatcher at each CONCURRENCY:HOST_CONCURRENCY of CMP_ODOOOPS
  # (the first: its defaults).
  odooops_rate=0; odooops_best=0; odooops_best_setting=
  for setting in $CMP_ODOOOPS; do
    psql -X -q -d bench -c "SET client_min_messages = warning" -c "TRUNCATE ops.webhook_deliveries CASCADE" \
         -c "ALTER SYSTEM SET odooops.dispatcher_concurrency = ${setting%%:*}" \
         -c "ALTER SYSTEM SET odooops.webhook_host_concurrency = ${setting#*:}" -c "SELECT pg_reload_conf()" >/dev/null
    sleep 1
    dpid=$(backend_pid 'odooops dispatcher')
    c0=$(cpu_ms "$dpid"); r0=$(cpu_ms "$RECV")
    t0=$(date +%s%N); enqueue 1 "$CMP_N"; wait_delivered; t1=$(date +%s%N)
    c1=$(cpu_ms "$dpid"); r1=$(cpu_ms "$RECV")
    ok=$(psql -X -A -t -d bench -c "SELECT count(*) FROM ops.webhook_deliveries WHERE status = 'delivered'")
    ms=$(( (t1 - t0) / 1000000 ))
    rate=$(( ok * 1000 / (ms > 0 ? ms : 1) ))
    [ "$odooops_rate" = 0 ] && odooops_rate=$rate
    [ "$rate" -gt "$odooops_best" ] && { odooops_best=$rate; odooops_best_setting=$setting; }
    cmp_lines+=("| odooops dispatcher | dispatcher_concurrency ${setting%%:*}, webhook_host_concurrency ${setting#*:}, batch 256 | $CMP_N | $ok / $((CMP_N - ok)) | $(awk "BEGIN {printf \"%.1f\", $ms/1000}") s | **$rate/s** | $(( (c1 - c0) * 1000 / CMP_N )) / $(( (r1 - r0) * 1000 / CMP_N )) |")
    echo "${cmp_lines[-1]}"
  done
  npid=$(backend_pid 'pg_net%')
  : >"$WORK/rss-pgnet"; sample_rss "$npid" "$WORK/rss-pgnet" & nsampler=$!
  nrss_start=$(awk '/RssAnon/ {print $2}' "/proc/$npid/status")
  best=0; best_batch=
  for batch in $PGNET_BATCHES; do
    psql -X -q -d bench -c "TRUNCATE net._http_response" -c "ALTER SYSTEM SET pg_net.batch_size = $batch" -c "SELECT pg_reload_conf()" >/dev/null
    sleep 1
    c0=$(cpu_ms "$npid"); r0=$(cpu_ms "$RECV")
    t0=$(date +%s%N)
    psql -X -q -d bench -c "SELECT count(net.http_post('http://127.0.0.1:$RPORT/slow/50', $PAYLOAD)) FROM generate_series(1, $CMP_N) i" >/dev/null
    last=-1; stalled=0
    while :; do
      got=$(psql -X -A -t -d bench -c "SELECT count(*) FROM net._http_response")
      [ "$got" -ge "$CMP_N" ] && break
      if [ "$got" = "$last" ]; then stalled=$((stalled + 1)); else stalled=0; last=$got; fi
      [ "$stalled" -ge 300 ] && { echo "pg_net stalled at $got of $CMP_N (batch $batch)" >&2; break; }
      sleep 0.2
    done
    t1=$(date +%s%N)
    c1=$(cpu_ms "$npid"); r1=$(cpu_ms "$RECV")
    read -r ok bad <<<"$(psql -X -A -t -F ' ' -d bench -c "SELECT count(*) FILTER (WHERE status_code = 200), count(*) FILTER (WHERE status_code IS DISTINCT FROM 200) FROM net._http_response")"
    bad=$(( bad + CMP_N - ok - bad ))
    why=
    [ "$bad" -gt 0 ] && why=" ($(psql -X -A -t -d bench -c "SELECT coalesce(left(error_msg, 70), 'HTTP ' || status_code) FROM net._http_response
                                   WHERE status_code IS DISTINCT FROM 200 GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"))"
    ms=$(( (t1 - t0) / 1000000 ))
    rate=$(( ok * 1000 / (ms > 0 ? ms : 1) ))
    [ "$rate" -gt "$best" ] && { best=$rate; best_batch=$batch; }
    cmp_lines+=("| pg_net $pgnet_version | pg_net.batch_size $batch, ttl 6 hours | $CMP_N | $ok / $bad$why | $(awk "BEGIN {printf \"%.1f\", $ms/1000}") s | $rate/s | $(( (c1 - c0) * 1000 / CMP_N )) / $(( (r1 - r0) * 1000 / CMP_N )) |")
    echo "${cmp_lines[-1]}"
  done
  nrss_end=$(awk '/RssAnon/ {print $2}' "/proc/$npid/status")
  kill "$nsampler" 2>/dev/null || true; wait "$nsampler" 2>/dev/null || true
  nrss_max=$(sort -n "$WORK/rss-pgnet" | tail -1)
  if [ "$best" -gt 0 ]; then
    ratio=$(awk "BEGIN {printf \"%.1f\", $odooops_rate / $best}")
    ratio_best=$(awk "BEGIN {printf \"%.1f\", $odooops_best / $best}")
    cmp_summary="Ratio against pg_net $pgnet_version at its best (batch_size $best_batch, $best/s): the dispatcher at its defaults $odooops_rate/s, **${ratio}×**; at its best here (concurrency:host concurrency $odooops_best_setting) $odooops_best/s, **${ratio_best}×**. pg_net worker RssAnon over its rounds: $(mb "$nrss_start") → $(mb "$nrss_end") MB (max $(mb "$nrss_max"))."
  else
    cmp_summary="pg_net $pgnet_version delivered nothing; no ratio."
  fi
  echo "$cmp_summary"
  tests/harness/cluster.sh stop "$WORK/pg" >/dev/null
fi

# --- outage: the dispatcher's memory over OUTAGE_N deliveries, receiver down meanwhile
outage_line=
if part outage; then
  new_cluster "odooops.webhook_retry_base = '200ms'" "odooops.webhook_retry_max = '2s'" "odooops.webhook_max_attempts = 1000"
  psql -X -q -d bench -c "INSERT INTO ops.webhook_subscriptions (name, url) VALUES ('bench', 'http://127.0.0.1:$RPORT/ok');
                          INSERT INTO ops.webhook_secrets VALUES (1, 's3cret');" >/dev/null
  dpid=$(backend_pid 'odooops dispatcher')
  : >"$WORK/rss-outage"
  rss_start=$(awk '/RssAnon/ {print $2}' "/proc/$dpid/status")
  vm_start=$(awk '/VmRSS/ {print $2}' "/proc/$dpid/status")
  sample_rss "$dpid" "$WORK/rss-outage" & sampler=$!
  t0=$(date +%s%N)
  enqueue 1 "$OUTAGE_N"
  # down once a quarter is delivered, for OUTAGE_S seconds
  while [ "$(psql -X -A -t -d bench -c "SELECT count(*) FROM ops.webhook_deliveries WHERE status = 'delivered'")" -lt $((OUTAGE_N / 4)) ]; do sleep 0.2; done
  rss_before=$(awk '/RssAnon/ {print $2}' "/proc/$dpid/status")
  kill "$RECV"; wait "$RECV" 2>/dev/null || true
  sleep "$OUTAGE_S"
  rss_down=$(awk '/RssAnon/ {print $2}' "/proc/$dpid/status")
  start_receiver "$RPORT"
  wait_delivered
  t1=$(date +%s%N)
  kill "$sampler" 2>/dev/null || true; wait "$sampler" 2>/dev/null || true
  rss_end=$(awk '/RssAnon/ {print $2}' "/proc/$dpid/status")
  vm_end=$(awk '/VmRSS/ {print $2}' "/proc/$dpid/status")
  rss_max=$(sort -n "$WORK/rss-outage" | tail -1)
  read -r delivered failed <<<"$(psql -X -A -t -F ' ' -d bench -c "SELECT count(*) FILTER (WHERE status = 'delivered'),
      (SELECT count(*) FROM ops.webhook_delivery_attempts WHERE outcome <> 'delivered') FROM ops.webhook_deliveries")"
  outage_line="| $OUTAGE_N | $OUTAGE_S s | $delivered | $failed | $(awk "BEGIN {printf \"%.1f\", ($t1 - $t0)/1e9}") s | $(mb "$rss_start") | $(mb "$rss_before") | $(mb "$rss_down") | $(mb "$rss_max") | $(mb "$rss_end") | $(mb "$vm_start") → $(mb "$vm_end") |"
  echo "outage: $outage_line"
  tests/harness/cluster.sh stop "$WORK/pg" >/dev/null
fi

# --- hang: one receiver never answers; healthy ones answer after 50 ms ----
# 'hang' names the receiver as localhost, the healthy ones as 127.0.0.1:
# two hosts for odooops.webhook_host_concurrency. 2,000 deliveries to
# 'hang' first (each holds a slot until odooops.webhook_timeout, 10 s),
# then for HANG_S seconds 5 deliveries to each healthy subscription every
# 50 ms, one transaction each. A healthy delivery's time runs from its
# commit to the receiver's answer (attempt start + latency); the commit
# follows the INSERT at once, whose clock_timestamp() the payload carries
# (created_at is the transaction's start, which in the DO loop below comes
# before its 50 ms sleep).
hang_lines=()
if part hang; then
  new_cluster
  psql -X -q -d bench -c "INSERT INTO ops.webhook_subscriptions (name, url) VALUES
      ('hang', 'http://localhost:$RPORT/timeout'), ('healthy-a', 'http://127.0.0.1:$RPORT/slow/50'),
      ('healthy-b', 'http://127.0.0.1:$RPORT/slow/50');
    INSERT INTO ops.webhook_secrets VALUES (1, 's3cret'), (2, 's3cret'), (3, 's3cret');" >/dev/null
  backend_pid 'odooops dispatcher' >/dev/null
  steady() {  # steady LABEL
    psql -X -q -d bench -c "DO \$\$ BEGIN
        FOR k IN 1..($HANG_S * 20) LOOP
          INSERT INTO ops.webhook_deliveries (subscription_id, event_type, payload)
            SELECT s, 'run.finished', $PAYLOAD || jsonb_build_object('case', '$1', 'queued_at', clock_timestamp())
              FROM generate_series(1, 5) i, generate_series(2, 3) s;
          COMMIT;
          PERFORM pg_sleep(0.05);
        END LOOP; END \$\$" >/dev/null
    while [ "$(psql -X -A -t -d bench -c "SELECT count(*) FROM ops.webhook_deliveries WHERE subscription_id IN (2, 3) AND status IN ('pending', 'sending')")" != 0 ]; do
      sleep 0.2
    done
    psql -X -A -t -F ' ' -d bench -c "SELECT count(*), round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)),
          round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)), round(max(ms)),
          round(percentile_cont(0.99) WITHIN GROUP (ORDER BY rec)),
          round(percentile_cont(0.99) WITHIN GROUP (ORDER BY lat)), round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms - lat))
        FROM (SELECT extract(epoch FROM a.started_at - (d.payload->>'queued_at')::timestamptz) * 1000 + a.latency_ms AS ms,
                     a.latency_ms AS lat,
                     extract(epoch FROM d.delivered_at - (d.payload->>'queued_at')::timestamptz) * 1000 AS rec
                FROM ops.webhook_deliveries d JOIN ops.webhook_delivery_attempts a
                  ON a.delivery_id = d.id AND a.outcome = 'delivered'
               WHERE d.subscription_id IN (2, 3) AND d.payload->>'case' = '$1') x"
  }
  read -r n p50 p99 mx rec99 lat99 wait99 <<<"$(steady alone)"
  hang_lines+=("| none hangs | $n | $p50 ms | **$p99 ms** | $mx ms | $wait99 ms | $lat99 ms | $rec99 ms |")
  echo "${hang_lines[-1]}"
  enqueue 1 2000
  sleep 1
  read -r n p50 p99 mx rec99 lat99 wait99 <<<"$(steady hang)"
  inflight=$(psql -X -A -t -d bench -c "SELECT count(*) FROM ops.webhook_deliveries WHERE subscription_id = 1 AND status <> 'pending'")
  hang_lines+=("| 'hang' never answers (2,000 deliveries; $inflight claimed by the end) | $n | $p50 ms | **$p99 ms** | $mx ms | $wait99 ms | $lat99 ms | $rec99 ms |")
  echo "${hang_lines[-1]}"
  tests/harness/cluster.sh stop "$WORK/pg" >/dev/null
fi

{
  echo "## Webhook dispatcher"
  echo
  echo "Measured by \`bench/webhook_bench.sh\` on $(date -u +%Y-%m-%d), $(nproc) CPUs, PostgreSQL $(pg_config --version | awk '{print $2}'),"
  echo "libcurl $(curl-config --version | awk '{print $2}'); the receiver is tests/harness/webhook_receiver.py (Python asyncio,"
  echo "one process, HTTP/1.1 keep-alive) on the same machine; every body is signed (HMAC-SHA256) and every"
  echo "attempt recorded in ops.webhook_delivery_attempts. N deliveries are written in one transaction; the"
  echo "time runs from that commit (which wakes the dispatcher) until none is pending or sending."
  echo "Memory is sampled every second from /proc: RssAnon is the dispatcher's private memory (heap, libcurl,"
  echo "OpenSSL); VmRSS also counts the shared_buffers pages the process has touched, which grows as it reads"
  echo "more of the table and is not a leak."
  echo
  echo "Reproduce: \`N=$N CASES=\"$CASES\" ROUNDS=$ROUNDS CMP_N=$CMP_N CMP_ODOOOPS=\"$CMP_ODOOOPS\" PGNET_BATCHES=\"$PGNET_BATCHES\""
  echo "OUTAGE_N=$OUTAGE_N OUTAGE_S=$OUTAGE_S HANG_S=$HANG_S PG_NET_SRC=<a pg_net source directory> nice -n 10 bench/webhook_bench.sh\`"
  echo "(where \`make install\` into PostgreSQL's directories is allowed, e.g. a container or a private"
  echo "mount namespace; pg_net is built from that directory and installed; the script's header lists the parts)."
  echo
  if part compare; then
    echo "### Against pg_net, same run"
    echo
    echo "Both extensions preloaded in one cluster, one after the other against the same receiver answering"
    echo "after 50 ms; $CMP_N requests each, enqueued in one transaction (odooops: rows of"
    echo "ops.webhook_deliveries, signed; pg_net: net.http_post calls with the same JSON body, unsigned),"
    echo "timed from that commit until every one has an answer. pg_net sends each batch of"
    echo "pg_net.batch_size requests at once, waits for all of them, then for its next wake-up (up to 1 s);"
    echo "it is measured at each batch size and the best one counts."
    echo
    echo "| sender | settings | requests | answered 200 / not | time | rate | CPU ms per 1,000 requests: sender process / receiver |"
    echo "|---|---|---|---|---|---|---|"
    [ ${#cmp_lines[@]} -gt 0 ] && printf '%s\n' "${cmp_lines[@]}"
    echo
    echo "$cmp_summary"
    echo
  fi
  if [ ${#results[@]} -gt 0 ]; then
    echo "### Throughput"
    echo
    echo "| receiver latency | odooops.dispatcher_concurrency | effective (log line) | deliveries | delivered / dead | failed attempts | time | rate | dispatcher private memory (RssAnon) start → 10 % → end | VmRSS start → end |"
    echo "|---|---|---|---|---|---|---|---|---|---|"
    printf '%s\n' "${results[@]}"
    echo
  fi
  if [ -n "$outage_line" ]; then
    echo "### Memory across a receiver outage"
    echo
    echo "$OUTAGE_N deliveries to a receiver answering at once (retry backoff 200 ms to 2 s, 1,000 attempts"
    echo "allowed); once a quarter is delivered the receiver is stopped for $OUTAGE_S s (connections refused,"
    echo "every attempt fails and is retried), then started again on the same port. Dispatcher RssAnon in MB:"
    echo
    echo "| deliveries | outage | delivered | failed attempts | time | start | before the outage | end of the outage | peak | end | VmRSS start → end |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|"
    echo "$outage_line"
    echo
  fi
  if [ ${#rounds[@]} -gt 0 ]; then
    echo "Memory over 10,000-delivery rounds (0 ms, concurrency 256): dispatcher RssAnon in MB after the"
    echo "warm-up round and after each of the next $ROUNDS rounds ($total):"
    echo
    echo "    ${rounds[*]}"
    echo
  fi
  if [ ${#hang_lines[@]} -gt 0 ]; then
    echo "### One receiver hangs"
    echo
    echo "Defaults (256 in flight, odooops.webhook_host_concurrency 128, odooops.webhook_timeout 10 s)."
    echo "'hang' (host localhost) never answers and has 2,000 deliveries; two healthy subscriptions (host"
    echo "127.0.0.1, 50 ms) get 5 deliveries each every 50 ms for $HANG_S s. A healthy delivery's time runs from"
    echo "its commit to the receiver's answer (attempt start + its latency); \"recorded\" is until delivered_at,"
    echo "which adds the dispatcher's batching of results (every 50 ms or 256 results)."
    echo
    echo "| hanging receiver | healthy deliveries | p50 | p99 | max | p99 of the wait before sending | p99 of the request alone | p99 recorded |"
    echo "|---|---|---|---|---|---|---|---|"
    printf '%s\n' "${hang_lines[@]}"
    echo
  fi
} >"$OUT"
echo "wrote $OUT"
