#!/usr/bin/env bash
# Runs odooops on an embedded default: a private PostgreSQL cluster in
# .odooops/ inside the project directory with the extension preloaded, a demo
# project backed by a local git repository, production/staging/development
# environments, local-directory storage, the odooops-worker daemon, and a
# deploy to staging whose events are shown live until it succeeds.
#
# Odoo: ODOO_SRC=/path/to/odoo (an Odoo 17.0 source tree, see the README for
# the Debian packages it needs) or ODOO_BIN=/path/to/odoo-bin runs a real
# Odoo; without either the demo runs tests/harness/odoo_standin.py, a small
# stand-in that is NOT Odoo (it only answers /web/health and keeps a few
# Odoo-named tables).
#
#   scripts/odooops/demo.sh          set up (or reuse) everything and run a deploy
#   scripts/odooops/demo.sh stop     stop the worker, the environments' Odoo and the cluster
#   scripts/odooops/demo.sh clean    stop everything and delete .odooops/
#   scripts/odooops/demo.sh psql     open psql on the control-plane database
#
# PG_CONFIG selects the PostgreSQL installation the extension is installed
# into (default: Debian's 15); ODOOOPS_DEMO_PORT the cluster's port (54329),
# ODOOOPS_DEMO_HTTP_PORT the first environment port (18069).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
STATE=$ROOT/.odooops
PGDIR=$STATE/pg
PORT=${ODOOOPS_DEMO_PORT:-54329}
HTTP_PORT=${ODOOOPS_DEMO_HTTP_PORT:-18069}
export PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
WORKER_BIN=$ROOT/build/odooops-worker
PG_BINDIR=$("$PG_CONFIG" --bindir 2>/dev/null || echo /usr/lib/postgresql/15/bin)
export PATH=$PG_BINDIR:$PATH

# PGHOST, PGPORT, PGUSER of the private cluster.
cluster_env() {
  # shellcheck source=/dev/null # written by tests/harness/cluster.sh start
  source "$PGDIR/env"
}
cluster_running() { [ -f "$PGDIR/env" ] && (cluster_env && pg_isready -q -h "$PGHOST" -p "$PGPORT"); }
worker_running() { [ -f "$STATE/worker.pid" ] && kill -0 "$(cat "$STATE/worker.pid")" 2>/dev/null; }

stop_all() {
  if worker_running; then
    kill -TERM "$(cat "$STATE/worker.pid")"
    for _ in $(seq 1 100); do worker_running || break; sleep 0.1; done
    echo "worker stopped"
  fi
  rm -f "$STATE/worker.pid"
  for pf in "$STATE"/worker-state/envs/*/*/odoo.pid; do
    [ -f "$pf" ] && kill -TERM "$(cat "$pf")" 2>/dev/null && echo "stopped Odoo of $(basename "$(dirname "$pf")")"
    rm -f "$pf"
  done
  [ -d "$PGDIR/data" ] && tests/harness/cluster.sh stop "$PGDIR" && echo "cluster stopped"
  return 0
}

case "${1:-run}" in
  stop) stop_all; exit 0 ;;
  clean) stop_all 2>/dev/null || true; rm -rf "$STATE"; echo "removed $STATE"; exit 0 ;;
  psql) cluster_env; exec psql -X -d odooops ;;
  --version)
    # shellcheck source-path=SCRIPTDIR source=lib.sh
    source scripts/odooops/lib.sh
    print_version demo.sh ;;
  run) ;;
  *) echo "usage: $0 [run|stop|clean|psql|--version]" >&2; exit 64 ;;   # EX_USAGE
esac

echo "==> checking the Debian packages odooops needs (installed when missing)"
tests/harness/deps.sh
[ -z "${ODOO_SRC:-}" ] || tests/harness/odoo_deps.sh   # Odoo's Python libraries, from Debian
echo "==> compiling the extension (a few minutes on a small machine the first time; one line per file)"
# The compiler's command lines, shortened to the file each one compiles.
if ! make -j2 PG_CONFIG="$PG_CONFIG" | sed -nu 's/.* -o \([^ ]*\.o\) .*/    \1/p'; then
  echo "the extension did not compile (make -j2 shows why)" >&2
  exit 1
fi
# The one thing the demo puts outside the project directory: PostgreSQL
# loads extensions from its own directories only.
echo "==> installing the extension into the system's PostgreSQL ($("$PG_CONFIG" --pkglibdir) and $("$PG_CONFIG" --sharedir)/extension); everything else stays in $STATE"
echo "==> compiling odooops-worker (cmake shows its progress)"
make -s install PG_CONFIG="$PG_CONFIG" WORKER_PREFIX="$STATE/usr"

mkdir -p "$STATE"
chmod 755 "$ROOT" "$STATE"
if [ ! -d "$PGDIR/data" ]; then
  echo "==> creating the private cluster in $PGDIR (port $PORT)"
  tests/harness/cluster.sh start "$PGDIR" "$PORT" >/dev/null
elif ! cluster_running; then
  echo "==> starting the private cluster"
  tests/harness/cluster.sh restart "$PGDIR" 2>/dev/null || {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- pg_ctl -D "$PGDIR/data" -l "$PGDIR/server.log" -w start >/dev/null
    else pg_ctl -D "$PGDIR/data" -l "$PGDIR/server.log" -w start >/dev/null; fi
  }
fi
cluster_env
export PGDATABASE=odooops
psql -X -q -d postgres -tc "SELECT 1 FROM pg_database WHERE datname = 'odooops'" | grep -q 1 \
  || psql -X -q -d postgres -c "CREATE DATABASE odooops"

# The demo repository: one Odoo addon, committed once, reused afterwards.
REPO=$STATE/demo-repo
if [ ! -d "$REPO/.git" ]; then
  echo "==> creating the demo git repository in $REPO"
  mkdir -p "$REPO/addons/demo_shop"
  printf '{"name": "Demo Shop", "version": "17.0.1.0.0", "depends": ["base"]}\n' >"$REPO/addons/demo_shop/__manifest__.py"
  touch "$REPO/addons/demo_shop/__init__.py"
  printf 'phonenumbers\n' >"$REPO/requirements.txt"
  git -C "$REPO" init -q -b main
  git -C "$REPO" -c user.email=demo@example.com -c user.name=demo add -A
  git -C "$REPO" -c user.email=demo@example.com -c user.name=demo commit -q -m "Demo shop"
fi
SHA=$(git -C "$REPO" rev-parse HEAD)

# The scheduler and webhook dispatcher live in the control-plane database.
if [ "$(psql -X -qAt -d postgres -c "SHOW odooops.database")" != odooops ]; then
  psql -X -q -d postgres -c "ALTER SYSTEM SET odooops.database = 'odooops'" -c "SELECT pg_reload_conf()" >/dev/null
fi
# The demo repository is a local path: the operator allows the file
# transport for this control plane (repository URLs are https or ssh only
# by default).
if [ "$(psql -X -qAt -d odooops -c "SHOW odooops.repo_url_schemes")" != https,ssh,file ]; then
  psql -X -q -d postgres -c "ALTER DATABASE odooops SET odooops.repo_url_schemes = 'https,ssh,file'" >/dev/null
fi
psql -X -q -v ON_ERROR_STOP=1 -v repo="$REPO" -v port="$HTTP_PORT" <<'SQL'
CREATE EXTENSION IF NOT EXISTS odooops;
INSERT INTO ops.projects (slug, name, repo_url) VALUES ('demo', 'Demo', :'repo')
ON CONFLICT (slug) DO UPDATE SET repo_url = EXCLUDED.repo_url;
INSERT INTO ops.environments (project_id, name, stage, branch_pattern, db_name, settings)
SELECT p.id, e.name, e.stage, e.pattern, 'demo_' || e.name, jsonb_build_object('http_port', :port + e.n)
  FROM ops.projects p,
       (VALUES ('production', 'production', 'main', 0),
               ('staging', 'staging', 'staging', 1),
               ('dev', 'development', 'feature/*', 2)) AS e(name, stage, pattern, n)
 WHERE p.slug = 'demo'
ON CONFLICT (project_id, name) DO UPDATE SET settings = ops.environments.settings || EXCLUDED.settings;
SQL

if ! worker_running; then
  odoo=()
  if [ -n "${ODOO_SRC:-}" ]; then
    odoo=(--odoo-src "$ODOO_SRC"); echo "==> Odoo: the source tree $ODOO_SRC"
  elif [ -n "${ODOO_BIN:-}" ]; then
    odoo=(--odoo-bin "$ODOO_BIN"); echo "==> Odoo: $ODOO_BIN"
  else
    odoo=(--odoo-bin "$ROOT/tests/harness/odoo_standin.py")
    echo "==> Odoo: the test stand-in (not Odoo); set ODOO_SRC to an Odoo source tree to use a real Odoo"
  fi
  echo "==> starting odooops-worker (log: $STATE/worker.log)"
  env -u ODOO_SRC -u ODOO_BIN setsid "$WORKER_BIN" "${odoo[@]}" --dsn "host=$PGHOST port=$PGPORT user=$PGUSER dbname=odooops" \
    --worker-id demo-worker --state-dir "$STATE/worker-state" --storage "file://$STATE/storage" \
    --poll-interval 2 >>"$STATE/worker.log" 2>&1 </dev/null &
  echo $! >"$STATE/worker.pid"
else
  echo "==> odooops-worker already running (pid $(cat "$STATE/worker.pid"))"
fi

echo "==> queueing a deploy of $SHA to staging"
RUN=$(psql -X -qAt -v ON_ERROR_STOP=1 -c \
  "SELECT id FROM ops.queue_run((SELECT id FROM ops.projects WHERE slug = 'demo'), 'staging', '$SHA', 'staging')")
echo "run $RUN queued; its events:"
last=0
status=queued
for _ in $(seq 1 1200); do
  while IFS='|' read -r id at level step text; do
    [ -n "$id" ] || continue
    printf '  %s %-5s %-18s %s\n' "$at" "$level" "${step:--}" "$text"
    last=$id
  done < <(psql -X -qAt -c "SELECT id, to_char(created_at, 'HH24:MI:SS.MS'), level, step,
                                   coalesce(from_status || ' -> ' || to_status, to_status, message)
                              FROM ops.run_events WHERE run_id = $RUN AND id > $last ORDER BY id")
  status=$(psql -X -qAt -c "SELECT status FROM ops.runs WHERE id = $RUN")
  case $status in succeeded|failed|cancelled) break ;; esac
  sleep 0.3
done
psql -X -P pager=off -c "SELECT id, workflow, status, attempt, claimed_by, result->>'url' AS url, error FROM ops.runs WHERE id = $RUN"
echo "control plane: PGHOST=$PGHOST PGPORT=$PGPORT PGDATABASE=odooops (scripts/odooops/demo.sh psql)"
[ "$status" = succeeded ] || { echo "the deploy $status; see $STATE/worker.log" >&2; exit 1; }
echo "staging serves $(psql -X -qAt -c "SELECT result->>'url' FROM ops.runs WHERE id = $RUN")"
