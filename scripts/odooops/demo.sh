#!/usr/bin/env bash
# Runs odooops on an embedded default: a private PostgreSQL cluster in
# .odooops/ inside the project directory with the extension preloaded, a demo
# project with production, staging and development environments, and a
# deploy driven through the run queue while its events are shown.
#
#   scripts/odooops/demo.sh          set up (or reuse) everything and run a deploy
#   scripts/odooops/demo.sh stop     stop the private cluster
#   scripts/odooops/demo.sh clean    stop it and delete .odooops/
#   scripts/odooops/demo.sh psql     open psql on the control-plane database
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
STATE=$ROOT/.odooops
PGDIR=$STATE/pg
PORT=${ODOOOPS_DEMO_PORT:-54329}
export PATH=/usr/lib/postgresql/15/bin:$PATH

cluster_running() { [ -f "$PGDIR/data/postmaster.pid" ] && pg_ctl -D "$PGDIR/data" status >/dev/null 2>&1; }

case "${1:-run}" in
  stop) tests/harness/cluster.sh stop "$PGDIR"; echo "stopped"; exit 0 ;;
  clean) tests/harness/cluster.sh stop "$PGDIR" 2>/dev/null || true; rm -rf "$STATE"; echo "removed $STATE"; exit 0 ;;
  psql) source "$PGDIR/env"; exec psql -X -d odooops ;;
  run) ;;
  *) echo "usage: $0 [run|stop|clean|psql]" >&2; exit 2 ;;
esac

echo "==> building and installing odooops"
tests/harness/deps.sh
make -s -j2 && make -s install

if [ ! -d "$PGDIR/data" ]; then
  echo "==> creating the private cluster in $PGDIR (port $PORT)"
  chmod 755 "$ROOT"
  tests/harness/cluster.sh start "$PGDIR" "$PORT" >/dev/null
elif ! cluster_running; then
  echo "==> starting the private cluster"
  tests/harness/cluster.sh restart "$PGDIR" 2>/dev/null || \
    runuser -u postgres -- pg_ctl -D "$PGDIR/data" -l "$PGDIR/server.log" -w start >/dev/null
fi
source "$PGDIR/env"
export PGDATABASE=odooops
psql -X -q -d postgres -tc "SELECT 1 FROM pg_database WHERE datname = 'odooops'" | grep -q 1 \
  || psql -X -q -d postgres -c "CREATE DATABASE odooops"
psql -X -q -v ON_ERROR_STOP=1 <<'SQL'
CREATE EXTENSION IF NOT EXISTS odooops;
INSERT INTO ops.projects (slug, name, repo_url)
VALUES ('demo', 'Demo', 'file:///demo.git') ON CONFLICT (slug) DO NOTHING;
INSERT INTO ops.environments (project_id, name, stage, branch_pattern, db_name)
SELECT p.id, e.name, e.stage, e.pattern, 'demo_' || e.name
  FROM ops.projects p,
       (VALUES ('production', 'production', 'main'),
               ('staging', 'staging', 'staging'),
               ('dev', 'development', 'feature/*')) AS e(name, stage, pattern)
 WHERE p.slug = 'demo'
ON CONFLICT (project_id, name) DO NOTHING;
SQL

echo "==> queueing a deploy to staging"
RUN=$(psql -X -qAt -v ON_ERROR_STOP=1 -c \
  "SELECT id FROM ops.queue_run((SELECT id FROM ops.projects WHERE slug = 'demo'), 'staging',
          substr(md5(clock_timestamp()::text), 1, 12), 'staging')")
echo "run $RUN queued"

# Until the odooops-worker daemon takes over, psql plays the worker: each
# call is the SQL a worker makes, fenced by worker id and attempt.
echo "==> a worker claims and executes it"
ATTEMPT=$(psql -X -qAt -v ON_ERROR_STOP=1 -c "SELECT attempt FROM ops.claim_next_run('demo-worker') WHERE id = $RUN")
psql -X -q -v ON_ERROR_STOP=1 <<SQL >/dev/null
SELECT ops.start_run($RUN, 'demo-worker', $ATTEMPT);
SELECT ops.append_events($RUN, '[{"level":"info","message":"checking out the revision","step":"build"},
                                 {"level":"info","message":"updating changed modules","step":"deploy"},
                                 {"level":"info","message":"health check passed","step":"deploy"}]',
                         'demo-worker', $ATTEMPT);
SELECT ops.finish_run($RUN, 'succeeded', '{"url": "http://127.0.0.1:8069"}', 'demo-worker', $ATTEMPT);
SQL

psql -X -P pager=off -c "SELECT to_char(created_at, 'HH24:MI:SS.MS') AS at, kind, level,
                                 coalesce(from_status || ' -> ' || to_status, message) AS event, actor
                            FROM ops.run_events WHERE run_id = $RUN ORDER BY id"
psql -X -P pager=off -c "SELECT id, workflow, status, attempt, result FROM ops.runs WHERE id = $RUN"
echo "control plane: PGHOST=$PGHOST PGPORT=$PGPORT PGDATABASE=odooops (scripts/odooops/demo.sh psql)"
