#!/usr/bin/env bash
# The post-receive hook in a real bare repository: `git push` to it queues
# the deploy run of the pushed commit (creating the branch's environment),
# a deleted branch queues its teardown, and a push the pushing login may not
# deploy queues nothing. The hook connects as that login (git config
# odooops.dsn), which is its only authentication.
#
# Needs PGHOST/PGPORT/PGUSER of a server with odooops preloaded.
set -euo pipefail
DB=odooops_post_receive
ROLE=odooops_git_pusher
here=$(cd "$(dirname "$0")/../.." && pwd)
fail() { echo "post_receive: FAIL: $*" >&2; exit 1; }
sql() { psql -X -qAt -v ON_ERROR_STOP=1 -d "$DB" "$@"; }
work=$(mktemp -d)
cleanup() {
  psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
  psql -X -q -d postgres -c "DROP ROLE IF EXISTS $ROLE" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

PGOPTIONS="-c client_min_messages=warning" psql -X -q -d postgres \
  -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "DROP ROLE IF EXISTS $ROLE" \
  -c "CREATE DATABASE $DB" -c "CREATE ROLE $ROLE LOGIN"
sql <<SQL
CREATE EXTENSION odooops;
GRANT odooops_api TO $ROLE;
INSERT INTO ops.projects (slug, name) VALUES ('hooked', 'Hooked');
INSERT INTO ops.environments (project_id, name, stage, branch_pattern, db_name) VALUES
  (1, 'production', 'production', 'main', 'hooked_prod'),
  (1, 'development', 'development', 'feature/**', 'hooked_dev_template');
INSERT INTO ops.project_members (project_id, user_id, role) VALUES (1, '$ROLE', 'developer');
SQL

# The bare repository, its hook, and a clone to push from.
git init -q --bare -b main "$work/hooked.git"
ln -s "$here/scripts/odooops/post_receive.sh" "$work/hooked.git/hooks/post-receive"
git -C "$work/hooked.git" config odooops.project hooked
git -C "$work/hooked.git" config odooops.dsn \
  "host=${PGHOST:-localhost} port=${PGPORT:-5432} dbname=$DB user=$ROLE"
git clone -q "$work/hooked.git" "$work/clone" 2>/dev/null
g() { git -C "$work/clone" -c user.name=Dev -c user.email=dev@example.com "$@"; }

# A feature branch: its environment is created and its commit deployed.
g checkout -q -b feature/login
echo one > "$work/clone/file"
g add file
g commit -q -m one
sha=$(g rev-parse HEAD)
out=$(g push -q origin feature/login 2>&1) || fail "git push failed: $out"
grep -q 'odooops: .*"dev-feature-login"' <<<"$out" || fail "the hook did not answer with the environment: $out"
got=$(sql -c "SELECT e.name || ' ' || r.workflow || ' ' || r.status || ' ' || r.git_sha || ' ' || r.git_ref
                     || ' ' || (r.metadata ->> 'source') || ' ' || (r.metadata ->> 'pusher')
                FROM ops.runs r JOIN ops.environments e ON e.id = r.environment_id ORDER BY r.id")
# A development branch is tested before its deploy (docs/workflow.md).
[ "$got" = "dev-feature-login test queued $sha feature/login git $ROLE
dev-feature-login deploy queued $sha feature/login git $ROLE" ] || fail "runs after the push: $got"

# Pushed again: a second run of the new commit.
echo two > "$work/clone/file"
g commit -q -am two
sha2=$(g rev-parse HEAD)
g push -q origin feature/login >/dev/null 2>&1 || fail "second push failed"
[ "$(sql -c "SELECT count(*) FROM ops.runs WHERE git_sha = '$sha2' AND workflow = 'deploy'")" = 1 ] \
  || fail "the second push queued no run of $sha2"

# main is production: a developer may not deploy it, so nothing is queued
# (the push itself is not undone: post-receive runs after the refs moved).
before=$(sql -c "SELECT count(*) FROM ops.runs")
out=$(g push -q origin feature/login:main 2>&1) || fail "git push to main failed: $out"
grep -q 'permission denied: run.deploy' <<<"$out" || fail "the hook did not report the refusal: $out"
[ "$(sql -c "SELECT count(*) FROM ops.runs")" = "$before" ] || fail "a refused push queued a run"

# The branch deleted: its environment is torn down.
out=$(g push -q origin :feature/login 2>&1) || fail "deleting the branch failed: $out"
got=$(sql -c "SELECT e.status || ' ' || r.workflow FROM ops.runs r JOIN ops.environments e ON e.id = r.environment_id
               WHERE e.name = 'dev-feature-login' ORDER BY r.id DESC LIMIT 1")
[ "$got" = "destroying destroy" ] || fail "after the branch deletion: $got ($out)"

echo "post_receive: OK: git push to a bare repository queues, refuses and tears down through the hook"
