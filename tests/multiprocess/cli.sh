#!/usr/bin/env bash
# The command-line tools against a live server: output and exit codes of
# every script, including refusals, a server that cannot be reached,
# --version, --json listings (parsed), the `odooops` dispatcher; and the
# tools pass shellcheck.
set -euo pipefail
cd "$(dirname "$0")/../.."
DB=odooops_cli
CLI=scripts/odooops
ODOOOPS=$CLI/odooops
TOOLS=(env_create env_wait_ready env_destroy backup restore approve runs logs rebuild plan upgrade shell psql odoo_logs)
fail() { echo "cli: FAIL: $*" >&2; exit 1; }
admin() { psql -X -qAt -v ON_ERROR_STOP=1 -d "$DB" -c "$1"; }
# expect CODE CMD...: runs CMD, checks its exit code, keeps its stdout in $OUT.
expect() {
  local want=$1 got=0
  shift
  OUT=$("$@" 2>"$ERR") || got=$?
  [ "$got" = "$want" ] || fail "$* exited $got, expected $want (stdout: $OUT; stderr: $(cat "$ERR"))"
}
# json_holds WHAT EXPR [NAME=VALUE...]: $OUT parses as JSON (d) and the
# Python expression EXPR holds for it; each NAME is bound to its VALUE.
json_holds() {
  local what=$1 expr=$2
  shift 2
  python3 -c '
import json, sys
d = json.loads(sys.stdin.read())
env = dict(a.split("=", 1) for a in sys.argv[2:])
sys.exit(0 if eval("(" + sys.argv[1] + ")", {"d": d, **env}) else 1)' "$expr" "$@" <<<"$OUT" ||
    fail "$what: $expr does not hold for $OUT"
}

# Shell that other scripts run must be clean.
if command -v shellcheck >/dev/null; then
  out=$(shellcheck -x "$CLI"/*.sh "$ODOOOPS" 2>&1) || fail "shellcheck on $CLI: $out"
  linted="shellcheck clean"
else
  echo "cli: shellcheck is not installed (tests/harness/deps.sh installs it): SKIPPED the lint"
  linted="shellcheck SKIPPED"
fi

PGOPTIONS="-c client_min_messages=warning" psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
ERR=$(mktemp /tmp/odooops-cli-err.XXXXXX)   # this run's own: tests may run side by side
cleanup() {
  PGOPTIONS="-c client_min_messages=warning" psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" \
    -c "DROP ROLE IF EXISTS cli_owner" >/dev/null 2>&1 || true
  rm -f "$ERR"
}
trap cleanup EXIT
admin "CREATE EXTENSION odooops; INSERT INTO ops.projects (slug, name) VALUES ('cli', 'CLI')" >/dev/null
export PGDATABASE=$DB

# Every tool: --help with the exit codes, --version (the release), usage
# errors, and a server that cannot be reached (a socket directory where no
# server listens), directly and through the dispatcher.
version=$(sed -n "s/^default_version = '\(.*\)'/\1/p" control/odooops.control)
[ -n "$version" ] || fail "no default_version in control/odooops.control"
expect 0 "$ODOOOPS" --version
[ "$OUT" = "odooops $version" ] || fail "odooops --version: $OUT"
nowhere=$(mktemp -d /tmp/odooops-cli-nowhere.XXXXXX)
for tool in "${TOOLS[@]}"; do
  expect 0 "$CLI/$tool.sh" --help
  grep -q '^Usage:' <<<"$OUT" || fail "$tool.sh --help has no usage"
  for code in 0 1 64 65 66 69 70 75 77; do
    grep -Eq "^ +$code +[a-z]" <<<"$OUT" || fail "$tool.sh --help does not explain exit code $code: $OUT"
  done
  expect 0 "$CLI/$tool.sh" --version
  [ "$OUT" = "$tool.sh $version" ] || fail "$tool.sh --version: $OUT"
  expect 0 "$ODOOOPS" "${tool//_/-}" --version
  [ "$OUT" = "$tool.sh $version" ] || fail "odooops ${tool//_/-} --version: $OUT"
  expect 64 "$CLI/$tool.sh" --no-such-option
  expect 64 "$CLI/$tool.sh" --dsn
done
args_of() {
  case $1 in
    env_create) echo --project cli --name x --stage development ;;
    env_wait_ready | logs) echo --run 1 ;;
    env_destroy | backup | rebuild) echo --project cli --env dev ;;
    restore) echo --backup 1 --project cli --env dev ;;
    approve) echo --approval 1 ;;
    runs) echo --project cli ;;
    plan) echo --project cli --env dev --sha abcdef1 ;;
    upgrade) echo --project cli --env production --test ;;
    shell | psql | odoo_logs) echo --project cli --env dev --worker-config /dev/null ;;
  esac
}
for tool in "${TOOLS[@]}"; do
  read -ra args <<<"$(args_of "$tool")"
  PGHOST=$nowhere expect 69 "$CLI/$tool.sh" "${args[@]}"
  grep -q "$nowhere" "$ERR" || fail "$tool.sh without a server does not say where it tried: $(cat "$ERR")"
  expect 69 "$CLI/$tool.sh" --dsn "postgresql:///$DB?host=$nowhere" "${args[@]}"
done
PGHOST=$nowhere expect 69 "$ODOOOPS" runs --json
# The post-receive hook reads git's lines on stdin: the same options and
# exit codes (its git push behaviour: tests/multiprocess/post_receive.sh).
expect 0 "$CLI/post_receive.sh" --help
for code in 0 1 64 65 66 69 70 75 77; do
  grep -Eq "^ +$code +[a-z]" <<<"$OUT" || fail "post_receive.sh --help does not explain exit code $code"
done
expect 0 "$ODOOOPS" post-receive --version
[ "$OUT" = "post_receive.sh $version" ] || fail "odooops post-receive --version: $OUT"
expect 64 "$CLI/post_receive.sh" --no-such-option </dev/null
GIT_DIR=$nowhere expect 64 "$CLI/post_receive.sh" </dev/null  # no project: not in a repository
PGHOST=$nowhere expect 69 "$CLI/post_receive.sh" --project cli </dev/null
PGHOST=$nowhere expect 69 "$CLI/backup.sh" --project cli --env dev --list --json
PGHOST=$nowhere expect 69 "$CLI/approve.sh" --pending --json
rmdir "$nowhere"
PGDATABASE=postgres expect 69 "$CLI/runs.sh"   # a database without odooops
grep -q '"ops.runs" does not exist' "$ERR" || fail "runs.sh on a database without odooops: $(cat "$ERR")"
expect 0 "$CLI/demo.sh" --version
[ "$OUT" = "demo.sh $version" ] || fail "demo.sh --version: $OUT"
expect 64 "$CLI/demo.sh" no-such-action
expect 64 "$CLI/runs.sh" --limit
expect 64 "$CLI/runs.sh" --limit many
expect 64 "$ODOOOPS" runs --project
expect 64 "$CLI/env_create.sh" --json --project cli --name x --stage development   # not a listing
expect 64 "$CLI/logs.sh" --run 1 --follow --json

expect 0 "$CLI/env_create.sh" --project cli --name production --stage production --branch-pattern main
expect 0 "$CLI/env_create.sh" --project cli --name staging --stage staging --branch-pattern staging --deploy abc123
grep -q '^run [0-9]' <<<"$OUT" || fail "env_create --deploy printed no run: $OUT"
run=$(sed -n 's/^run //p' <<<"$OUT")
expect 0 "$ODOOOPS" env-create --project cli --name dev --stage development
grep -q '^environment [0-9]' <<<"$OUT" || fail "odooops env-create: $OUT"
expect 64 "$CLI/env_create.sh" --project cli --name x
expect 66 "$CLI/env_create.sh" --project nope --name x --stage development
expect 65 "$CLI/env_create.sh" --project cli --name bad --stage galaxy
expect 65 "$CLI/env_create.sh" --project cli --name production --stage development

expect 0 "$CLI/runs.sh" --project cli
grep -q "^$run deploy queued cli/staging 0 staging abc123" <<<"$OUT" || fail "runs.sh: $OUT"
expect 0 "$CLI/runs.sh" --project cli --json
json_holds "runs.sh --json" \
  'len(d) == 1 and d[0]["id"] == int(run) and d[0]["workflow"] == "deploy" and d[0]["status"] == "queued"
   and d[0]["project"] == "cli" and d[0]["environment"] == "staging" and d[0]["attempt"] == 0
   and d[0]["git_ref"] == "staging" and d[0]["git_sha"] == "abc123" and d[0]["started_at"] is None
   and d[0]["created_at"][:4].isdigit()' run="$run"
expect 0 "$ODOOOPS" runs --project cli --status succeeded --json
json_holds "odooops runs --json with no match" 'd == []'
expect 66 "$ODOOOPS" logs --run 999999

# A worker drives the run while the tools wait and follow it.
expect 75 "$CLI/env_wait_ready.sh" --run "$run" --timeout 1
# The newest line read spans two lines while the run goes on.
( sleep 1; admin "SELECT ops.claim_next_run('cli-worker'); SELECT ops.start_run($run, 'cli-worker', 1);
                  SELECT ops.append_event($run, 'info', E'building\\nstill building', '{}', 'cli-worker', 1)" >/dev/null
  sleep 1; admin "SELECT ops.finish_run($run, 'succeeded', '{}', 'cli-worker', 1)" >/dev/null ) &
expect 0 "$CLI/logs.sh" --run "$run" --follow --interval 0.2
wait
grep -q 'building' <<<"$OUT" || fail "logs --follow missed the log line: $OUT"
grep -qx 'still building' <<<"$OUT" || fail "logs --follow missed the log line's second line: $OUT"
[ "$(grep -c building <<<"$OUT")" = 2 ] || fail "logs --follow printed a line twice: $OUT"
grep -q 'running -> succeeded' <<<"$OUT" || fail "logs --follow missed the final transition: $OUT"
# A message that string building would break: quotes, a backslash, a tab, a newline.
admin "INSERT INTO ops.run_events (run_id, attempt, kind, level, message, step, stream)
       VALUES ($run, 1, 'log', 'warning', E'say \"hi\"\\\\ \\t\\nnext line', 'build', 'stderr')" >/dev/null
expect 0 "$ODOOOPS" logs --run "$run" --json
json_holds "logs --json" \
  'd[-1]["message"] == "say \"hi\"\\ \t\nnext line" and d[-1]["level"] == "warning" and d[-1]["kind"] == "log"
   and d[-1]["step"] == "build" and d[-1]["stream"] == "stderr"
   and any(e["kind"] == "transition" and e["to_status"] == "succeeded" for e in d)
   and [e["id"] for e in d] == sorted(e["id"] for e in d)'
expect 0 "$CLI/env_wait_ready.sh" --project cli --env staging
[ "$OUT" = "run $run succeeded" ] || fail "env_wait_ready: $OUT"
failed=$(admin "SELECT id FROM ops.queue_run((SELECT id FROM ops.projects WHERE slug = 'cli'), 'dev', 'abc124', 'main', '{}', 'build')")
admin "SELECT ops.finish_run($failed, 'cancelled')" >/dev/null
expect 1 "$CLI/env_wait_ready.sh" --run "$failed"
expect 1 "$CLI/logs.sh" --run "$failed" --follow
expect 66 "$CLI/logs.sh" --run 999999
expect 66 "$CLI/env_wait_ready.sh" --run 999999

# Backups: created, limited per day, listed.
admin "UPDATE ops.environments SET settings = '{\"manual_backups_per_day\": 1}' WHERE name = 'production'" >/dev/null
expect 0 "$CLI/backup.sh" --project cli --env production
grep -q '^backup [0-9]* run [0-9]* expires ' <<<"$OUT" || fail "backup.sh: $OUT"
backup=$(awk '{print $2}' <<<"$OUT")
expect 65 "$CLI/backup.sh" --project cli --env production
expect 66 "$CLI/backup.sh" --project cli --env nowhere
expect 0 "$CLI/backup.sh" --project cli --env production --list
grep -q "^$backup manual pending" <<<"$OUT" || fail "backup --list: $OUT"
expect 0 "$ODOOOPS" backup --project cli --env production --list --json
json_holds "backup --list --json" \
  'len(d) == 1 and d[0]["id"] == int(backup) and d[0]["backup_type"] == "manual" and d[0]["status"] == "pending"
   and d[0]["size_bytes"] is None and d[0]["expires_at"] is not None' backup="$backup"
expect 0 "$CLI/backup.sh" --project cli --env staging --list --json
json_holds "backup --list --json without backups" 'd == []'
expect 66 "$CLI/backup.sh" --project nope --env staging --list --json

# Restores: refused while the backup is unfinished; staging at once;
# production through a four-eyes approval.
expect 65 "$CLI/restore.sh" --backup "$backup" --project cli --env staging
admin "UPDATE ops.backups SET status = 'completed', location = 'file:///b', size_bytes = 1,
              sha256 = repeat('a', 64), completed_at = now() WHERE id = $backup" >/dev/null
expect 0 "$CLI/restore.sh" --backup "$backup" --project cli --env staging
grep -q '^restore [0-9]* queued run [0-9]*$' <<<"$OUT" || fail "restore to staging: $OUT"
expect 0 "$CLI/restore.sh" --backup "$backup" --project cli --env production
grep -q '^restore [0-9]* pending_approval approval [0-9]*$' <<<"$OUT" || fail "restore to production: $OUT"
approval=$(awk '{print $5}' <<<"$OUT")
expect 66 "$CLI/restore.sh" --backup 999999 --project cli --env staging
expect 0 "$CLI/approve.sh" --pending
grep -q "^$approval restore" <<<"$OUT" || fail "approve --pending: $OUT"
expect 0 "$ODOOOPS" approve --pending --project cli --json
json_holds "approve --pending --json" \
  'len(d) == 1 and d[0]["id"] == int(approval) and d[0]["subject"] == "restore" and d[0]["project"] == "cli"
   and d[0]["environment"] == "production" and d[0]["status"] == "pending" and d[0]["requested_by"]' approval="$approval"
expect 0 "$CLI/approve.sh" --pending --project nope --json
json_holds "approve --pending --json of another project" 'd == []'
expect 77 "$CLI/approve.sh" --approval "$approval"   # the requester cannot approve
PGOPTIONS="-c client_min_messages=warning" psql -X -q -d postgres \
  -c "DO \$\$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'cli_owner') THEN CREATE ROLE cli_owner LOGIN; END IF; END \$\$" \
  -c "GRANT odooops_api TO cli_owner"
admin "INSERT INTO ops.project_members (project_id, user_id, role) SELECT id, 'cli_owner', 'owner' FROM ops.projects WHERE slug = 'cli'"
PGUSER=cli_owner expect 0 "$CLI/approve.sh" --approval "$approval" --reason "looks right"
[ "$OUT" = "approval $approval approved" ] || fail "approve: $OUT"
PGUSER=cli_owner expect 65 "$CLI/approve.sh" --approval "$approval"
PGUSER=cli_owner expect 66 "$CLI/approve.sh" --approval 999999
admin "INSERT INTO ops.project_members (project_id, user_id, role) SELECT id, 'cli_viewer', 'viewer' FROM ops.projects WHERE slug = 'cli'"
admin "INSERT INTO ops.user_logins (login, user_id) VALUES ('cli_owner', 'cli_viewer')"   # now a viewer
PGUSER=cli_owner expect 77 "$CLI/backup.sh" --project cli --env production
PGUSER=cli_owner expect 77 "$CLI/env_destroy.sh" --project cli --env staging
PGUSER=cli_owner expect 77 "$CLI/rebuild.sh" --project cli --env dev
PGUSER=cli_owner expect 77 "$CLI/upgrade.sh" --project cli --env production --test
PGUSER=cli_owner expect 77 "$CLI/plan.sh" --project cli --env production --sha abcdef1
admin "DELETE FROM ops.user_logins"

# Deploy plans and upgrades (docs/upgrades.md): a plan needs a revision; an
# upgrade is for production, tested on a backup it needs first.
expect 65 "$CLI/plan.sh" --project cli --env dev
expect 0 "$CLI/plan.sh" --project cli --env dev --sha abcdef1
[[ $OUT =~ ^run\ [0-9]+$ ]] || fail "plan: $OUT"
expect 0 "$CLI/plan.sh" --show "${OUT#run }"
json_holds "plan --show" 'd["status"] == "queued" and d["plan"] is None'
expect 65 "$CLI/upgrade.sh" --project cli --env dev --test
expect 65 "$CLI/upgrade.sh" --project cli --env production --test
grep -q 'no completed backup' "$ERR" || fail "upgrade test without a backup: $(cat "$ERR")"
expect 64 "$CLI/upgrade.sh" --project cli --env production
expect 66 "$CLI/upgrade.sh" --project cli --env nowhere --test
expect 65 "$CLI/upgrade.sh" --project cli --env dev --production
grep -q 'is development' "$ERR" || fail "upgrade of development: $(cat "$ERR")"

# Rebuild: never production; an environment without a release has nothing to rebuild.
expect 65 "$CLI/rebuild.sh" --project cli --env production
grep -q 'production is never rebuilt' "$ERR" || fail "rebuild of production: $(cat "$ERR")"
expect 65 "$CLI/rebuild.sh" --project cli --env dev
grep -q 'has no release to rebuild' "$ERR" || fail "rebuild without a release: $(cat "$ERR")"
expect 66 "$CLI/rebuild.sh" --project cli --env nowhere
expect 66 "$CLI/rebuild.sh" --project nowhere --env dev

# Destroy: production needs --force.
expect 65 "$CLI/env_destroy.sh" --project cli --env production
expect 0 "$CLI/env_destroy.sh" --project cli --env dev
grep -q '^run [0-9]' <<<"$OUT" || fail "env_destroy: $OUT"
expect 66 "$CLI/env_destroy.sh" --project cli --env dev
expect 64 "$CLI/env_destroy.sh" --project cli
# With --force, production waits for another member's approval.
expect 0 "$CLI/env_destroy.sh" --project cli --env production --force
grep -q '^approval [0-9]' <<<"$OUT" || fail "env_destroy of production names no approval: $OUT"

approval=$(sed -n 's/^approval \([0-9]*\) .*/\1/p' <<<"$OUT")
expect 0 "$CLI/approve.sh" --pending --json   # the restore's approval was decided
json_holds "approve --pending --json once decided" \
  'len(d) == 1 and d[0]["id"] == int(approval) and d[0]["subject"] == "destroy"' approval="$approval"

# Several runs: newest first, --limit applies.
expect 0 "$ODOOOPS" runs --project cli --limit 3 --json
json_holds "runs --json --limit 3" \
  'len(d) == 3 and [r["id"] for r in d] == sorted((r["id"] for r in d), reverse=True)
   and d[0]["workflow"] == "destroy"'
# A lock that does not come within lock_timeout: worth trying again (75).
psql -X -q -d "$DB" -c "BEGIN; LOCK ops.runs; SELECT pg_sleep(60); COMMIT" >/dev/null 2>&1 &
locker=$!
for _ in $(seq 1 100); do
  [ "$(admin "SELECT count(*) FROM pg_locks WHERE relation = 'ops.runs'::regclass AND mode = 'AccessExclusiveLock' AND granted")" = 1 ] && break
  sleep 0.1
done
PGOPTIONS="-c lock_timeout=100ms" expect 75 "$CLI/runs.sh" --project cli
admin "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE query LIKE 'BEGIN; LOCK ops.runs%'" >/dev/null
wait "$locker" || true

echo "cli: OK: every tool's output, exit codes, --version and --json, through the dispatcher too; $linted"
