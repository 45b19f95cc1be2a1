#!/usr/bin/env bash
# Backup of production to an S3 server that verifies SigV4 (multipart, as the
# dump is above the threshold) -> restore into staging -> the restored data
# equals the source, the copy is neutralized, staging is restarted and
# healthy. Then the same with file:// storage into the dev environment.
# The Odoo is the stand-in (tests/harness/odoo_standin.py), not Odoo.
source "$(dirname "$0")/lib.sh"
setup_control_plane
start_s3 odooops-backups
start_worker s3w $(S3_FLAGS) --storage s3://odooops-backups/acme \
  --multipart-threshold $((5 << 20)) --multipart-part-size $((5 << 20))

d1=$(queue production deploy); d2=$(queue staging deploy)
wait_status "$d1" succeeded 90; wait_status "$d2" succeeded 90
art=$(scalar "SELECT location || ' ' || size_bytes || ' ' || sha256 FROM ops.artifacts WHERE run_id = $d1 AND name = 'addons.json'")
[[ $art == s3://odooops-backups/acme/artifacts/acme/run-$d1/addons.json\ * ]] || fail "addons report artifact not uploaded: '$art'"
"$WORKER_BIN" storage get "${art%% *}" - $(S3_FLAGS) 2>/dev/null | grep -q acme_stock || fail "artifact content"
say "deploy $d1 uploaded its addons report artifact to ${art%% *}"
PROD=e2e_backup_restore_prod; STAGING=e2e_backup_restore_staging; DEV=e2e_backup_restore_dev
# Enough production data for a multipart upload (dump > 5 MiB).
psql -X -q -d "$PROD" -c "INSERT INTO res_partner (name, email)
  SELECT md5(g::text) || md5((g * 7)::text) || md5((g * 13)::text), md5(random()::text) || '@example.com'
    FROM generate_series(1, 120000) g"
echo "production attachment $(date +%s%N)" >"$STATE/envs/acme/production/data/filestore/$PROD/3f/3f2a9c0e5d1b"
[ "$(data_fingerprint "$PROD")" != "$(data_fingerprint "$STAGING")" ] || fail "staging already equals production"

b=$(queue_backup production)
wait_status "$b" succeeded 120
bid=$(backup_of "$b")
loc=$(scalar "SELECT location FROM ops.backups WHERE id = $bid")
size=$(scalar "SELECT size_bytes FROM ops.backups WHERE id = $bid")
[[ $loc == s3://odooops-backups/acme/backups/acme/production/*/db.dump ]] || fail "backup location $loc"
[ "$size" -gt $((5 << 20)) ] || fail "the dump ($size bytes) is too small to exercise multipart upload"
# The object in the S3 server is byte-identical to what was recorded.
"$WORKER_BIN" storage get "$loc" "$WORK/check.dump" --expect-sha256 "$(scalar "SELECT sha256 FROM ops.backups WHERE id = $bid")" \
  $(S3_FLAGS) 2>/dev/null || fail "the stored dump does not match its checksum"
say "backup $bid of production: $size bytes at $loc (multipart, SigV4 verified by the server)"

r=$(queue_restore "$bid" staging)
wait_status "$r" succeeded 120
[ "$(data_fingerprint "$STAGING")" = "$(data_fingerprint "$PROD")" ] || fail "restored staging data differs from production"
cmp -s "$STATE/envs/acme/production/data/filestore/$PROD/3f/3f2a9c0e5d1b" \
       "$STATE/envs/acme/staging/data/filestore/$STAGING/3f/3f2a9c0e5d1b" || fail "filestore not restored"
check_neutralized() {
  local db=$1
  [ "$(psql -X -A -t -d "$db" -c "SELECT value FROM ir_config_parameter WHERE key = 'database.is_neutralized'")" = true ] || fail "$db: not flagged neutralized"
  [ "$(psql -X -A -t -d "$db" -c "SELECT string_agg(c.cron_name, ',') FROM ir_cron c WHERE active")" = "Base: Auto-vacuum internal data" ] \
    || fail "$db: crons other than autovacuum still active"
  [ "$(psql -X -A -t -d "$db" -c "SELECT string_agg(smtp_host, ',') FROM ir_mail_server WHERE active")" = invalid ] \
    || fail "$db: a real mail server is still active"
  [ "$(psql -X -A -t -d "$db" -c "SELECT count(*) FROM payment_provider WHERE state NOT IN ('disabled', 'test')")" = 0 ] \
    || fail "$db: payment providers still enabled"
}
check_neutralized "$STAGING"
[ "$(psql -X -A -t -d "$PROD" -c "SELECT count(*) FROM ir_cron WHERE active")" = 3 ] || fail "production itself was changed"
health "$PORT_STAGING" | grep -q '"pass"' || fail "staging not healthy after the restore"
curl -fsS "http://127.0.0.1:$PORT_STAGING/standin/info" | grep -q "\"database\": \"$STAGING\"" || fail "staging serves another database"
say "restore $r into staging: data equal to production, neutralized, restarted and healthy"

# A neutralized copy is not reported ready once something re-enables its
# outgoing mail: the deploy fails at the health step and says why (staging
# keeps its database here: no refresh from production on this deploy).
scalar "UPDATE ops.environments SET settings = settings || '{\"refresh_from_production\": false}' WHERE name = 'staging'" >/dev/null
psql -X -q -d "$STAGING" -c "UPDATE ir_mail_server SET active = true WHERE smtp_host <> 'invalid'"
d=$(queue staging deploy)
wait_status "$d" failed 120
scalar "SELECT error FROM ops.runs WHERE id = $d" | grep -q "no longer neutralized" \
  || fail "deploy $d: $(scalar "SELECT error FROM ops.runs WHERE id = $d")"
psql -X -q -d "$STAGING" -c "UPDATE ir_mail_server SET active = false WHERE smtp_host <> 'invalid'"
say "deploy $d refused to report staging ready while a real mail server was active again"

# The same through file:// storage, into the dev environment (never deployed:
# the restore leaves it stopped until its next deploy).
kill -TERM "$LAST_WORKER_PID"; wait "$LAST_WORKER_PID" || true
start_worker filew --storage "file://$WORK/backups"
b2=$(queue_backup production)
wait_status "$b2" succeeded 120
bid2=$(backup_of "$b2")
loc2=$(scalar "SELECT location FROM ops.backups WHERE id = $bid2")
[[ $loc2 == file://$WORK/backups/backups/acme/production/*/db.dump ]] || fail "file backup location $loc2"
[ "$(sha256sum "${loc2#file://}" | cut -c1-64)" = "$(scalar "SELECT sha256 FROM ops.backups WHERE id = $bid2")" ] || fail "file checksum"
r2=$(queue_restore "$bid2" dev)
wait_status "$r2" succeeded 120
[ "$(data_fingerprint "$DEV")" = "$(data_fingerprint "$PROD")" ] || fail "restored dev data differs from production"
check_neutralized "$DEV"
say "file:// backup $bid2 restored into dev: equal and neutralized"
say "PASS"
