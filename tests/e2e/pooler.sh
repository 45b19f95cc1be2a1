#!/usr/bin/env bash
# The worker behind a transaction-mode pooler (PgBouncer, pool_mode =
# transaction): LISTEN is not delivered there, so the worker polls. With
# --listen=false and with LISTEN left on, a build and a deploy complete.
source "$(dirname "$0")/lib.sh"
if ! command -v pgbouncer >/dev/null && [ ! -x /usr/sbin/pgbouncer ]; then
  [ "$(id -u)" = 0 ] || fail "pgbouncer is missing (apt-get install pgbouncer)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends pgbouncer >/dev/null
  service pgbouncer stop >/dev/null 2>&1 || true
fi
PGBOUNCER=$(command -v pgbouncer || echo /usr/sbin/pgbouncer)
setup_control_plane
PB_PORT=$(free_port)
mkdir -p "$WORK/pgbouncer"
cat >"$WORK/pgbouncer/pgbouncer.ini" <<INI
[databases]
$CP_DB = host=$PGHOST port=$PGPORT dbname=$CP_DB
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $PB_PORT
unix_socket_dir =
auth_type = trust
auth_file = $WORK/pgbouncer/users.txt
pool_mode = transaction
default_pool_size = 4
logfile = $WORK/pgbouncer/pgbouncer.log
pidfile = $WORK/pgbouncer/pgbouncer.pid
INI
echo "\"$PGUSER\" \"\"" >"$WORK/pgbouncer/users.txt"
chown -R postgres: "$WORK/pgbouncer" 2>/dev/null || true
if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$PGBOUNCER" -d "$WORK/pgbouncer/pgbouncer.ini"
else "$PGBOUNCER" -d "$WORK/pgbouncer/pgbouncer.ini"; fi
EXTRA_CLEANUP+=("kill \$(cat $WORK/pgbouncer/pgbouncer.pid)")
for _ in $(seq 1 50); do pg_isready -q -h 127.0.0.1 -p "$PB_PORT" && break; sleep 0.1; done

# The worker's DSN goes through the pooler; steps reach the Odoo databases directly.
ODOO_BIN=$STANDIN "$WORKER_BIN" --dsn "host=127.0.0.1 port=$PB_PORT dbname=$CP_DB user=$PGUSER" --listen=false \
  --worker-id pooled --state-dir "$STATE" --steps-dir "$ROOT/worker/steps" --poll-interval 0.5 \
  >>"$WORK/worker-pooled.log" 2>&1 &
WORKER_PIDS+=($!); pooled=$!
b=$(queue dev build); d=$(queue staging deploy)
wait_status "$b" succeeded 60; wait_status "$d" succeeded 90
health "$PORT_STAGING" | has '"pass"' || fail "staging not healthy"
[ "$(scalar "SELECT count(*) FROM ops.run_events WHERE run_id = $d AND stream = 'stdout'")" -gt 3 ] || fail "events missing"
say "--listen=false through PgBouncer (transaction mode): build $b and deploy $d succeeded"
kill -TERM "$pooled"; wait "$pooled" || fail "the pooled worker did not drain cleanly"

# LISTEN left on behind the pooler: notifications are lost, polling still
# finds the run. This worker is configured by a file plus the environment.
cat >"$WORK/worker.conf" <<CONF
# odooops-worker configuration (option names without --)
dsn = "host=127.0.0.1 port=$PB_PORT dbname=$CP_DB user=$PGUSER"
worker-id = pooled-listen
state-dir = $STATE
steps-dir = $ROOT/worker/steps
poll-interval = 5
kinds = build
CONF
out=$("$WORKER_BIN" --config "$WORK/worker.conf" --nonsense 2>&1 || true)
[[ $out == *"unknown option --nonsense"* ]] || fail "bad flag not reported: $out"
help=$("$WORKER_BIN" --help)
[[ $help == *--drain-grace* && $help == *ODOOOPS_STORAGE* ]] || fail "--help does not explain the options"
ODOOOPS_POLL_INTERVAL=1 ODOO_BIN=$STANDIN "$WORKER_BIN" --config "$WORK/worker.conf" \
  >>"$WORK/worker-pooled-listen.log" 2>&1 &
WORKER_PIDS+=($!)
b2=$(queue dev build)
wait_status "$b2" succeeded 60
[ "$(scalar "SELECT kinds FROM ops.agents WHERE worker_id = 'pooled-listen'")" = "{build}" ] || fail "config file not applied"
say "LISTEN behind the pooler: the polling fallback claimed build $b2 (worker configured by file + environment)"
say "PASS"
