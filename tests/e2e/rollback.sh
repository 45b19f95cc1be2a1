#!/usr/bin/env bash
# A failed production deploy goes back, as on Odoo.sh: the module update
# breaks half-way (after writing), the deploy fails naming the step, the
# database returns to its pre-update snapshot, the previous release serves
# again, and no snapshot is left behind. The Odoo is the stand-in, not Odoo.
source "$(dirname "$0")/lib.sh"
setup_control_plane
start_worker rb --storage "file://$WORK/backups"
PROD=e2e_rollback_prod
d1=$(queue production deploy); wait_status "$d1" succeeded 90
SHA1=$SHA
# A healthy update first: the snapshot is taken and dropped afterwards.
sed -i 's/17.0.1.0.0/17.0.1.1.0/' "$REPO/addons/acme_sale/__manifest__.py"
git -C "$REPO" -c user.email=t@example.com -c user.name=test commit -qam "acme_sale 1.1"
SHA=$(git -C "$REPO" rev-parse HEAD); SHA2=$SHA
d2=$(queue production deploy); wait_status "$d2" succeeded 90
[ "$(scalar "SELECT count(*) FROM ops.run_events WHERE run_id = $d2 AND message LIKE 'database snapshot % taken before updating acme_sale'")" = 1 ] \
  || fail "no snapshot before the production update"
[ "$(psql -X -A -t -d postgres -c "SELECT count(*) FROM pg_database WHERE datname LIKE '%\\_pre\\_%'")" = 0 ] || fail "snapshot left after success"
say "production update $d2: snapshot taken and dropped after the health check"
# ... and a pre-deploy backup (dump + filestore in storage) recorded by the
# control plane and referenced by the release; the first deploy had none.
b2=$(scalar "SELECT id FROM ops.backups WHERE run_id = $d2 AND backup_type = 'pre_deploy' AND status = 'completed'")
[ -n "$b2" ] || { show_events "$d2"; fail "no pre-deploy backup recorded for $d2"; }
[ "$(scalar "SELECT pre_deploy_backup_id FROM ops.releases WHERE run_id = $d2")" = "$b2" ] \
  || fail "the release of $d2 does not reference backup $b2"
[ -z "$(scalar "SELECT pre_deploy_backup_id FROM ops.releases WHERE run_id = $d1")" ] || fail "the first deploy recorded a backup"
loc=$(scalar "SELECT location FROM ops.backups WHERE id = $b2")
[ "$(sha256sum "${loc#file://}" | cut -c1-64)" = "$(scalar "SELECT sha256 FROM ops.backups WHERE id = $b2")" ] \
  || fail "pre-deploy backup $b2: stored dump does not match its checksum"
say "production update $d2: pre-deploy backup $b2 recorded and referenced by its release"

# A broken update: the stand-in writes the new version, then fails.
sed -i 's/17.0.1.0.0/17.0.2.0.0/' "$REPO/addons/acme_stock/__manifest__.py"
touch "$REPO/addons/acme_stock/FAIL_STANDIN_UPDATE"
git -C "$REPO" -c user.email=t@example.com -c user.name=test add -A
git -C "$REPO" -c user.email=t@example.com -c user.name=test commit -qm "acme_stock 2.0 (broken)"
SHA=$(git -C "$REPO" rev-parse HEAD)
d3=$(queue production deploy); wait_status "$d3" failed 120
[[ $(scalar "SELECT error FROM ops.runs WHERE id = $d3") == "step deploy/40-start exited with code 1"* ]] \
  || fail "error: $(scalar "SELECT error FROM ops.runs WHERE id = $d3")"
[ "$(scalar "SELECT count(*) FROM ops.run_events WHERE run_id = $d3 AND step = 'deploy/on-failure/10-rollback' AND message LIKE 'database % rolled back%'")" = 1 ] \
  || { show_events "$d3"; fail "no database rollback event"; }
[ "$(psql -X -A -t -d "$PROD" -c "SELECT latest_version FROM ir_module_module WHERE name = 'acme_stock'")" = 17.0.1.0.0 ] \
  || fail "the half-done update was not rolled back"
info=$(curl -fsS "http://127.0.0.1:$PORT_PROD/standin/info")
[[ $info == *"\"release\": \"$SHA2\""* ]] || fail "production does not run the previous release again: $info"
[ "$(scalar "SELECT result->>'rolled_back_to' FROM ops.runs WHERE id = $d3")" = "$SHA2" ] || fail "rollback not recorded"
[ "$(psql -X -A -t -d postgres -c "SELECT count(*) FROM pg_database WHERE datname LIKE '%\\_pre\\_%'")" = 0 ] || fail "snapshot left after the rollback"
say "broken update $d3 failed at deploy/40-start; database and release rolled back to $SHA2, healthy"
[ -n "$(scalar "SELECT id FROM ops.backups WHERE run_id = $d3 AND backup_type = 'pre_deploy' AND status = 'completed'")" ] \
  || fail "the failed deploy's pre-deploy backup was not recorded"
# Rolling back to the first release restores the database saved before the
# second one (queued and cancelled in one transaction: checked, not run).
r1=$(scalar "SELECT id FROM ops.releases WHERE run_id = $d1")
restore_from=$(psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$CP_DB" <<SQL | head -n 1
BEGIN;
SELECT (metadata ->> 'restore_backup_id') || ' ' || id FROM ops.rollback_release($r1, 'e2e');
SQL
)
[ "${restore_from%% *}" = "$b2" ] || fail "rollback to release $r1 would restore '${restore_from%% *}', expected backup $b2"
say "rollback to release $r1 restores pre-deploy backup $b2 with the first release's code"
say "PASS"
