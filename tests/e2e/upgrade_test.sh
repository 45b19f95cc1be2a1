#!/usr/bin/env bash
# Upgrades tried before they happen (docs/upgrades.md).
# 1. A deploy plan: a release that bumps one module's version and adds a
#    new module lists exactly those as update and install, read from
#    production's database without changing it; queued by itself for a
#    production deploy waiting for its approval, it is listed with the
#    approval (odooops approve --pending) and names what that deploy then does.
# 2. Upgrade tests with two stand-in upgrade hooks the operator gives the
#    worker (--upgrade-hook): one that changes the schema (a column in the
#    copy of production's latest backup, and base's version), one that
#    fails. Production keeps its schema, data and Odoo; each copy is dropped.
# 3. Production upgrades with the same hooks, each after an approval and a
#    pre-deploy backup: the failing one puts production back as it was,
#    the other leaves production on the upgraded database.
# The Odoo is the stand-in (tests/harness/odoo_standin.py), not Odoo.
source "$(dirname "$0")/lib.sh"
setup_control_plane
PROD=e2e_upgrade_test_prod
CLI=$ROOT/scripts/odooops/odooops
export ODOOOPS_DSN="dbname=$CP_DB"
# json_of JSON KEY: the value of KEY as JSON.
json_of() { python3 -c 'import json, sys; print(json.dumps(json.loads(sys.argv[1]).get(sys.argv[2])))' "$1" "$2"; }

# The operator's stand-in hooks: they get the copy's connection (PG*), the
# target version, the addons path, the data directory and the log file.
cat >"$WORK/hook-schema.sh" <<'SH'
#!/bin/bash
set -eu
echo "stand-in upgrade of $ODOOOPS_UPGRADE_DB ($ODOOOPS_UPGRADE_MODE) from $ODOOOPS_UPGRADE_FROM_VERSION to $ODOOOPS_UPGRADE_TARGET_VERSION"
[ "$PGDATABASE" = "$ODOOOPS_UPGRADE_DB" ] && [ "$1" = "$ODOOOPS_UPGRADE_DB" ]
[ -d "$ODOOOPS_UPGRADE_DATA_DIR/filestore/$ODOOOPS_UPGRADE_DB" ] || { echo "no filestore of the copy"; exit 1; }
case ",$ODOOOPS_UPGRADE_ADDONS_PATH," in *"/addons,"*) ;; *) echo "addons path $ODOOOPS_UPGRADE_ADDONS_PATH"; exit 1 ;; esac
echo "connected as $PGUSER"
psql -X -q -v ON_ERROR_STOP=1 -c "ALTER TABLE res_partner ADD COLUMN upgraded_to varchar" \
  -c "UPDATE ir_module_module SET latest_version = '$ODOOOPS_UPGRADE_TARGET_VERSION.1.0' WHERE name = 'base'"
echo "stand-in upgrade: res_partner.upgraded_to added" >>"$ODOOOPS_UPGRADE_LOG"
SH
cat >"$WORK/hook-fail.sh" <<'SH'
#!/bin/bash
psql -X -q -c "ALTER TABLE res_partner ADD COLUMN half_done varchar"
echo "stand-in upgrade: migration of acme_sale failed: no column legacy_state" >&2
exit 3
SH
chmod 755 "$WORK/hook-schema.sh" "$WORK/hook-fail.sh"

start_worker uw1 --storage "file://$WORK/backups" --upgrade-hook "$WORK/hook-schema.sh" --upgrade-target-version 18.0
d1=$(queue production deploy)
wait_status "$d1" succeeded 90

# --- 1. the deploy plan of a release: acme_sale bumped, acme_new added,
# acme_stock unchanged.
sed -i 's/17.0.1.0.0/17.0.1.1.0/' "$REPO/addons/acme_sale/__manifest__.py"
mkdir -p "$REPO/addons/acme_new" && touch "$REPO/addons/acme_new/__init__.py"
echo '{"name": "Acme New", "version": "17.0.1.0.0", "depends": ["acme_sale"]}' >"$REPO/addons/acme_new/__manifest__.py"
commit "bump acme_sale, add acme_new"
modules_before=$(on "$PROD" "SELECT string_agg(name || ' ' || latest_version, ',' ORDER BY name) FROM ir_module_module")
# Production deploys wait for an approval in this project: the deploy's
# plan is queued with it, and the approver sees its modules listed.
scalar "UPDATE ops.projects SET settings = settings || '{\"production_deploy_approval\": true}' WHERE id = 1" >/dev/null
d2=$(queue production deploy)
pl=$(scalar "SELECT ops.deploy_plan($d2) ->> 'plan_run_id'")
[ -n "$pl" ] || fail "deploy $d2 waits for its approval without a plan: $(scalar "SELECT ops.deploy_plan($d2)")"
[ "$(scalar "SELECT git_sha = '$SHA' AND metadata ->> 'mode' = 'plan' FROM ops.runs WHERE id = $pl")" = t ] \
  || fail "plan $pl is not of deploy $d2's revision"
wait_status "$pl" succeeded 60
pending=$("$CLI" approve --pending --project acme) || fail "approve --pending failed"
[[ $pending == *" deploy $d2 requested by "*" plan succeeded install: acme_new update: acme_sale"* ]] \
  || fail "the approval of deploy $d2 does not list its plan: $pending"
[ "$("$CLI" approve --pending --project acme --json | python3 -c \
     'import json, sys; print(json.dumps([a["plan"]["plan"]["update"] for a in json.load(sys.stdin) if a["subject"] == "deploy"]))')" \
  = '[["acme_sale"]]' ] || fail "approve --pending --json lacks the plan of deploy $d2"
plan=$(scalar "SELECT ops.deploy_plan($d2) -> 'plan'")
[ "$(json_of "$plan" install)" = '["acme_new"]' ] || fail "plan $pl installs $(json_of "$plan" install): $plan"
[ "$(json_of "$plan" update)" = '["acme_sale"]' ] || fail "plan $pl updates $(json_of "$plan" update): $plan"
[ "$(json_of "$plan" removed)" = '[]' ] || fail "plan $pl removes: $plan"
[ "$(scalar "SELECT ops.deploy_plan($d2) ->> 'git_sha'")" = "$SHA" ] || fail "plan $pl is of another revision"
[ "$(on "$PROD" "SELECT string_agg(name || ' ' || latest_version, ',' ORDER BY name) FROM ir_module_module")" = "$modules_before" ] \
  || fail "the plan changed production's modules"
[ "$(scalar "SELECT status FROM ops.runs WHERE id = $d2")" = queued ] || fail "the plan ran the deploy"
say "plan $pl, queued with deploy $d2 and listed with its approval: install acme_new, update acme_sale; production unchanged"
# The deploy, once approved, does what its plan said.
approve "$(scalar "SELECT id FROM ops.approvals WHERE subject = 'deploy' AND subject_id = $d2 AND status = 'pending'")"
wait_status "$d2" succeeded 90
[ "$(result "$d2" modules,installed),$(result "$d2" modules,updated)" = '["acme_new"],["acme_sale"]' ] \
  || fail "deploy $d2 did other than its plan: $(scalar "SELECT result -> 'modules' FROM ops.runs WHERE id = $d2")"
say "deploy $d2 installed and updated what plan $pl listed"

# --- 2. upgrade tests on a copy of production's latest backup.
b=$(queue_backup production)
wait_status "$b" succeeded 120
fp=$(data_fingerprint "$PROD")
columns() { on "$PROD" "SELECT string_agg(column_name, ',' ORDER BY column_name) FROM information_schema.columns WHERE table_name = 'res_partner'"; }
cols=$(columns)
base_version=$(on "$PROD" "SELECT latest_version FROM ir_module_module WHERE name = 'base'")
pid=$(cat "$STATE/envs/acme/production/odoo.pid")
copies() { on postgres "SELECT count(*) FROM pg_database WHERE datname LIKE '${PROD}_upgrade_%'"; }
unchanged() {
  [ "$(data_fingerprint "$PROD")" = "$fp" ] || fail "$1: production's data changed"
  [ "$(columns)" = "$cols" ] || fail "$1: production's schema changed: $(columns)"
  [ "$(on "$PROD" "SELECT latest_version FROM ir_module_module WHERE name = 'base'")" = "$base_version" ] || fail "$1: production's base changed"
  [ "$(cat "$STATE/envs/acme/production/odoo.pid")" = "$pid" ] || fail "$1: production's Odoo was restarted"
  alive "$pid" || fail "$1: production's Odoo was stopped"
  health "$PORT_PROD" | has '"pass"' || fail "$1: production is not healthy"
  [ "$(copies)" = 0 ] || fail "$1: the upgrade copy was not dropped"
}

t1=$(scalar "SELECT id FROM ops.queue_upgrade_test(1, 'production')")
[ "$(scalar "SELECT (metadata ->> 'backup_id')::bigint = $(backup_of "$b") FROM ops.runs WHERE id = $t1")" = t ] \
  || fail "upgrade test $t1 is not on the latest backup"
wait_status "$t1" succeeded 120
[ "$(result "$t1" upgrade,status)" = succeeded ] || fail "upgrade test $t1: $(result "$t1" upgrade)"
[ "$(result "$t1" upgrade,target_version)" = 18.0 ] || fail "target version: $(result "$t1" upgrade)"
[ "$(result "$t1" upgrade,schema,columns_added)" = '["res_partner.upgraded_to"]' ] \
  || fail "upgrade test $t1 saw other schema changes: $(result "$t1" upgrade,schema)"
[ "$(result "$t1" upgrade,modules,base)" = 18.0.1.0 ] || fail "base after the upgrade: $(result "$t1" upgrade,modules)"
[ "$(result "$t1" upgrade,modules,acme_new)" = "$(on "$PROD" "SELECT latest_version FROM ir_module_module WHERE name = 'acme_new'")" ] \
  || fail "acme_new after the upgrade: $(result "$t1" upgrade,modules)"
log=$(scalar "SELECT location FROM ops.artifacts WHERE run_id = $t1 AND name = 'upgrade.log'")
[ -n "$log" ] || fail "upgrade test $t1 kept no log"
grep -q "stand-in upgrade: res_partner.upgraded_to added" "${log#file://}" || fail "the log lacks the hook's line: $(cat "${log#file://}")"
grep -q "connected as odoo_$PROD" "${log#file://}" || fail "the hook did not connect as the environment's role: $(cat "${log#file://}")"
unchanged "upgrade test $t1"
say "upgrade test $t1: the hook added res_partner.upgraded_to and moved base to 18.0 on the copy; production unchanged, the copy dropped"

# The failing hook: the run fails with the hook's message, production is
# untouched, the copy (half upgraded) is dropped.
kill -TERM "$LAST_WORKER_PID"; wait "$LAST_WORKER_PID" || true
start_worker uw2 --storage "file://$WORK/backups" --upgrade-hook "$WORK/hook-fail.sh"
rehost uw2 production
t2=$(scalar "SELECT id FROM ops.queue_upgrade_test(1, 'production')")
wait_status "$t2" failed 120
err=$(scalar "SELECT error FROM ops.runs WHERE id = $t2")
[[ $err == *"the upgrade hook failed (exit 3)"*"no column legacy_state"* ]] || fail "upgrade test $t2: $err"
[ "$(result "$t2" upgrade,status) $(result "$t2" upgrade,exit_code)" = "failed 3" ] \
  || fail "upgrade test $t2: $(result "$t2" upgrade)"
log=$(scalar "SELECT location FROM ops.artifacts WHERE run_id = $t2 AND name = 'upgrade.log'")
grep -q "migration of acme_sale failed" "${log#file://}" || fail "the failed hook's log was not kept"
cp_psql -c "SELECT message FROM ops.run_events WHERE run_id = $t2" | has "no column legacy_state" \
  || fail "the run's log lacks the hook's message"
unchanged "upgrade test $t2"
say "upgrade test $t2: the failing hook failed the run with its message; production untouched, the copy dropped"

# --- 3. production upgrades: after an approval, with a pre-deploy backup.
# The failing hook first: production is put back as it was.
u1=$(scalar "SELECT id FROM ops.request_upgrade(1, 'production')")
[ "$(scalar "SELECT status || ' ' || (available_at = 'infinity') FROM ops.runs WHERE id = $u1")" = "queued true" ] \
  || fail "production upgrade $u1 did not wait for its approval"
approve "$(scalar "SELECT id FROM ops.approvals WHERE subject = 'deploy' AND subject_id = $u1 AND status = 'pending'")"
wait_status "$u1" failed 180
[[ $(scalar "SELECT error FROM ops.runs WHERE id = $u1") == *"no column legacy_state"* ]] \
  || fail "production upgrade $u1: $(scalar "SELECT error FROM ops.runs WHERE id = $u1")"
pre1=$(result "$u1" pre_deploy_backup_id)
[ "$(scalar "SELECT backup_type || ' ' || status FROM ops.backups WHERE id = ${pre1:-0}")" = "pre_deploy completed" ] \
  || fail "production upgrade $u1 took no pre-deploy backup: $(scalar "SELECT result FROM ops.runs WHERE id = $u1")"
[ "$(data_fingerprint "$PROD")" = "$fp" ] && [ "$(columns)" = "$cols" ] || fail "production upgrade $u1 left production changed"
health "$PORT_PROD" | has '"pass"' || fail "production does not serve again after the failed upgrade $u1"
[ "$(on postgres "SELECT count(*) FROM pg_database WHERE datname LIKE '${PROD}\_%'")" = 0 ] || fail "upgrade $u1 left databases behind"
say "production upgrade $u1: approved, backed up ($pre1), the hook failed, production put back and serving"

kill -TERM "$LAST_WORKER_PID"; wait "$LAST_WORKER_PID" || true
start_worker uw3 --storage "file://$WORK/backups" --upgrade-hook "$WORK/hook-schema.sh" --upgrade-target-version 18.0
rehost uw3 production
u2=$(scalar "SELECT id FROM ops.request_upgrade(1, 'production')")
approve "$(scalar "SELECT id FROM ops.approvals WHERE subject = 'deploy' AND subject_id = $u2 AND status = 'pending'")"
wait_status "$u2" succeeded 180
[[ ",$(columns)," == *",upgraded_to,"* ]] || fail "production upgrade $u2 did not upgrade production: $(columns)"
[ "$(on "$PROD" "SELECT latest_version FROM ir_module_module WHERE name = 'base'")" = 18.0.1.0 ] || fail "production's base after $u2"
[ "$(data_fingerprint "$PROD")" = "$fp" ] || fail "production upgrade $u2 lost data"
[ -n "$(result "$u2" pre_deploy_backup_id)" ] || fail "production upgrade $u2 took no pre-deploy backup"
health "$PORT_PROD" | has '"pass"' || fail "production does not serve after the upgrade $u2"
[ "$(on postgres "SELECT count(*) FROM pg_database WHERE datname LIKE '${PROD}\_%'")" = 0 ] || fail "upgrade $u2 left databases behind"
say "production upgrade $u2: production runs on the upgraded database, the replaced one dropped"

# A developer never queues one: production's upgrade test needs upgrade.test.
scalar "INSERT INTO ops.project_members (project_id, user_id, role) VALUES (1, 'e2e-dev', 'developer')" >/dev/null
out=$(psql -X -q -A -t -d "$CP_DB" 2>&1 <<'SQL' || true
SET ROLE odooops_api;
SELECT set_config('request.jwt.claims', '{"sub": "e2e-dev"}', false);
SELECT ops.queue_upgrade_test(1, 'production');
SQL
)
[[ $out == *"permission denied: upgrade.test"* ]] || fail "a developer queued an upgrade test: $out"
out=$(psql -X -q -A -t -d "$CP_DB" 2>&1 <<'SQL' || true
SET ROLE odooops_api;
SELECT set_config('request.jwt.claims', '{"sub": "e2e-dev"}', false);
SELECT ops.request_upgrade(1, 'production');
SQL
)
[[ $out == *"permission denied: upgrade.run"* ]] || fail "a developer requested a production upgrade: $out"
say "passed"
