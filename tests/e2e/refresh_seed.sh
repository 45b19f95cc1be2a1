#!/usr/bin/env bash
# Refresh seeds (--refresh-seeds): a staging refresh keeps the neutralized
# copy it restored as a seed no one can connect to; the next refresh from
# the same backup clones it instead of fetching and restoring the backup,
# and is neutralized again; a refresh from a newer backup restores and
# replaces the seed; the environment's destroy drops it. The Odoo is the
# stand-in (tests/harness/odoo_standin.py), not Odoo.
source "$(dirname "$0")/lib.sh"
setup_control_plane
start_worker rs --kinds deploy,backup,destroy --storage "file://$WORK/backups" --refresh-seeds true
PROD=e2e_refresh_seed_prod; STAGING=e2e_refresh_seed_staging
FS_STAGING=$STATE/envs/acme/staging/data/filestore/$STAGING
events_like() { scalar "SELECT count(*) FROM ops.run_events WHERE run_id = $1 AND message LIKE '$2'"; }
seeds() { on postgres "SELECT coalesce(string_agg(datname || ':' || datallowconn || ':' || pg_get_userbyid(datdba), ' ' ORDER BY datname), '')
                         FROM pg_database WHERE datname LIKE '${STAGING}\\_seed\\_%'"; }

d=$(queue production deploy); wait_status "$d" succeeded 120
mkdir -p "$STATE/envs/acme/production/data/filestore/$PROD/3f"
echo "production attachment" >"$STATE/envs/acme/production/data/filestore/$PROD/3f/3f2a9c0e5d1b"
on "$PROD" "INSERT INTO res_partner (name) VALUES ('from production 1')" >/dev/null
r=$(queue_backup production); wait_status "$r" succeeded 120; b1=$(backup_of "$r")

# 1. The first refresh from b1 restores it and keeps the seed.
s1=$(queue staging deploy); wait_status "$s1" succeeded 120
[ "$(events_like "$s1" 'fetching backup%')" = 1 ] || fail "refresh $s1 did not fetch backup $b1"
[ "$(seeds)" = "${STAGING}_seed_$b1:false:odoo_$STAGING" ] || fail "refresh $s1 kept no closed seed of $b1 owned by the role: $(seeds)"
psql -X -q -d "${STAGING}_seed_$b1" -c 'SELECT 1' >/dev/null 2>&1 && fail "the seed accepts connections"
[ "$(on "${STAGING}" "SELECT count(*) FROM res_partner WHERE name = 'from production 1'")" = 1 ] || fail "staging lacks production's data"
say "refresh $s1 restored backup $b1 and kept the seed ${STAGING}_seed_$b1 (closed to connections)"

# 2. The next refresh from b1 clones the seed: no download, no restore; the
# clone is neutralized again and staging's own changes are gone.
on "$STAGING" "INSERT INTO res_partner (name) VALUES ('written on staging')" >/dev/null
uuid1=$(on "$STAGING" "SELECT value FROM ir_config_parameter WHERE key = 'database.uuid'")
s2=$(queue staging deploy); wait_status "$s2" succeeded 120
[ "$(events_like "$s2" 'cloned %')" = 1 ] || fail "refresh $s2 did not clone the seed"
[ "$(events_like "$s2" 'fetching backup%')" = 0 ] || fail "refresh $s2 fetched the backup although the seed was there"
[ "$(events_like "$s2" 'restoring into%')" = 0 ] || fail "refresh $s2 restored although the seed was there"
[ "$(on "$STAGING" "SELECT count(*) FROM res_partner WHERE name = 'written on staging'")" = 0 ] || fail "refresh $s2 kept staging's own data"
[ "$(on "$STAGING" "SELECT count(*) FROM res_partner WHERE name = 'from production 1'")" = 1 ] || fail "refresh $s2 lacks production's data"
[ "$(on "$STAGING" "SELECT value FROM ir_config_parameter WHERE key = 'database.is_neutralized'")" = true ] || fail "the clone is not neutralized"
[ "$(on "$STAGING" "SELECT value FROM ir_config_parameter WHERE key = 'database.uuid'")" != "$uuid1" ] || fail "the clone kept the previous copy's database.uuid"
[ "$(result "$s2" database_from_backup,backup_id)" = "$b1" ] || fail "refresh $s2 records backup $(result "$s2" database_from_backup,backup_id)"
grep -q "production attachment" "$FS_STAGING/3f/3f2a9c0e5d1b" || fail "the clone's filestore lacks production's attachment"
[ "$(seeds)" = "${STAGING}_seed_$b1:false:odoo_$STAGING" ] || fail "the seed changed: $(seeds)"
health "$PORT_STAGING" | has '"pass"' || fail "staging does not serve the clone"
say "refresh $s2 cloned the seed: no download, no restore; neutralized again, staging's own data gone"

# 3. A newer backup: restored again, and its seed replaces the older one.
on "$PROD" "INSERT INTO res_partner (name) VALUES ('from production 2')" >/dev/null
r=$(queue_backup production); wait_status "$r" succeeded 120; b2=$(backup_of "$r")
s3=$(queue staging deploy); wait_status "$s3" succeeded 120
[ "$(events_like "$s3" 'fetching backup%')" = 1 ] || fail "refresh $s3 did not restore the newer backup $b2"
[ "$(on "$STAGING" "SELECT count(*) FROM res_partner WHERE name = 'from production 2'")" = 1 ] || fail "refresh $s3 lacks backup $b2's data"
[ "$(seeds)" = "${STAGING}_seed_$b2:false:odoo_$STAGING" ] || fail "the seed of $b2 did not replace the one of $b1: $(seeds)"
say "refresh $s3 restored the newer backup $b2; its seed replaced the one of $b1"

# 4. The destroy drops the seed with the environment (and its role).
x=$(scalar "SELECT id FROM ops.destroy_environment(1, 'staging', 'end-to-end test')"); wait_status "$x" succeeded 120
[ -z "$(seeds)" ] || fail "destroy $x left seeds: $(seeds)"
[ "$(on postgres "SELECT count(*) FROM pg_roles WHERE rolname = 'odoo_$STAGING'")" = 0 ] || fail "destroy $x left the role"
say "destroy $x dropped the seed and the role"
say "PASS"
