# shellcheck shell=bash
# Shared setup of the end-to-end tests (sourced). Needs PGHOST/PGPORT/PGUSER
# of a running server with odooops preloaded (tests/run_all.sh exports them)
# and the worker built in build/odooops-worker. Each test creates its own
# control-plane database, git repository, state directory and ports, and
# removes them on exit (KEEP_E2E=1 keeps the directory).
#
# The Odoo used here is tests/harness/odoo_standin.py, a stand-in for the
# flags and failure paths real Odoo cannot easily produce, fast; the same
# steps run on real Odoo in tests/e2e/real_odoo.sh when a source tree is
# given (ODOO_SRC).
set -euo pipefail
E2E_NAME=$(basename "$0" .sh)
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
WORKER_BIN=${WORKER_BIN:-$ROOT/build/odooops-worker}
STANDIN=$ROOT/tests/harness/odoo_standin.py
# How the worker runs Odoo: the stand-in unless a test sets ODOO_FLAGS
# (tests/e2e/real_odoo.sh: --odoo-src with a real Odoo source tree).
if [ -z "${ODOO_FLAGS+x}" ]; then
  ODOO_FLAGS=(--odoo-bin "$STANDIN")
  # The stand-in, whatever Odoo this machine has: the worker would take the
  # addons of a source tree named in its environment (ODOO_SRC).
  unset ODOO_SRC ODOOOPS_ODOO_ADDONS
fi
# The steps: the source tree's, unless a test runs the installed worker with
# the steps it finds itself (E2E_INSTALLED=1, tests/multiprocess/install.sh).
STEPS_FLAGS=(--steps-dir "$ROOT/worker/steps")
[ "${E2E_INSTALLED:-}" != 1 ] || STEPS_FLAGS=()
[ -x "$WORKER_BIN" ] || { echo "$E2E_NAME: build the worker first (cmake --build build)" >&2; exit 1; }
WORK=$(mktemp -d "/tmp/odooops-e2e-$E2E_NAME.XXXXXX")
chmod 755 "$WORK"
CP_DB=odooops_e2e_${E2E_NAME//-/_}
STATE=$WORK/state
WORKER_PIDS=()
EXTRA_CLEANUP=()

say() { printf '[%s] %s\n' "$E2E_NAME" "$*"; }
fail() {
  printf '[%s] FAIL: %s\n' "$E2E_NAME" "$*" >&2
  for f in "$WORK"/worker-*.log; do [ -f "$f" ] && { echo "--- $f" >&2; tail -n 30 "$f" >&2; }; done
  exit 1
}
cp_psql() { psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$CP_DB" "$@"; }
scalar() { cp_psql -c "$1"; }
# has [GREP-OPTIONS] PATTERN: whether standard input has a line matching
# PATTERN. It reads the whole input first: "producer | grep -q" under
# pipefail fails at random when grep exits on the first match and the
# producer, still writing, dies of SIGPIPE.
has() {
  local input
  input=$(cat)
  grep -q "$@" <<<"$input"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

e2e_cleanup() {
  local rc=$?
  for pid in "${WORKER_PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  for c in "${EXTRA_CLEANUP[@]}"; do eval "$c" || true; done
  # Odoo stand-ins started by deploy steps (each in its own session)
  for pf in "$STATE"/envs/*/*/odoo.pid; do [ -f "$pf" ] && kill -KILL "$(cat "$pf")" 2>/dev/null || true; done
  # and the environments' mail catchers (worker/steps/lib/mail_catcher.sh)
  for pf in "$STATE"/mail/*/catcher.pid; do [ -f "$pf" ] && kill -KILL "$(cat "$pf")" 2>/dev/null || true; done
  # The operating-system users the worker created for the environments
  # (named after the environment's directory, worker/steps/lib/common.sh).
  for dir in "$STATE"/envs/*/*/; do
    local user; user=odooops-$(printf '%s' "${dir%/}" | sha256sum | cut -c1-12)
    id -u "$user" >/dev/null 2>&1 || continue
    pkill -KILL -u "$user" 2>/dev/null || true
    userdel "$user" 2>/dev/null || true
  done
  if [ -z "${KEEP_E2E:-}" ]; then
    # The databases and roles of environments the control plane named itself
    # (branch and preview environments: <project>_<branch>), if a test
    # stopped before destroying them.
    for db in $(psql -X -A -t -d "$CP_DB" -c "SELECT db_name FROM ops.environments WHERE db_name NOT LIKE 'e2e\_%'" 2>/dev/null); do
      psql -X -q -d postgres -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 || true
      psql -X -q -d postgres -c "DROP OWNED BY \"odoo_$db\"" -c "DROP ROLE IF EXISTS \"odoo_$db\"" >/dev/null 2>&1 || true
    done
    for db in $(psql -X -A -t -d postgres -c "SELECT datname FROM pg_database WHERE datname LIKE 'e2e\\_${E2E_NAME//-/_}\\_%' OR datname = '$CP_DB'" 2>/dev/null); do
      psql -X -q -d postgres -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 || true
    done
    # The template databases this test's worker built (worker/steps/lib/template_db.sh).
    for tpl in "$STATE"/templates/odooops_tpl_*/; do
      [ -d "$tpl" ] && psql -X -q -d postgres -c "DROP DATABASE IF EXISTS \"$(basename "$tpl")\" WITH (FORCE)" >/dev/null 2>&1
    done
    # The environments' database roles (odoo_<database>) of this test.
    for role in $(psql -X -A -t -d postgres -c "SELECT rolname FROM pg_roles WHERE rolname LIKE 'odoo\\_e2e\\_${E2E_NAME//-/_}\\_%'" 2>/dev/null); do
      psql -X -q -d postgres -c "DROP OWNED BY \"$role\"" -c "DROP ROLE IF EXISTS \"$role\"" >/dev/null 2>&1 || true
    done
    rm -rf "$WORK"
  else
    echo "kept $WORK and database $CP_DB"
  fi
  exit $rc
}
trap e2e_cleanup EXIT

# A git repository with two Odoo addons, a requirements.txt, and a commit.
make_repo() {
  local repo=$WORK/repo
  mkdir -p "$repo/addons/acme_sale" "$repo/addons/acme_stock"
  cat >"$repo/addons/acme_sale/__manifest__.py" <<'PY'
{"name": "Acme Sale", "version": "17.0.1.0.0", "depends": ["base"], "installable": True}
PY
  cat >"$repo/addons/acme_stock/__manifest__.py" <<'PY'
{"name": "Acme Stock", "version": "17.0.1.0.0", "depends": ["acme_sale"]}
PY
  touch "$repo/addons/acme_sale/__init__.py" "$repo/addons/acme_stock/__init__.py"
  printf 'requests>=2.28\nphonenumbers\n' >"$repo/requirements.txt"
  git -C "$repo" init -q -b main
  git -C "$repo" -c user.email=t@example.com -c user.name=test add -A
  git -C "$repo" -c user.email=t@example.com -c user.name=test commit -q -m "Acme addons"
  REPO=$repo
  SHA=$(git -C "$repo" rev-parse HEAD)
}

# Control-plane database with the extension (local repositories allowed), a
# project with three environments (each with its own port), and the
# repository.
setup_control_plane() {
  PGOPTIONS="-c client_min_messages=warning" psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $CP_DB WITH (FORCE)" -c "CREATE DATABASE $CP_DB" >/dev/null
  # The repositories here are local: the operator allows file (the default
  # is https,ssh), for the sessions of this control plane only.
  psql -X -q -d postgres -c "ALTER DATABASE $CP_DB SET odooops.repo_url_schemes = 'https,ssh,file'" >/dev/null
  make_repo
  PORT_PROD=$(free_port); PORT_STAGING=$(free_port); PORT_DEV=$(free_port)
  local prefix=e2e_${E2E_NAME//-/_}
  cp_psql >/dev/null <<SQL
CREATE EXTENSION odooops;
INSERT INTO ops.projects (slug, name, repo_url) VALUES ('acme', 'Acme', '$REPO');
INSERT INTO ops.environments (project_id, name, stage, branch_pattern, db_name, settings) VALUES
  (1, 'production', 'production', 'main', '${prefix}_prod', '{"http_port": $PORT_PROD}'),
  (1, 'staging', 'staging', 'staging', '${prefix}_staging', '{"http_port": $PORT_STAGING}'),
  (1, 'dev', 'development', 'feature/*', '${prefix}_dev', '{"http_port": $PORT_DEV}');
SQL
  # Workers connect with nothing but the odooops_worker role, as in production.
  PGOPTIONS="-c client_min_messages=warning" psql -X -q -d postgres \
    -c "DO \$\$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'odooops_e2e_worker')
                 THEN CREATE ROLE odooops_e2e_worker LOGIN; END IF; END \$\$" \
    -c "GRANT odooops_worker TO odooops_e2e_worker" >/dev/null
  # As an operator sharing the server between the control plane and the
  # environments must (docs/security.md): only the control plane's own
  # roles may connect to its database, not the environments' Odoo roles.
  psql -X -q -d postgres -c "REVOKE CONNECT ON DATABASE $CP_DB FROM PUBLIC" \
    -c "GRANT CONNECT ON DATABASE $CP_DB TO odooops_worker" >/dev/null
}

# start_worker NAME [extra flags...]: the real binary, in the background,
# as worker NAME, which the control plane binds to the worker login.
start_worker() {
  local name=$1; shift
  scalar "INSERT INTO ops.worker_logins (login, worker_id) VALUES ('odooops_e2e_worker', '$name') ON CONFLICT DO NOTHING" >/dev/null
  "$WORKER_BIN" "${ODOO_FLAGS[@]}" --dsn "dbname=$CP_DB user=odooops_e2e_worker" --worker-id "$name" --state-dir "$STATE" \
    "${STEPS_FLAGS[@]}" --poll-interval 1 --event-flush 0.1 "$@" \
    >>"$WORK/worker-$name.log" 2>&1 &
  WORKER_PIDS+=($!)
  LAST_WORKER_PID=$!
}

# use_podman: podman's Docker Engine API for this test (DOCKER_HOST), with
# no container or image of the project acme before or after it.
use_podman() {
  "$ROOT/tests/harness/podman.sh" setup
  eval "export $("$ROOT/tests/harness/podman.sh" start "$WORK/podman")"
  EXTRA_CLEANUP+=("podman_cleanup" "$ROOT/tests/harness/podman.sh stop $WORK/podman")
  podman_cleanup
}
pm() { "$ROOT/tests/harness/podman.sh" podman "$@"; }
podman_cleanup() {
  local c i
  for c in $(pm ps -aq --filter label=org.odooops.project=acme); do pm rm -f "$c" >/dev/null 2>&1 || true; done
  for i in $(pm images -q --filter label=org.odooops.project=acme); do pm rmi -f "$i" >/dev/null 2>&1 || true; done
}

# rehost WORKER ENV...: the operator moves environments to WORKER
# (ops.move_environment), once it registered: a worker that replaced another
# on the same host takes over its environments, whose files it shares (the
# workers of a test share one state directory).
rehost() {
  local worker=$1 env; shift
  for _ in $(seq 1 100); do
    [ "$(scalar "SELECT count(*) FROM ops.agents WHERE worker_id = '$worker'")" = 1 ] && break
    sleep 0.1
  done
  for env in "$@"; do
    scalar "SELECT 1 FROM ops.move_environment(1, '$env', '$worker', NULL, 'worker replaced on the same host')" >/dev/null
  done
}

# commit MESSAGE: commits everything in the test's repository, sets SHA.
commit() {
  git -C "$REPO" -c user.email=t@example.com -c user.name=test add -A
  git -C "$REPO" -c user.email=t@example.com -c user.name=test commit -qm "$1"
  SHA=$(git -C "$REPO" rev-parse HEAD)
}
# on DB SQL: one value from an environment's (or any) database.
on() { psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$1" -c "$2"; }
# result RUN KEY,SUBKEY: a value of the run's result.
result() { scalar "SELECT result #>> '{$2}' FROM ops.runs WHERE id = $1"; }

# wait_status RUN STATUS[|STATUS] [SECONDS]: waits until the run's status matches.
wait_status() {
  local run=$1 want=$2 secs=${3:-60} st=""
  for _ in $(seq 1 $((secs * 10))); do
    st=$(scalar "SELECT status FROM ops.runs WHERE id = $run")
    [[ "|$want|" == *"|$st|"* ]] && return 0
    sleep 0.1
  done
  show_events "$run" >&2
  fail "run $run is $st after ${secs}s, expected $want"
}

show_events() {
  cp_psql -c "SELECT id, kind, level, coalesce(step, '-'), coalesce(stream, '-'),
                     coalesce(from_status || ' -> ' || to_status, message)
                FROM ops.run_events WHERE run_id = $1 ORDER BY id" | sed 's/^/  /'
}

queue() {  # queue ENV WORKFLOW [METADATA] -> run id
  scalar "SELECT id FROM ops.queue_run(1, '$1', $( [ "$2" = backup ] || [ "$2" = restore ] || [ "$2" = destroy ] && echo NULL || echo "'$SHA'"), 'main', '${3:-{\}}'::jsonb, '$2')"
}

health() { curl -fsS --max-time 3 "http://127.0.0.1:$1/web/health"; }

# start_s3 -> S3_PORT, S3_ENDPOINT: @20minutes/s3rver on loopback (verifies SigV4).
start_s3() {
  S3_PORT=$(free_port)
  S3_ENDPOINT=http://127.0.0.1:$S3_PORT
  node "$ROOT/tests/harness/s3_server.js" "$S3_PORT" "$WORK/s3" "${1:-odooops-backups}" >"$WORK/s3.log" 2>&1 &
  S3_PID=$!
  EXTRA_CLEANUP+=("kill $S3_PID 2>/dev/null")
  for _ in $(seq 1 100); do grep -q listening "$WORK/s3.log" && return 0; sleep 0.1; done
  cat "$WORK/s3.log" >&2
  fail "the S3 server did not start"
}
S3_FLAGS() { echo --s3-endpoint "$S3_ENDPOINT" --s3-access-key S3RVER --s3-secret-key S3RVER; }

# queue_backup ENV -> the run id of a manual backup (ops.create_backup).
queue_backup() {
  scalar "SELECT run_id FROM ops.create_backup(1, '$1', 'manual', '{}')"
}

# backup_of RUN -> the ops.backups id of a backup run.
backup_of() {
  scalar "SELECT id FROM ops.backups WHERE run_id = $1"
}

# queue_restore BACKUP_ID ENV -> run id (ops.restore_backup). A restore into
# production waits for an approval: another member approves it
# (approve_restore).
queue_restore() {
  local env_id restore
  env_id=$(scalar "SELECT id FROM ops.environments WHERE name = '$2'")
  restore=$(scalar "SELECT id FROM ops.restore_backup($1, $env_id)")
  approve_restore "$restore"
  scalar "SELECT run_id FROM ops.restores WHERE id = $restore"
}

# approve APPROVAL_ID: another member (e2e-approver, through JWT claims as
# PostgREST would pass them) approves it, four-eyes.
approve() {
  scalar "INSERT INTO ops.project_members (project_id, user_id, role) VALUES (1, 'e2e-approver', 'admin')
          ON CONFLICT DO NOTHING" >/dev/null
  psql -X -q -v ON_ERROR_STOP=1 -d "$CP_DB" >/dev/null <<SQL
BEGIN;
SELECT set_config('request.jwt.claims', '{"sub": "e2e-approver"}', true);
SELECT ops.decide_approval($1, 'approved', 'end-to-end test');
COMMIT;
SQL
}

# approve_destroy RUN_ID: approves the destroy run (of production) that waits for it.
approve_destroy() {
  local approval
  approval=$(scalar "SELECT id FROM ops.approvals WHERE subject = 'destroy' AND subject_id = $1 AND status = 'pending'")
  [ -n "$approval" ] || fail "destroy run $1 asked for no approval"
  approve "$approval"
}

# approve_restore RESTORE_ID: approves it if it waits for an approval.
approve_restore() {
  local approval
  approval=$(scalar "SELECT approval_id FROM ops.restores WHERE id = $1 AND status = 'pending_approval'")
  [ -z "$approval" ] || approve "$approval"
}

# Fingerprint of an Odoo (stand-in) database's business data.
data_fingerprint() {
  psql -X -A -t -d "$1" -c "SELECT md5(string_agg(id || ':' || name || ':' || coalesce(email, ''), ',' ORDER BY id)) FROM res_partner"
}

# alive PID: the process exists and is not a zombie (PID 1 of a container may
# be slow to reap orphans).
alive() { local st; st=$(ps -o stat= -p "$1" 2>/dev/null | tr -d ' '); [ -n "$st" ] && [[ $st != Z* ]]; }

# enable_github: project 1 is the GitHub repository acme/shop, its webhooks
# signed with a secret of the test's (ops.set_project_secret).
enable_github() {
  GITHUB_SECRET=e2e-hook-secret-$RANDOM
  scalar "UPDATE ops.projects SET repo_full_name = 'acme/shop' WHERE id = 1" >/dev/null
  scalar "SELECT ops.set_project_secret(1, 'github_webhook_secret', '$GITHUB_SECRET')" >/dev/null
}

# github EVENT JSON_BODY -> ops.ingest_github's answer: a delivery as GitHub
# sends it (X-Hub-Signature-256 computed here with the secret, by python's hmac).
github() {
  local sig delivery
  sig=sha256=$(python3 -c 'import hashlib, hmac, sys; print(hmac.new(sys.argv[1].encode(), sys.argv[2].encode(), hashlib.sha256).hexdigest())' "$GITHUB_SECRET" "$2")
  delivery=e2e-$E2E_NAME-$RANDOM$RANDOM
  cp_psql -v event="$1" -v delivery="$delivery" -v sig="$sig" -v body="$2" <<<"SELECT ops.ingest_github(:'event', :'delivery', :'sig', :'body')"
}

# pull_request_event ACTION NUMBER HEAD_REF HEAD_SHA -> the JSON body.
pull_request_event() {
  python3 -c 'import json, sys; a, n, ref, sha = sys.argv[1:]; print(json.dumps({"action": a, "number": int(n),
    "pull_request": {"number": int(n), "state": "open", "head": {"ref": ref, "sha": sha}, "base": {"ref": "main"}},
    "repository": {"full_name": "acme/shop"}, "sender": {"login": "dev"}}))' "$@"
}

# push_event BRANCH SHA -> the JSON body of a push.
push_event() {
  python3 -c 'import json, sys; b, sha = sys.argv[1:]; print(json.dumps({"ref": "refs/heads/" + b, "after": sha, "deleted": False,
    "commits": [{"id": sha}], "repository": {"full_name": "acme/shop"}, "pusher": {"name": "dev"}}))' "$@"
}
