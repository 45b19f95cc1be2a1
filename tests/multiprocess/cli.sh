#!/usr/bin/env bash
# The command-line tools against a live server: output and exit codes of
# every script, including refusals.
set -euo pipefail
cd "$(dirname "$0")/../.."
DB=odooops_cli
CLI=scripts/odooops
fail() { echo "cli: FAIL: $*" >&2; exit 1; }
admin() { psql -X -qAt -v ON_ERROR_STOP=1 -d "$DB" -c "$1"; }
# expect CODE CMD...: runs CMD, checks its exit code, keeps its stdout in $OUT.
expect() {
  local want=$1 got=0
  shift
  OUT=$("$@" 2>/tmp/odooops-cli.err) || got=$?
  [ "$got" = "$want" ] || fail "$* exited $got, expected $want (stdout: $OUT; stderr: $(cat /tmp/odooops-cli.err))"
}

PGOPTIONS="-c client_min_messages=warning" psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
cleanup() {
  PGOPTIONS="-c client_min_messages=warning" psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" \
    -c "DROP ROLE IF EXISTS cli_owner" >/dev/null 2>&1 || true
}
trap cleanup EXIT
admin "CREATE EXTENSION odooops; INSERT INTO ops.projects (slug, name) VALUES ('cli', 'CLI')" >/dev/null
export PGDATABASE=$DB

for tool in env_create env_wait_ready env_destroy backup restore approve runs logs; do
  expect 0 "$CLI/$tool.sh" --help
  grep -q '^Usage:' <<<"$OUT" || fail "$tool.sh --help has no usage"
done

expect 0 "$CLI/env_create.sh" --project cli --name production --stage production --branch-pattern main
expect 0 "$CLI/env_create.sh" --project cli --name staging --stage staging --branch-pattern staging --deploy abc123
grep -q '^run [0-9]' <<<"$OUT" || fail "env_create --deploy printed no run: $OUT"
run=$(sed -n 's/^run //p' <<<"$OUT")
expect 0 "$CLI/env_create.sh" --project cli --name dev --stage development
expect 2 "$CLI/env_create.sh" --project cli --name x
expect 3 "$CLI/env_create.sh" --project nope --name x --stage development
expect 5 "$CLI/env_create.sh" --project cli --name bad --stage galaxy
expect 5 "$CLI/env_create.sh" --project cli --name production --stage development

expect 0 "$CLI/runs.sh" --project cli
grep -q "^$run deploy queued cli/staging 0 staging abc123" <<<"$OUT" || fail "runs.sh: $OUT"

# A worker drives the run while the tools wait and follow it.
expect 6 "$CLI/env_wait_ready.sh" --run "$run" --timeout 1
( sleep 1; admin "SELECT ops.claim_next_run('cli-worker'); SELECT ops.start_run($run, 'cli-worker', 1);
                  SELECT ops.append_event($run, 'info', 'building', '{}', 'cli-worker', 1);
                  SELECT ops.finish_run($run, 'succeeded', '{}', 'cli-worker', 1)" >/dev/null ) &
expect 0 "$CLI/logs.sh" --run "$run" --follow --interval 0.2
wait
grep -q 'building' <<<"$OUT" || fail "logs --follow missed the log line: $OUT"
grep -q 'running -> succeeded' <<<"$OUT" || fail "logs --follow missed the final transition: $OUT"
expect 0 "$CLI/env_wait_ready.sh" --project cli --env staging
[ "$OUT" = "run $run succeeded" ] || fail "env_wait_ready: $OUT"
failed=$(admin "SELECT id FROM ops.queue_run((SELECT id FROM ops.projects WHERE slug = 'cli'), 'dev', 'abc124', 'main', '{}', 'build')")
admin "SELECT ops.finish_run($failed, 'cancelled')" >/dev/null
expect 1 "$CLI/env_wait_ready.sh" --run "$failed"
expect 1 "$CLI/logs.sh" --run "$failed" --follow
expect 3 "$CLI/logs.sh" --run 999999
expect 3 "$CLI/env_wait_ready.sh" --run 999999

# Backups: created, limited per day, listed.
admin "UPDATE ops.environments SET settings = '{\"manual_backups_per_day\": 1}' WHERE name = 'production'" >/dev/null
expect 0 "$CLI/backup.sh" --project cli --env production
grep -q '^backup [0-9]* run [0-9]* expires ' <<<"$OUT" || fail "backup.sh: $OUT"
backup=$(awk '{print $2}' <<<"$OUT")
expect 5 "$CLI/backup.sh" --project cli --env production
expect 3 "$CLI/backup.sh" --project cli --env nowhere
expect 0 "$CLI/backup.sh" --project cli --env production --list
grep -q "^$backup manual pending" <<<"$OUT" || fail "backup --list: $OUT"

# Restores: refused while the backup is unfinished; staging at once;
# production through a four-eyes approval.
expect 5 "$CLI/restore.sh" --backup "$backup" --project cli --env staging
admin "UPDATE ops.backups SET status = 'completed', location = 'file:///b', size_bytes = 1,
              sha256 = repeat('a', 64), completed_at = now() WHERE id = $backup" >/dev/null
expect 0 "$CLI/restore.sh" --backup "$backup" --project cli --env staging
grep -q '^restore [0-9]* queued run [0-9]*$' <<<"$OUT" || fail "restore to staging: $OUT"
expect 0 "$CLI/restore.sh" --backup "$backup" --project cli --env production
grep -q '^restore [0-9]* pending_approval approval [0-9]*$' <<<"$OUT" || fail "restore to production: $OUT"
approval=$(awk '{print $5}' <<<"$OUT")
expect 3 "$CLI/restore.sh" --backup 999999 --project cli --env staging
expect 0 "$CLI/approve.sh" --pending
grep -q "^$approval restore" <<<"$OUT" || fail "approve --pending: $OUT"
expect 4 "$CLI/approve.sh" --approval "$approval"   # the requester cannot approve
PGOPTIONS="-c client_min_messages=warning" psql -X -q -d postgres \
  -c "DO \$\$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'cli_owner') THEN CREATE ROLE cli_owner LOGIN; END IF; END \$\$" \
  -c "GRANT odooops_api TO cli_owner"
admin "INSERT INTO ops.project_members (project_id, user_id, role) SELECT id, 'cli_owner', 'owner' FROM ops.projects WHERE slug = 'cli'"
PGUSER=cli_owner expect 0 "$CLI/approve.sh" --approval "$approval" --reason "looks right"
[ "$OUT" = "approval $approval approved" ] || fail "approve: $OUT"
PGUSER=cli_owner expect 5 "$CLI/approve.sh" --approval "$approval"
PGUSER=cli_owner expect 3 "$CLI/approve.sh" --approval 999999
admin "INSERT INTO ops.project_members (project_id, user_id, role) SELECT id, 'cli_viewer', 'viewer' FROM ops.projects WHERE slug = 'cli'"
admin "INSERT INTO ops.user_logins (login, user_id) VALUES ('cli_owner', 'cli_viewer')"   # now a viewer
PGUSER=cli_owner expect 4 "$CLI/backup.sh" --project cli --env production
PGUSER=cli_owner expect 4 "$CLI/env_destroy.sh" --project cli --env staging
admin "DELETE FROM ops.user_logins"

# Destroy: production needs --force.
expect 5 "$CLI/env_destroy.sh" --project cli --env production
expect 0 "$CLI/env_destroy.sh" --project cli --env dev
grep -q '^run [0-9]' <<<"$OUT" || fail "env_destroy: $OUT"
expect 3 "$CLI/env_destroy.sh" --project cli --env dev
expect 2 "$CLI/env_destroy.sh" --project cli
# With --force, production waits for another member's approval.
expect 0 "$CLI/env_destroy.sh" --project cli --env production --force
grep -q '^approval [0-9]' <<<"$OUT" || fail "env_destroy of production names no approval: $OUT"

echo "cli: OK: every tool's output and exit codes"
