#!/usr/bin/env bash
# The three stages of one project, end to end, as on Odoo.sh: development
# builds and tests; production deploys; staging runs on a neutralized copy
# of the latest production backup and updates the modules whose version
# differs from that copy; a production update takes a pre-deploy backup; a
# broken update goes back to the previous release and database by itself;
# ops.rollback_release brings an earlier release back with the database it
# ran on. Real git, the real worker (odooops_worker role only), file://
# storage; the Odoo is the stand-in (tests/harness/odoo_standin.py), not
# Odoo, and the webhook tables below stand for Odoo's base_automation and
# ir_act_server, which the stand-in does not create.
source "$(dirname "$0")/lib.sh"
setup_control_plane
# acme_sale ships its own neutralization, as an Odoo module may: a copy of
# the database stops sending orders to the ERP (a setting of acme_sale).
mkdir -p "$REPO/addons/acme_sale/data"
cat >"$REPO/addons/acme_sale/data/neutralize.sql" <<'SQL'
-- acme_sale: a copy of the database never sends orders to the ERP.
UPDATE ir_config_parameter SET value = 'http://erp.neutralized.invalid/' WHERE key = 'acme_sale.erp_url';
SQL
git -C "$REPO" -c user.email=t@example.com -c user.name=test add -A
git -C "$REPO" -c user.email=t@example.com -c user.name=test commit -qm "acme_sale neutralizes its ERP link"
SHA=$(git -C "$REPO" rev-parse HEAD)
start_worker ts --kinds build,test,deploy,backup,restore --storage "file://$WORK/backups"
PROD=e2e_three_stages_prod; STAGING=e2e_three_stages_staging; DEV=e2e_three_stages_dev
FS_PROD=$STATE/envs/acme/production/data/filestore/$PROD
FS_STAGING=$STATE/envs/acme/staging/data/filestore/$STAGING
SHA1=$SHA

version_of() { on "$1" "SELECT latest_version FROM ir_module_module WHERE name = '$2'"; }
partner() { on "$1" "SELECT count(*) FROM res_partner WHERE name = '$2'"; }
served_release() { curl -fsS "http://127.0.0.1:$1/standin/info" | python3 -c 'import json, sys; print(json.load(sys.stdin)["release"])'; }
events_like() { scalar "SELECT count(*) FROM ops.run_events WHERE run_id = $1 AND message LIKE '$2'"; }
no_leftovers() {
  [ "$(on postgres "SELECT count(*) FROM pg_database WHERE datname LIKE 'e2e\\_three\\_stages\\_%' AND (datname LIKE '%\\_pre\\_%' OR datname LIKE '%\\_restore\\_%')")" = 0 ] \
    || fail "$1: a snapshot or half-restored database was left behind"
  [ -z "$(find "$STATE/envs" -maxdepth 5 -path '*/filestore/*' \( -name '*.pre-deploy-*' -o -name '.restore-*' \))" ] \
    || fail "$1: a replaced or unpacked filestore was left behind"
}

# ---------------------------------------------------------------- development
b=$(queue dev build); wait_status "$b" succeeded 60
[ "$(scalar "SELECT string_agg(a->>'name' || ' ' || (a->>'version'), ',' ORDER BY a->>'name') FROM ops.runs, jsonb_array_elements(result->'addons') a WHERE id = $b")" \
  = "acme_sale 17.0.1.0.0,acme_stock 17.0.1.0.0" ] || fail "build $b: addons $(result "$b" addons)"
[ "$(result "$b" git,sha)" = "$SHA1" ] || fail "build $b did not check out $SHA1"
t=$(queue dev test); wait_status "$t" succeeded 60
[ "$(result "$t" tests,tested)" = "acme_sale,acme_stock" ] || fail "test $t: modules $(result "$t" tests)"
[ "$(result "$t" tests,exit_code)" = 0 ] || fail "test $t: exit code $(result "$t" tests,exit_code)"
[ "$(result "$t" tests,failed)" = 0 ] && [ "$(result "$t" tests,passed)" = 2 ] || fail "test $t: $(result "$t" tests)"
log=$(scalar "SELECT location FROM ops.artifacts WHERE run_id = $t AND name = 'tests.log' AND kind = 'log'")
[ -n "$log" ] || fail "test $t: no tests.log artifact"
grep -q "odoo.addons.acme_stock: stand-in ran no real tests" "${log#file://}" || fail "test $t: the log artifact lacks the module's test lines"
db_exists() { [ "$(on postgres "SELECT count(*) FROM pg_database WHERE datname = '$1'")" = 1 ]; }
db_exists "$DEV" && fail "the test run left a database for dev"
say "development: build $b found both addons, test run $t tested them (0 failures, log artifact kept)"
dd=$(queue dev deploy); wait_status "$dd" succeeded 90
[ "$(on "$DEV" "SELECT string_agg(name || ' ' || demo, ',' ORDER BY name) FROM ir_module_module WHERE name LIKE 'acme%'")" \
  = "acme_sale true,acme_stock true" ] || fail "the development deploy $dd did not install the modules with demo data"
say "development: deploy $dd installed the modules with demo data"

# ------------------------------------------------------------ production, v1
d1=$(queue production deploy); wait_status "$d1" succeeded 90
[ "$(served_release "$PORT_PROD")" = "$SHA1" ] || fail "production does not serve $SHA1"
[ -z "$(scalar "SELECT id FROM ops.backups WHERE run_id = $d1")" ] || fail "the first deploy took a pre-deploy backup without a database"
[ "$(on "$PROD" "SELECT string_agg(name || ' ' || demo, ',' ORDER BY name) FROM ir_module_module WHERE name LIKE 'acme%'")" \
  = "acme_sale false,acme_stock false" ] || fail "production $d1 was installed with demo data"
R1=$(scalar "SELECT id FROM ops.releases WHERE run_id = $d1")
# Production data: a customer, an attachment, a webhook automation rule and
# a webhook server action, live mail server and crons (the stand-in's own).
on "$PROD" "INSERT INTO res_partner (name, email) VALUES ('Production customer', 'buyer@example.com')"
echo "invoice of the production customer" >"$FS_PROD/3f/invoice-1"
on "$PROD" "CREATE TABLE base_automation (id serial PRIMARY KEY, name varchar NOT NULL, trigger varchar NOT NULL, active boolean DEFAULT true);
            INSERT INTO base_automation (name, trigger) VALUES ('Order to ERP', 'on_webhook'), ('Tag new partners', 'on_create');
            CREATE TABLE ir_act_server (id serial PRIMARY KEY, name varchar NOT NULL, state varchar NOT NULL, webhook_url varchar);
            INSERT INTO ir_act_server (name, state, webhook_url) VALUES ('Notify ERP', 'webhook', 'https://erp.example.com/hook')"
on "$PROD" "INSERT INTO ir_config_parameter (key, value) VALUES ('acme_sale.erp_url', 'https://erp.example.com/orders')"
say "production: deploy $d1 serves $SHA1 (release $R1); production data written"

# Production's Odoo runs as production Odoo does: its own database only,
# the database manager off behind a strong master password, behind a proxy,
# multi-process (2 x CPUs + 1) with its websocket server on a port of its own.
conf=$STATE/envs/acme/production/odoo.conf
conf_get() { sed -n "s/^$1 = //p" "$conf"; }
[ "$(conf_get db_name)" = "$PROD" ] && [ "$(conf_get dbfilter)" = "^$PROD\$" ] || fail "production's Odoo is not limited to $PROD: $(cat "$conf")"
[ "$(conf_get list_db)" = False ] && [ "$(conf_get proxy_mode)" = True ] || fail "database manager or proxy mode: $(cat "$conf")"
workers=$(conf_get workers)
[ "$workers" = $((2 * $(nproc) + 1 > 17 ? 17 : 2 * $(nproc) + 1)) ] || fail "production runs $workers workers on $(nproc) CPUs"
ws=$(conf_get gevent_port)
[ -n "$ws" ] && [ "$ws" != "$PORT_PROD" ] || fail "production's websocket port is ${ws:-missing}"
pw=$(conf_get admin_passwd)
[ "${#pw}" -ge 32 ] && [ "$pw" != admin ] || fail "weak master password"
[ "$(stat -c %a "$conf")" = 640 ] || fail "odoo.conf is $(stat -c %a "$conf"), not 640"
[ "$(stat -c %a "$STATE/secrets/$(tr '\0' '\n' <"/proc/$(cat "$STATE/envs/acme/production/odoo.pid")/environ" | sed -n 's/^PGUSER=//p').admin_passwd")" = 600 ] ||
  fail "the master password's secret is not the worker's alone"
listed=$(curl -sS -H 'Content-Type: application/json' -d '{"jsonrpc": "2.0", "method": "call", "params": {}}' "http://127.0.0.1:$PORT_PROD/web/database/list")
[[ $listed == *AccessDenied* ]] || fail "production lists its databases: $listed"
# A configuration odoo-bin refuses is refused by the stand-in too.
printf '[options]\nworkers = many\n' >"$WORK/bad.conf"
if out=$(python3 "$STANDIN" -c "$WORK/bad.conf" -d x --stop-after-init 2>&1); then fail "the stand-in took workers = many"; fi
[[ $out == *"option workers: invalid integer value: 'many'"* ]] || fail "the stand-in's refusal: $out"
say "production: $workers workers, websocket on $ws, database $PROD only, database manager off, master password kept secret"

# ------------------------------------------- staging before any production backup
# Staging runs a newer commit (acme_stock 1.1): with no production backup
# yet it starts on a new database, and says so.
sed -i 's/17.0.1.0.0/17.0.1.1.0/' "$REPO/addons/acme_stock/__manifest__.py"
commit "acme_stock 1.1"; SHA2=$SHA
s1=$(queue staging deploy); wait_status "$s1" succeeded 90
[ "$(scalar "SELECT count(*) FROM ops.run_events WHERE run_id = $s1 AND level = 'warning' AND message = 'no completed backup of production yet: staging starts on a new database'")" = 1 ] \
  || { show_events "$s1"; fail "staging deploy $s1 did not warn that production has no backup"; }
[ "$(partner "$STAGING" 'Production customer')" = 0 ] || fail "staging has production data without a backup"
[ "$(version_of "$STAGING" acme_stock)" = 17.0.1.1.0 ] || fail "staging did not install acme_stock 1.1"
on "$STAGING" "INSERT INTO res_partner (name) VALUES ('staging scratch')"
say "staging deploy $s1 without a production backup: new database, warning given"

# ---------------------------------------------------- production backup
bk=$(queue_backup production); wait_status "$bk" succeeded 60
B1=$(backup_of "$bk")
loc=$(scalar "SELECT location FROM ops.backups WHERE id = $B1")
[ "$(sha256sum "${loc#file://}" | cut -c1-64)" = "$(scalar "SELECT sha256 FROM ops.backups WHERE id = $B1")" ] || fail "backup $B1 checksum"
PROD_AT_B1=$(data_fingerprint "$PROD")
say "production backup $B1 at $loc"

# ------------------------------------------- staging refreshed from production
s2=$(queue staging deploy); wait_status "$s2" succeeded 120
[ "$(result "$s2" database_from_backup,purpose)" = refresh ] || fail "staging deploy $s2: $(result "$s2" database_from_backup)"
[ "$(result "$s2" database_from_backup,backup_id)" = "$B1" ] \
  || { show_events "$s2"; fail "staging deploy $s2 was not refreshed from backup $B1: $(result "$s2" database_from_backup)"; }
[ "$(partner "$STAGING" 'Production customer')" = 1 ] || fail "staging lacks the production customer"
[ "$(partner "$STAGING" 'staging scratch')" = 0 ] || fail "staging kept its own data over the production copy"
[ "$(data_fingerprint "$STAGING")" = "$PROD_AT_B1" ] || fail "staging data differs from the production backup"
cmp -s "$FS_PROD/3f/invoice-1" "$FS_STAGING/3f/invoice-1" || fail "staging filestore lacks the production attachment"
# Neutralized: only the autovacuum cron, only the mail catcher as mail server, no
# webhook automation, webhook actions pointed nowhere, payments off, flagged.
[ "$(on "$STAGING" "SELECT value FROM ir_config_parameter WHERE key = 'database.is_neutralized'")" = true ] || fail "staging not flagged neutralized"
# A copy is another database: its own uuid and secret (production's secret
# signs record-access tokens), links to the copy's own URL.
param() { on "$1" "SELECT value FROM ir_config_parameter WHERE key = '$2'"; }
for key in database.uuid database.secret; do
  if [ -z "$(param "$STAGING" "$key")" ] || [ "$(param "$STAGING" "$key")" = "$(param "$PROD" "$key")" ]; then
    fail "staging kept production's $key"
  fi
done
[ "$(param "$STAGING" web.base.url)" = "$(result "$s2" url)" ] \
  || fail "staging web.base.url is $(param "$STAGING" web.base.url), not its own $(result "$s2" url)"
# Odoo's own neutralization ran first: the data/neutralize.sql of the
# installed acme_sale applied to the copy, not to production.
[ "$(param "$STAGING" acme_sale.erp_url)" = http://erp.neutralized.invalid/ ] \
  || fail "acme_sale's own neutralization did not run on staging: acme_sale.erp_url is $(param "$STAGING" acme_sale.erp_url)"
[ "$(param "$PROD" acme_sale.erp_url)" = https://erp.example.com/orders ] || fail "the staging refresh neutralized production's acme_sale.erp_url"
[ "$(events_like "$s2" 'odoo-bin neutralize done;%acme_sale%')" = 1 ] || { show_events "$s2"; fail "staging deploy $s2 did not log which modules Odoo neutralized"; }
[ "$(on "$STAGING" "SELECT string_agg(cron_name, ',') FROM ir_cron WHERE active")" = "Base: Auto-vacuum internal data" ] || fail "staging crons still active"
[ "$(on "$STAGING" "SELECT string_agg(name || ' ' || smtp_host, ',') FROM ir_mail_server WHERE active")" = "odooops mail catcher 127.0.0.1" ] \
  || fail "staging sends mail elsewhere than to its mail catcher: $(on "$STAGING" "SELECT string_agg(smtp_host, ',') FROM ir_mail_server WHERE active")"
[ "$(on "$STAGING" "SELECT string_agg(name, ',' ORDER BY id) FROM base_automation WHERE active")" = "Tag new partners" ] || fail "staging webhook automation still active"
[ "$(on "$STAGING" "SELECT webhook_url FROM ir_act_server WHERE name = 'Notify ERP'")" = http://neutralized.invalid/ ] || fail "staging webhook action still calls out"
[ "$(on "$STAGING" "SELECT count(*) FROM payment_provider WHERE state NOT IN ('disabled', 'test')")" = 0 ] || fail "staging payment providers enabled"
# A legacy IAP token fills its varchar(43): it is cut so '+disabled' fits.
[ "$(on "$STAGING" "SELECT account_token FROM iap_account")" = "$(printf 'a%.0s' {1..34})+disabled" ] || fail "staging IAP token: $(on "$STAGING" "SELECT account_token FROM iap_account")"
# ... while production itself is untouched.
[ "$(on "$PROD" "SELECT count(*) FROM ir_cron WHERE active")" = 3 ] || fail "the staging refresh disabled production crons"
[ "$(on "$PROD" "SELECT count(*) FROM base_automation WHERE active")" = 2 ] || fail "the staging refresh disabled production automations"
[ -z "$(on "$PROD" "SELECT value FROM ir_config_parameter WHERE key = 'database.is_neutralized'")" ] || fail "the staging refresh flagged production"
# The modules are planned against the production copy: acme_stock is 1.0 there
# (1.1 in the replaced staging database), so it is updated, nothing installed.
[ "$(result "$s2" modules,updated)" = '["acme_stock"]' ] || fail "staging deploy $s2 modules: $(result "$s2" modules)"
[ "$(result "$s2" modules,installed)" = '[]' ] || fail "staging deploy $s2 modules: $(result "$s2" modules)"
# The updated module was tested on the copy, during its update.
[ "$(result "$s2" tests,tested)" = acme_stock ] && [ "$(result "$s2" tests,tags)" = /acme_stock ] \
  && [ "$(result "$s2" tests,failed)" = 0 ] && [ "$(result "$s2" tests,passed)" -ge 1 ] \
  || fail "staging deploy $s2 tests: $(result "$s2" tests)"
[ "$(version_of "$STAGING" acme_stock)" = 17.0.1.1.0 ] || fail "staging acme_stock not updated on the production copy"
[ "$(version_of "$PROD" acme_stock)" = 17.0.1.0.0 ] || fail "production acme_stock changed by the staging deploy"
health "$PORT_STAGING" | has '"pass"' || fail "staging does not answer /web/health"
[ "$(served_release "$PORT_STAGING")" = "$SHA2" ] || fail "staging does not serve $SHA2"
no_leftovers "staging refresh"
say "staging deploy $s2: neutralized copy of backup $B1 (mail, crons, webhooks off, flagged), acme_stock updated and tested, healthy"

# refresh_from_production = false: staging keeps its database on later deploys.
# The release it deploys ships a module neutralization that fails (used below).
mkdir -p "$REPO/addons/acme_stock/data"
echo "UPDATE acme_stock_no_such_table SET active = false;" >"$REPO/addons/acme_stock/data/neutralize.sql"
commit "acme_stock: a neutralization that fails"; SHA3=$SHA
on "$STAGING" "INSERT INTO res_partner (name) VALUES ('staging scratch 2')"
scalar "UPDATE ops.environments SET settings = settings || '{\"refresh_from_production\": false}' WHERE name = 'staging'" >/dev/null
s3=$(queue staging deploy); wait_status "$s3" succeeded 90
[ "$(partner "$STAGING" 'staging scratch 2')" = 1 ] || fail "refresh_from_production=false: staging data replaced"
[ -z "$(result "$s3" database_from_backup)" ] || fail "refresh_from_production=false: deploy $s3 restored a backup"
[ "$(events_like "$s3" 'settings.refresh_from_production is false%')" = 1 ] || fail "deploy $s3 did not say why it kept the database"
scalar "UPDATE ops.environments SET settings = settings - 'refresh_from_production' WHERE name = 'staging'" >/dev/null
say "staging deploy $s3 with refresh_from_production=false kept the staging database"

# A restore into staging runs Odoo's neutralization with staging's current
# release: acme_stock's data/neutralize.sql fails there, so the copy is
# dropped before the switch and staging keeps its database and release.
rs=$(queue_restore "$B1" staging); wait_status "$rs" "failed|succeeded" 120
[[ $(scalar "SELECT error FROM ops.runs WHERE id = $rs") == "step restore/20-database exited with code 1: Odoo's neutralization (odoo-bin neutralize) failed"*"; the environment keeps its database" ]] \
  || { show_events "$rs"; fail "restore $rs with a failing module neutralization: $(scalar "SELECT status || ': ' || coalesce(error, '') FROM ops.runs WHERE id = $rs")"; }
[ "$(partner "$STAGING" 'staging scratch 2')" = 1 ] || fail "a failed neutralization replaced the staging database"
[ "$(served_release "$PORT_STAGING")" = "$SHA3" ] || fail "staging does not serve $SHA3 after the refused restore $rs"
no_leftovers "failed neutralization"
git -C "$REPO" rm -q "addons/acme_stock/data/neutralize.sql"
commit "acme_stock: no neutralization of its own"
say "restore $rs into staging failed at Odoo's neutralization (acme_stock's data/neutralize.sql); staging kept its database"

# ------------------------------------------------------------ production, v2
PROD_BEFORE_V2=$(data_fingerprint "$PROD")
SHA=$SHA2
d2=$(queue production deploy); wait_status "$d2" succeeded 90
P2=$(scalar "SELECT id FROM ops.backups WHERE run_id = $d2 AND backup_type = 'pre_deploy' AND status = 'completed'")
[ -n "$P2" ] || { show_events "$d2"; fail "production deploy $d2 recorded no pre-deploy backup"; }
R2=$(scalar "SELECT id FROM ops.releases WHERE run_id = $d2")
[ "$(scalar "SELECT pre_deploy_backup_id FROM ops.releases WHERE id = $R2")" = "$P2" ] || fail "release $R2 does not reference backup $P2"
[ "$(version_of "$PROD" acme_stock)" = 17.0.1.1.0 ] || fail "production did not update acme_stock"
[ -z "$(result "$d2" tests)" ] || fail "production deploy $d2 ran tests: $(result "$d2" tests)"
[ "$(served_release "$PORT_PROD")" = "$SHA2" ] || fail "production does not serve $SHA2"
# Data written while v2 is live.
on "$PROD" "INSERT INTO res_partner (name) VALUES ('written under v2')"
echo "attachment written under v2" >"$FS_PROD/3f/under-v2"
PROD_UNDER_V2=$(data_fingerprint "$PROD")
say "production deploy $d2 (release $R2) with pre-deploy backup $P2"

# ------------------------------------------ a broken update goes back by itself
sed -i 's/17.0.1.0.0/17.0.2.0.0/' "$REPO/addons/acme_sale/__manifest__.py"
touch "$REPO/addons/acme_sale/FAIL_STANDIN_UPDATE"
commit "acme_sale 2.0 (its update fails)"
d3=$(queue production deploy); wait_status "$d3" failed 120
[[ $(scalar "SELECT error FROM ops.runs WHERE id = $d3") == "step deploy/40-start exited with code 1"* ]] \
  || fail "broken deploy $d3: $(scalar "SELECT error FROM ops.runs WHERE id = $d3")"
[ "$(result "$d3" rolled_back_to)" = "$SHA2" ] || fail "deploy $d3 did not roll back to $SHA2"
[ "$(served_release "$PORT_PROD")" = "$SHA2" ] || fail "production does not serve $SHA2 again"
[ "$(version_of "$PROD" acme_sale)" = 17.0.1.0.0 ] || fail "the half-done update of acme_sale stayed in the database"
[ "$(data_fingerprint "$PROD")" = "$PROD_UNDER_V2" ] || fail "production data differs from before the broken deploy"
[ -z "$(scalar "SELECT id FROM ops.releases WHERE run_id = $d3")" ] || fail "the failed deploy became a release"
[ -n "$(scalar "SELECT id FROM ops.backups WHERE run_id = $d3 AND backup_type = 'pre_deploy' AND status = 'completed'")" ] \
  || fail "the failed deploy's pre-deploy backup was not recorded"
health "$PORT_PROD" | has '"pass"' || fail "production unhealthy after the automatic rollback"
no_leftovers "automatic rollback"
say "broken deploy $d3 failed at deploy/40-start; production runs $SHA2 on its data from before the deploy"

# --------------------------------------- explicit rollback to the first release
rb=$(scalar "SELECT id FROM ops.rollback_release($R1, 'back to v1')")
[ "$(scalar "SELECT metadata->>'restore_backup_id' FROM ops.runs WHERE id = $rb")" = "$P2" ] || fail "rollback $rb does not restore backup $P2"
wait_status "$rb" succeeded 120
[ "$(served_release "$PORT_PROD")" = "$SHA1" ] || fail "rollback $rb: production does not serve $SHA1"
[ "$(result "$rb" database_from_backup,purpose)" = rollback ] || fail "rollback $rb: $(result "$rb" database_from_backup)"
[ "$(result "$rb" database_from_backup,backup_id)" = "$P2" ] \
  || { show_events "$rb"; fail "rollback $rb did not restore backup $P2: $(result "$rb" database_from_backup)"; }
[ "$(partner "$PROD" 'written under v2')" = 0 ] || fail "rollback $rb: a row written after release $R1 is still there"
[ "$(partner "$PROD" 'Production customer')" = 1 ] || fail "rollback $rb: the data of release $R1 is gone"
[ "$(data_fingerprint "$PROD")" = "$PROD_BEFORE_V2" ] || fail "rollback $rb: data differs from before release $R2"
[ ! -e "$FS_PROD/3f/under-v2" ] || fail "rollback $rb: an attachment written after release $R1 is still there"
[ -f "$FS_PROD/3f/invoice-1" ] || fail "rollback $rb: the attachment of release $R1 is gone"
[ "$(version_of "$PROD" acme_stock)" = 17.0.1.0.0 ] || fail "rollback $rb: acme_stock is not at release $R1's version"
[ "$(result "$rb" modules,updated)" = '[]' ] || fail "rollback $rb updated modules: $(result "$rb" modules)"
# production is restored as it was, not neutralized
[ -z "$(on "$PROD" "SELECT value FROM ir_config_parameter WHERE key = 'database.is_neutralized'")" ] || fail "rollback $rb flagged production neutralized"
[ "$(on "$PROD" "SELECT count(*) FROM ir_cron WHERE active")" = 3 ] || fail "rollback $rb disabled production crons"
[ "$(on "$PROD" "SELECT string_agg(smtp_host, ',') FROM ir_mail_server WHERE active")" = smtp.example.com ] || fail "rollback $rb changed production mail servers"
[ "$(scalar "SELECT rollback_of FROM ops.releases WHERE run_id = $rb")" = "$R1" ] || fail "rollback $rb: release not recorded as a rollback of $R1"
P4=$(scalar "SELECT id FROM ops.backups WHERE run_id = $rb AND backup_type = 'pre_deploy' AND status = 'completed'")
[ -n "$P4" ] || fail "rollback $rb: the database it replaced was not backed up first"
health "$PORT_PROD" | has '"pass"' || fail "production unhealthy after rollback $rb"
no_leftovers "rollback"
say "rollback $rb to release $R1: serves $SHA1 on the database of backup $P2 (rows written later are gone)"

# ------------------------------------------- an unusable backup changes nothing
# Rolling forward to release $R2 restores $P4 (taken before the rollback);
# corrupted, the run fails at its checksum and production keeps serving.
R4=$(scalar "SELECT id FROM ops.releases WHERE run_id = $rb")
p4loc=$(scalar "SELECT location FROM ops.backups WHERE id = $P4")
printf 'corruption' | dd of="${p4loc#file://}" bs=1 seek=2000 conv=notrunc status=none
before=$(data_fingerprint "$PROD")
rf=$(scalar "SELECT id FROM ops.rollback_release($R2, 'forward again')")
[ "$(scalar "SELECT metadata->>'restore_backup_id' FROM ops.runs WHERE id = $rf")" = "$P4" ] || fail "rollback $rf to $R2 does not restore $P4 (release $R4 followed $R2)"
wait_status "$rf" failed 120
[[ $(scalar "SELECT error FROM ops.runs WHERE id = $rf") == "step deploy/35-restore-backup exited with code 1: backup $P4, nothing was restored"*"checksum mismatch"* ]] \
  || fail "corrupted backup: $(scalar "SELECT error FROM ops.runs WHERE id = $rf")"
[ "$(data_fingerprint "$PROD")" = "$before" ] || fail "a refused rollback changed production data"
[ "$(served_release "$PORT_PROD")" = "$SHA1" ] || fail "a refused rollback changed the served release: $(served_release "$PORT_PROD") is not $SHA1"
# ... a request cannot name the backup a deploy restores (odooops sets it),
# and a named backup that was never completed fails before any step runs.
refused=$(scalar "SELECT ops.queue_run(1, 'production', '$SHA2', 'main', '{\"restore_backup_id\": $P4}', 'deploy')" 2>&1 || true)
[[ $refused == *"metadata.restore_backup_id is set by odooops, not by a request"* ]] || fail "a request named a backup to restore: $refused"
pending=$(scalar "WITH b AS (SELECT * FROM ops.create_backup(1, 'production', 'manual'))
                  SELECT b.backup_id FROM b, LATERAL ops.cancel_run(b.run_id, 'never taken')")
missing=$(scalar "SELECT id FROM ops._queue_run_trusted(1, 'production', '$SHA2', 'main', '{\"restore_backup_id\": $pending}', 'deploy')")
wait_status "$missing" failed 60
[ "$(scalar "SELECT error FROM ops.runs WHERE id = $missing")" = "backup $pending is failed, only a completed backup can be restored; the database was not touched" ] \
  || fail "missing backup: $(scalar "SELECT error FROM ops.runs WHERE id = $missing")"
[ "$(events_like "$missing" 'step % started')" = 0 ] || fail "a step ran for a rollback without its backup"
[ "$(data_fingerprint "$PROD")" = "$before" ] || fail "a refused rollback changed production data"
health "$PORT_PROD" | has '"pass"' || fail "production stopped serving after a refused rollback"
no_leftovers "refused rollbacks"
say "rollbacks with a corrupted ($P4) or missing backup failed and left production serving as it was"
say "PASS"
