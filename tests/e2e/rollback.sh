#!/usr/bin/env bash
# A failed production deploy goes back, as on Odoo.sh: the module update
# breaks half-way (after writing), the deploy fails naming the step, the
# database returns to its pre-update snapshot, the previous release serves
# again, and no snapshot is left behind. The Odoo is the stand-in, not Odoo.
source "$(dirname "$0")/lib.sh"
setup_control_plane
start_worker rb
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
say "PASS"
