#!/usr/bin/env bash
# The docker runtime for real, through podman's Docker Engine API: the worker
# builds an image from a base "Odoo image" (locally built: a Debian minbase
# plus the Odoo stand-in as `odoo` -- not Odoo) and the repository's addons,
# runs it on the environment's port, passes the health check, and a redeploy
# replaces the previous container (without the reverse proxy; behind it:
# tests/e2e/docker_proxy.sh). Backups, restores, a restore test, rollbacks,
# a staging refresh and destroys of containerised environments follow.
source "$(dirname "$0")/lib.sh"
use_podman
setup_control_plane
# The operator's runtime profile selects the docker runtime (the worker's
# --odoo-image is the image).
cp_psql -c "INSERT INTO ops.runtime_profiles (name, runtime, description) VALUES ('docker', 'docker', 'containers');
            UPDATE ops.environments SET runtime_profile = 'docker' WHERE name = 'production'" >/dev/null
# The operator's stand-in upgrade hook: it adds a column, or fails while
# the file $WORK/hook-fails exists.
cat >"$WORK/hook.sh" <<SH
#!/bin/bash
set -eu
[ ! -e "$WORK/hook-fails" ] || { echo "stand-in upgrade failed on purpose" >&2; exit 3; }
psql -X -q -v ON_ERROR_STOP=1 -c "ALTER TABLE res_partner ADD COLUMN upgraded_to varchar"
SH
chmod 755 "$WORK/hook.sh"
start_worker dock --docker-host "$DOCKER_HOST" --odoo-image localhost/odoo-standin:17 --odoo-db-host 127.0.0.1 \
  --storage "file://$WORK/backups" --upgrade-hook "$WORK/hook.sh" --upgrade-target-version 18.0

run=$(queue production deploy)
wait_status "$run" succeeded 240
steps=$(scalar "SELECT string_agg(step, ',' ORDER BY id) FROM ops.run_events WHERE run_id = $run AND message LIKE 'step % started'")
[ "$steps" = "deploy/10-checkout,deploy/20-addons,deploy/25-pre-deploy-backup,deploy/30-release,deploy/35-restore-backup,deploy/40-start,deploy/50-health" ] || fail "docker steps: $steps"
[ "$(scalar "SELECT result->>'runtime' FROM ops.runs WHERE id = $run")" = docker ] || fail "not deployed by the docker runtime"
health "$PORT_PROD" | has '"pass"' || fail "the container does not answer /web/health"
info=$(curl -fsS "http://127.0.0.1:$PORT_PROD/standin/info")
[[ $info == *'"database": "e2e_docker_runtime_prod"'* && $info == *'/mnt/extra-addons/acme/addons'* && $info == *acme_stock* ]] \
  || fail "the container does not serve the repository's addons: $info"
first=$(cat "$STATE/envs/acme/production/container")
SHA1=$SHA
[ "$(scalar "SELECT location FROM ops.artifacts WHERE run_id = $run AND kind = 'image'")" = "odooops-acme:${SHA:0:12}" ] || fail "image artifact not recorded"
say "deploy $run: image odooops-acme:${SHA:0:12} built through the Docker API, container $first healthy"

sed -i 's/17.0.1.0.0/17.0.2.0.0/' "$REPO/addons/acme_sale/__manifest__.py"
git -C "$REPO" -c user.email=t@example.com -c user.name=test commit -qam "acme_sale 2.0"
SHA=$(git -C "$REPO" rev-parse HEAD)
run2=$(queue production deploy)
wait_status "$run2" succeeded 240
second=$(cat "$STATE/envs/acme/production/container")
[ "$first" != "$second" ] || fail "the container was not replaced"
pm container exists "$first" && fail "the previous container $first still exists"
[ "$(scalar "SELECT result->'modules'->>'updated' FROM ops.runs WHERE id = $run2")" = '["acme_sale"]' ] || fail "module update not detected"
health "$PORT_PROD" | has '"pass"' || fail "unhealthy after the redeploy"
say "redeploy $run2 replaced $first by $second"

# The runtime interface as a command (lib/runtime.sh, what `odooops logs`
# and `odooops psql` run): the container's log, psql as the environment's
# own role. The environment records its runtime; a process-runtime deploy
# of it is refused before anything changes (no silent move between runtimes).
[ "$(cat "$STATE/envs/acme/production/runtime")" = docker ] || fail "production does not record the docker runtime"
penv=(ODOOOPS_RUNTIME=docker ODOOOPS_STATE_DIR="$STATE" ODOOOPS_ENV_DIR="$STATE/envs/acme/production"
      ODOOOPS_ENVIRONMENT=production ODOOOPS_ENVIRONMENT_ID=1 ODOOOPS_DB_NAME=e2e_docker_runtime_prod
      ODOOOPS_DB_HOST=127.0.0.1 ODOOOPS_DB_PORT="$PGPORT" DOCKER_HOST="$DOCKER_HOST")
# (the container's log may reach the engine a moment after the health check)
container_log_seen() {
  local _
  for _ in $(seq 1 20); do
    env "${penv[@]}" "$ROOT/worker/steps/lib/runtime.sh" logs --grep 'HTTP|http' | has . && return 0
    sleep 0.5
  done
  return 1
}
container_log_seen || fail "runtime.sh logs shows nothing of the container's log"
[ "$(env "${penv[@]}" "$ROOT/worker/steps/lib/runtime.sh" psql -XAtc 'SELECT current_user')" = odoo_e2e_docker_runtime_prod ] \
  || fail "runtime.sh psql does not connect as the environment's role"
out=$(env "${penv[@]}" ODOOOPS_RUNTIME=process "$ROOT/worker/steps/lib/runtime.sh" logs 2>&1) && fail "a process-runtime command ran on the docker environment"
[[ $out == *"runs on the docker runtime"* ]] || fail "runtime mismatch not explained: $out"
say "runtime.sh logs and psql reach the containerised production; a command of another runtime is refused"

# Backup and restore of the containerised production: the container is
# stopped for the switch and started again; production is not neutralized.
PROD=e2e_docker_runtime_prod
psql -X -q -d "$PROD" -c "UPDATE res_partner SET name = 'before backup' WHERE id = 1"
b=$(queue_backup production); wait_status "$b" succeeded 120
bid=$(backup_of "$b")
psql -X -q -d "$PROD" -c "UPDATE res_partner SET name = 'after backup' WHERE id = 1"
r=$(queue_restore "$bid" production); wait_status "$r" succeeded 120
[ "$(psql -X -A -t -d "$PROD" -c "SELECT name FROM res_partner WHERE id = 1")" = "before backup" ] || fail "production not restored"
[ "$(psql -X -A -t -d "$PROD" -c "SELECT count(*) FROM ir_config_parameter WHERE key = 'database.is_neutralized'")" = 0 ] \
  || fail "production was neutralized"
pm container exists "$second" || fail "the container was not kept"
health "$PORT_PROD" | has '"pass"' || fail "the container is not serving after the restore"
say "backup $bid restored into the containerised production: container restarted, healthy, not neutralized"

# A restore test of the containerised production: the latest backup goes
# into a throwaway database, a container of production's image serves it
# and passes the health check, and both go; production is not touched.
t=$(scalar "SELECT id FROM ops.queue_restore_test(1, 'production')")
wait_status "$t" succeeded 240
[ "$(result "$t" restore_test,healthy)" = true ] || fail "restore test $t is not recorded healthy: $(result "$t" restore_test)"
scalar "SELECT message FROM ops.run_events WHERE run_id = $t" | has "started container odooops-acme-production-copy-r$t of image"   || fail "restore test $t did not start a container of production's image"
[ "$(pm ps -aq --filter label=org.odooops.environment=production | wc -l)" = 1 ]   || fail "restore test $t left containers: $(pm ps -a --filter label=org.odooops.environment=production)"
[ "$(psql -X -A -t -d postgres -c "SELECT count(*) FROM pg_database WHERE datname = '${PROD}_restore_$t'")" = 0 ] \
  || fail "restore test $t left its throwaway database"
[ "$(cat "$STATE/envs/acme/production/container")" = "$second" ] || fail "restore test $t replaced production's container"
health "$PORT_PROD" | has '"pass"' || fail "production does not serve after restore test $t"
say "restore test $t: a container of production's image served the restored copy; nothing of it is left"

# Rolling back to the first release: its image runs again on the database
# saved before the second deploy (that deploy's pre-deploy backup).
P2=$(scalar "SELECT id FROM ops.backups WHERE run_id = $run2 AND backup_type = 'pre_deploy' AND status = 'completed'")
[ -n "$P2" ] || fail "redeploy $run2 took no pre-deploy backup"
psql -X -q -d "$PROD" -c "UPDATE res_partner SET name = 'after the second release' WHERE id = 2"
rb=$(scalar "SELECT id FROM ops.rollback_release((SELECT id FROM ops.releases WHERE run_id = $run), 'e2e')")
wait_status "$rb" succeeded 240
[ "$(scalar "SELECT result->'database_from_backup'->>'backup_id' FROM ops.runs WHERE id = $rb")" = "$P2" ] || fail "rollback $rb did not restore $P2"
[[ $(cat "$STATE/envs/acme/production/container") == odooops-acme-production-${SHA1:0:12}-r$rb ]] || fail "rollback $rb does not run the first release's image"
[ "$(psql -X -A -t -d "$PROD" -c "SELECT name FROM res_partner WHERE id = 2")" != "after the second release" ] || fail "rollback $rb kept later data"
[ "$(psql -X -A -t -d "$PROD" -c "SELECT latest_version FROM ir_module_module WHERE name = 'acme_sale'")" = 17.0.1.0.0 ] \
  || fail "rollback $rb: acme_sale is not at the first release's version"
[ "$(psql -X -A -t -d postgres -c "SELECT count(*) FROM pg_database WHERE datname LIKE 'e2e\\_docker%\\_pre\\_%'")" = 0 ] || fail "kept database left behind"
health "$PORT_PROD" | has '"pass"' || fail "unhealthy after rollback $rb"
say "rollback $rb: the first release's image runs on the database of pre-deploy backup $P2"

# A containerised staging runs on a neutralized copy of the latest production
# backup; when its module update then fails, the staging database it replaced
# comes back and the previous container serves again.
STAGING=e2e_docker_runtime_staging
cp_psql -c "UPDATE ops.environments SET runtime_profile = 'docker' WHERE name = 'staging'" >/dev/null
latest=$(scalar "SELECT b.id FROM ops.backups b JOIN ops.environments e ON e.id = b.environment_id
                  WHERE e.name = 'production' AND b.status = 'completed' ORDER BY b.completed_at DESC LIMIT 1")
s1=$(queue staging deploy); wait_status "$s1" succeeded 240
[ "$(scalar "SELECT result->'database_from_backup'->>'backup_id' FROM ops.runs WHERE id = $s1")" = "$latest" ] \
  || fail "staging deploy $s1 was not refreshed from backup $latest"
[ "$(psql -X -A -t -d "$STAGING" -c "SELECT value FROM ir_config_parameter WHERE key = 'database.is_neutralized'")" = true ] \
  || fail "staging copy not neutralized"
health "$PORT_STAGING" | has '"pass"' || fail "staging container unhealthy"
staging_container=$(cat "$STATE/envs/acme/staging/container")
psql -X -q -d "$STAGING" -c "INSERT INTO res_partner (name) VALUES ('staging before the broken deploy')"
sed -i 's/17.0.1.0.0/17.0.3.0.0/' "$REPO/addons/acme_stock/__manifest__.py"
touch "$REPO/addons/acme_stock/FAIL_STANDIN_UPDATE"
git -C "$REPO" -c user.email=t@example.com -c user.name=test add -A
git -C "$REPO" -c user.email=t@example.com -c user.name=test commit -qm "acme_stock 3.0 (its update fails)"
SHA=$(git -C "$REPO" rev-parse HEAD)
s2=$(queue staging deploy); wait_status "$s2" failed 240
[[ $(scalar "SELECT error FROM ops.runs WHERE id = $s2") == "step deploy/40-start exited with code 1"* ]] \
  || fail "broken staging deploy $s2: $(scalar "SELECT error FROM ops.runs WHERE id = $s2")"
[ "$(psql -X -A -t -d "$STAGING" -c "SELECT count(*) FROM res_partner WHERE name = 'staging before the broken deploy'")" = 1 ] \
  || fail "the staging database was not put back after $s2"
[ "$(scalar "SELECT result->>'rolled_back_to' FROM ops.runs WHERE id = $s2")" = "$staging_container" ] || fail "rollback of $s2 not recorded"
pm container exists "$staging_container" || fail "the previous staging container is gone"
health "$PORT_STAGING" | has '"pass"' || fail "the previous staging container does not serve again"
[ "$(psql -X -A -t -d postgres -c "SELECT count(*) FROM pg_database WHERE datname LIKE 'e2e\\_docker%\\_pre\\_%' OR datname LIKE 'e2e\\_docker%\\_restore\\_%'")" = 0 ] \
  || fail "kept database left behind after $s2"
[ -z "$(find "$STATE/envs/acme/staging/data/filestore" -maxdepth 1 -name '*.pre-deploy-*')" ] || fail "replaced filestore left behind after $s2"
say "staging (docker) refreshed from backup $latest by $s1; broken deploy $s2 put its database and container back"

# Production upgrades of the containerised production, each after an
# approval and a pre-deploy backup: a failing hook leaves production's
# container and database as they were; a passing one has a container of
# the new image serve the upgraded database, and the old container goes.
columns() { psql -X -A -t -d "$PROD" -c "SELECT string_agg(column_name, ',' ORDER BY column_name) FROM information_schema.columns WHERE table_name = 'res_partner'"; }
cols=$(columns); before_upgrade=$(cat "$STATE/envs/acme/production/container")
touch "$WORK/hook-fails"
u1=$(scalar "SELECT id FROM ops.request_upgrade(1, 'production')")
approve "$(scalar "SELECT id FROM ops.approvals WHERE subject = 'deploy' AND subject_id = $u1 AND status = 'pending'")"
wait_status "$u1" failed 240
[[ $(scalar "SELECT error FROM ops.runs WHERE id = $u1") == *"failed on purpose"* ]] || fail "upgrade $u1: $(scalar "SELECT error FROM ops.runs WHERE id = $u1")"
[ "$(columns)" = "$cols" ] || fail "the failed upgrade $u1 changed production: $(columns)"
[ "$(cat "$STATE/envs/acme/production/container")" = "$before_upgrade" ] || fail "the failed upgrade $u1 replaced the container"
health "$PORT_PROD" | has '"pass"' || fail "production does not serve again after the failed upgrade $u1"
rm "$WORK/hook-fails"
u2=$(scalar "SELECT id FROM ops.request_upgrade(1, 'production')")
approve "$(scalar "SELECT id FROM ops.approvals WHERE subject = 'deploy' AND subject_id = $u2 AND status = 'pending'")"
wait_status "$u2" succeeded 240
[[ ",$(columns)," == *",upgraded_to,"* ]] || fail "upgrade $u2 did not upgrade production: $(columns)"
after_upgrade=$(cat "$STATE/envs/acme/production/container")
[[ $after_upgrade == odooops-acme-production-*-r$u2 ]] || fail "upgrade $u2 does not serve with its own container: $after_upgrade"
pm container exists "$before_upgrade" && fail "upgrade $u2 left the previous container $before_upgrade"
[ -n "$(result "$u2" pre_deploy_backup_id)" ] || fail "upgrade $u2 took no pre-deploy backup"
health "$PORT_PROD" | has '"pass"' || fail "production does not serve after the upgrade $u2"
[ "$(on postgres "SELECT count(*) FROM pg_database WHERE datname LIKE '${PROD}\\_%'")" = 0 ] || fail "upgrade $u2 left databases behind"
say "production upgrades: $u1's failing hook changed nothing; $u2 serves the upgraded database from $after_upgrade"

# Destroying a containerised environment removes its container, the images
# only it ran, its database, role and directory (filestore); an image another
# environment's container still runs stays.
containers_of() { pm ps -aq --filter "label=org.odooops.environment=$1" | wc -l; }
staging_image=$(pm inspect --format '{{.ImageName}}' "$staging_container")
prod_container=$(cat "$STATE/envs/acme/production/container")
prod_image=$(pm inspect --format '{{.ImageName}}' "$prod_container")
[ "$staging_image" != "$prod_image" ] || fail "staging and production run the same image $staging_image"
d1=$(scalar "SELECT id FROM ops.destroy_environment(1, 'staging', 'end-to-end test')")
wait_status "$d1" succeeded 180
steps=$(scalar "SELECT string_agg(step, ',' ORDER BY id) FROM ops.run_events WHERE run_id = $d1 AND message LIKE 'step % started'")
[ "$steps" = "destroy/10-final-backup,destroy/20-remove" ] || fail "docker destroy steps: $steps"
[ "$(containers_of staging)" = 0 ] || fail "destroy $d1 left containers of staging: $(pm ps -a --filter label=org.odooops.environment=staging)"
pm image exists "$staging_image" && fail "destroy $d1 left the image $staging_image only staging ran"
pm image exists "$prod_image" || fail "destroy $d1 removed the image $prod_image production runs"
[ "$(on postgres "SELECT count(*) FROM pg_database WHERE datname = '$STAGING'")" = 0 ] || fail "destroy $d1 left the database $STAGING"
[ ! -e "$STATE/envs/acme/staging" ] || fail "destroy $d1 left the directory of staging (filestore)"
[ "$(scalar "SELECT status FROM ops.environments WHERE name = 'staging'")" = destroyed ] || fail "staging is not destroyed"
health "$PORT_STAGING" >/dev/null 2>&1 && fail "staging still answers after destroy $d1"
health "$PORT_PROD" | has '"pass"' || fail "production stopped serving when staging was destroyed"
say "destroy $d1 of staging removed its container, image $staging_image, database and directory; production serves on"

# Production: after an approval and its final backup, nothing of it is left.
d2=$(scalar "SELECT id FROM ops.destroy_environment(1, 'production', 'end-to-end test')")
approve_destroy "$d2"
wait_status "$d2" succeeded 180
[ -n "$(scalar "SELECT result ->> 'final_backup_id' FROM ops.runs WHERE id = $d2")" ] || fail "destroy $d2 took no final backup"
[ "$(pm ps -aq --filter label=org.odooops.project=acme | wc -l)" = 0 ] || fail "destroy $d2 left containers: $(pm ps -a --filter label=org.odooops.project=acme)"
pm image exists "$prod_image" && fail "destroy $d2 left the image $prod_image"
[ "$(on postgres "SELECT count(*) FROM pg_database WHERE datname = '$PROD'")" = 0 ] || fail "destroy $d2 left the database $PROD"
[ ! -e "$STATE/envs/acme/production" ] || fail "destroy $d2 left the directory of production"
say "destroy $d2 of production: final backup taken, no container, image, database or directory left"
say "PASS"
