#!/usr/bin/env bash
# The control plane survives pg_dump and pg_restore: a database with data
# written through the API (projects, environments, members, runs and their
# events, a completed backup, approvals, the operator's own role and
# policies, an environment denial, a schedule, webhooks) is dumped (custom
# format) and restored into a new database of a fresh cluster whose clock is
# two months ahead (a control plane is restored long after it was
# installed), where every ops table has the same rows, every run_events
# partition is back, every sequence has the same position, and the
# operator's policies still work. The roles and policies that come with
# odooops are not part of the dump: CREATE EXTENSION brings them back
# (extension/sql/90_dump.sql); rows restored from the dump set off no
# approval, webhook or schedule again.
#
# Needs PGHOST/PGPORT/PGUSER of a server with odooops preloaded, and
# libfaketime (tests/harness/cluster.sh). DUMP_RESTORE_PORT: the fresh
# cluster's port (default: a free one).
set -euo pipefail
cd "$(dirname "$0")/../.."
SRC=odooops_dump_src
DST=odooops_dump_dst
WORK=$(mktemp -d /tmp/odooops-dump.XXXXXX)
chmod 755 "$WORK"
fail() { echo "dump_restore: FAIL: $*" >&2; exit 1; }
sql() { local db=$1; shift; psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$db" "$@"; }
cleanup() {
  PGOPTIONS="-c client_min_messages=warning" psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $SRC WITH (FORCE)" >/dev/null 2>&1 || true
  tests/harness/cluster.sh stop "$WORK/pg" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
PGOPTIONS="-c client_min_messages=warning" psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $SRC WITH (FORCE)" -c "CREATE DATABASE $SRC"
# The fresh cluster the dump is restored into, two months ahead.
port=${DUMP_RESTORE_PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
CLUSTER_FAKETIME="@$(date -u -d '+62 days' '+%Y-%m-%d %H:%M:%S')" tests/harness/cluster.sh start "$WORK/pg" "$port" >/dev/null
dst() { (unset PGHOST PGPORT; source "$WORK/pg/env"; "$@"); }
dst psql -X -q -d postgres -c "CREATE DATABASE $DST"

# as USER SQL: runs SQL as the identified user USER (JWT claims, as
# PostgREST passes them) and prints its result.
as() {
  sql "$SRC" -c "BEGIN" -c "SET LOCAL request.jwt.claims = '{\"sub\": \"$1\"}'" -c "$2" -c "COMMIT"
}

sql "$SRC" >/dev/null <<'SQL'
CREATE EXTENSION odooops;
-- The months the scheduler keeps (an install makes none).
SELECT ops.ensure_run_event_partitions(2);
INSERT INTO ops.projects (slug, name, repo_url) VALUES ('dump', 'Dump', 'https://example.com/dump.git');
INSERT INTO ops.environments (project_id, name, stage, branch_pattern, db_name) VALUES
  (1, 'production', 'production', 'main', 'dump_prod'),
  (1, 'staging', 'staging', 'staging', 'dump_staging'),
  (1, 'dev', 'development', 'feature/*', 'dump_dev');
INSERT INTO ops.project_members (project_id, user_id, role) VALUES
  (1, 'alice', 'owner'), (1, 'bob', 'admin'), (1, 'carol', 'developer');
-- The operator's own role and policies, and a denial for one user.
INSERT INTO ops.roles (name, rank, description) VALUES ('releaser', 60, 'Deploys production');
INSERT INTO ops.policies (role, permission, stage) VALUES
  ('releaser', 'project.read', NULL), ('releaser', 'run.deploy', 'production'),
  ('developer', 'backup.create', 'staging');
INSERT INTO ops.project_members (project_id, user_id, role) VALUES (1, 'dave', 'releaser');
INSERT INTO ops.env_permissions (environment_id, user_id, permission, effect) VALUES (3, 'carol', 'run.cancel', 'deny');
INSERT INTO ops.worker_logins (login, worker_id) VALUES (current_user, 'dump-w1');
-- Every event is delivered to a webhook; production deploys wait for approval.
INSERT INTO ops.webhook_subscriptions (name, url, project_id) VALUES ('all', 'https://hooks.example.com/odooops', 1);
UPDATE ops.projects SET settings = '{"production_deploy_approval": true}' WHERE id = 1;
-- A nightly backup schedule and a retention policy.
INSERT INTO ops.backup_schedules (environment_id, cron_expr) VALUES (1, '0 3 * * *');
INSERT INTO ops.backup_retention (environment_id, keep_daily) VALUES (1, 10);
SQL

# A run with its events: a build claimed, started, logging and finished.
run=$(as carol "SELECT id FROM ops.queue_run(1, 'dev', 'abcd01', 'feature/x', '{}', 'build')")
sql "$SRC" >/dev/null <<SQL
SELECT ops.claim_runs('dump-w1', 1, 300, ARRAY['build']);
SELECT ops.start_run($run, 'dump-w1', 1, 300);
SELECT ops.append_events($run, '[{"level": "info", "message": "compiling"}, {"level": "warning", "message": "slow"}]', 'dump-w1', 1);
SELECT ops.finish_run($run, 'succeeded', '{"image": "r1"}', 'dump-w1', 1);
-- An event of a month without a partition waits in the default partition.
INSERT INTO ops.run_events (run_id, created_at, kind, level, message) VALUES ($run, now() - interval '3 years', 'log', 'info', 'old');
SQL
# A backup of production, completed by its worker; the custom policy lets
# carol back up staging.
backup=$(as bob "SELECT backup_id FROM ops.create_backup(1, 'production', 'manual')")
as carol "SELECT backup_id FROM ops.create_backup(1, 'staging', 'manual')" >/dev/null
sql "$SRC" >/dev/null <<SQL
SELECT ops.claim_next_backup('dump-w1');
SELECT ops.complete_backup($backup, 'dump-w1', 1, 'file:///s/backups/dump/production/b/db.dump', 10, repeat('a', 64),
  '{"backup": {"filestore": {"location": "file:///s/backups/dump/production/b/filestore.tar", "size_bytes": 1, "sha256": "$(printf 'b%.0s' {1..64})"}}}');
SQL
# Approvals: a production restore approved by another member, one rejected.
approved=$(as alice "SELECT approval_id FROM ops.restore_backup($backup, 1)")
as bob "SELECT ops.decide_approval($approved, 'approved', 'four eyes')" >/dev/null
rejected=$(as alice "SELECT approval_id FROM ops.restore_backup($backup, 1)")
as bob "SELECT ops.decide_approval($rejected, 'rejected', 'not now')" >/dev/null
as alice "SELECT approval_id FROM ops.restore_backup($backup, 1)" >/dev/null   # still pending
# A production deploy waiting for its approval, and one approved.
as alice "SELECT id FROM ops.queue_run(1, 'production', 'abcd02', 'main', '{}', 'deploy')" >/dev/null
deploy=$(as alice "SELECT id FROM ops.queue_run(1, 'production', 'abcd03', 'main', '{}', 'deploy')")
as bob "SELECT ops.decide_approval(a.id, 'approved') FROM ops.approvals a WHERE a.subject = 'deploy' AND a.subject_id = $deploy" >/dev/null
[ "$(sql "$SRC" -c "SELECT count(*) FROM ops.webhook_deliveries")" -gt 0 ] || fail "no webhook delivery was queued"
as alice "SELECT id FROM ops.destroy_environment(1, 'production', 'moving')" >/dev/null
[ "$(sql "$SRC" -c "SELECT count(*) FROM ops.run_events")" -gt 4 ] || fail "the source has too few run events"

# Every ops table's rows (md5 of the ordered rows; partitions through their
# parent) and every sequence's position. The rows that come with odooops
# (shipped) are CREATE EXTENSION's of the new database: all but their
# creation time must be equal.
fingerprint() {
  psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$1" <<'SQL'
CREATE FUNCTION pg_temp.rows_md5(rel regclass) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  shipped boolean := EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = rel AND a.attname = 'shipped');
  h text;
BEGIN
  EXECUTE format('SELECT md5(coalesce(string_agg(r, E''\n'' ORDER BY r), '''')) || '' '' || count(*)
                    FROM (SELECT CASE WHEN %s THEN (to_jsonb(t) - ''created_at'')::text ELSE t::text END AS r FROM %s t) x',
                 CASE WHEN shipped THEN 't.shipped' ELSE 'false' END, rel)
    INTO h;
  RETURN h;
END $$;
SELECT 'table ' || c.relname || ' ' || pg_temp.rows_md5(c.oid)
  FROM pg_class c WHERE c.relnamespace = 'ops'::regnamespace AND c.relkind IN ('r', 'p') AND NOT c.relispartition
UNION ALL
SELECT 'sequence ' || s.sequencename || ' ' || coalesce(s.last_value::text, 'unused')
  FROM pg_sequences s WHERE s.schemaname = 'ops'
ORDER BY 1;
SQL
}
# The run_events partitions (the restored database may hold more months).
partitions() {
  psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$1" -c "SELECT c.relname || ' ' || pg_get_expr(c.relpartbound, c.oid)
    FROM pg_class c WHERE c.relnamespace = 'ops'::regnamespace AND c.relispartition ORDER BY 1"
}
fingerprint "$SRC" >"$WORK/src.txt"
partitions "$SRC" >"$WORK/src-partitions.txt"
grep -q '^run_events_[0-9]' "$WORK/src-partitions.txt" || fail "the source has no monthly run_events partition"

pg_dump -Fc -d "$SRC" -f "$WORK/cp.dump" 2>"$WORK/dump.err" || { cat "$WORK/dump.err" >&2; fail "pg_dump failed"; }
if ! dst pg_restore --exit-on-error -d "$DST" "$WORK/cp.dump" 2>"$WORK/restore.err"; then
  cat "$WORK/restore.err" >&2
  fail "pg_restore of the control plane failed: $(grep -m1 ERROR "$WORK/restore.err" || tail -n 1 "$WORK/restore.err")"
fi
dst fingerprint "$DST" >"$WORK/dst.txt"
dst partitions "$DST" >"$WORK/dst-partitions.txt"
if ! diff -u "$WORK/src.txt" "$WORK/dst.txt" >"$WORK/diff.txt"; then
  cat "$WORK/diff.txt" >&2
  fail "the restored control plane differs from the dumped one"
fi
[ "$(grep -c '^table ' "$WORK/src.txt")" -gt 20 ] || fail "too few ops tables compared"
missing=$(comm -23 "$WORK/src-partitions.txt" "$WORK/dst-partitions.txt")
[ -z "$missing" ] || fail "run_events partitions missing after the restore: $missing"

# The operator's policy survived and still grants: dave (releaser) may
# deploy production; the shipped rows are there once each.
[ "$(dst sql "$DST" -c "SELECT count(*) FROM ops.policies WHERE role = 'releaser' AND permission = 'run.deploy' AND stage = 'production' AND NOT shipped")" = 1 ] \
  || fail "the custom policy releaser/run.deploy/production was lost"
[ "$(dst sql "$DST" -c "SELECT count(*) FROM ops.policies WHERE shipped")" = "$(sql "$SRC" -c "SELECT count(*) FROM ops.policies WHERE shipped")" ] \
  || fail "the shipped policies differ after the restore"
d=$(dst sql "$DST" -c "BEGIN" -c "SET LOCAL request.jwt.claims = '{\"sub\": \"dave\"}'" \
      -c "SELECT ops.user_has_permission(1, 'run.deploy', 1)" -c "ROLLBACK")
[ "$d" = t ] || fail "the custom policy no longer lets dave deploy production (got '$d')"
echo "dump_restore: $(grep -c '^table ' "$WORK/src.txt") tables and $(grep -c '^sequence ' "$WORK/src.txt") sequences equal after pg_dump and pg_restore into a fresh cluster two months ahead; custom policies kept"
