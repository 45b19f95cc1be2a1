#!/usr/bin/env bash
# Backup of production to an S3 server that verifies SigV4 (multipart, as the
# dump is above the threshold) -> restore into staging -> the restored data
# equals the source, the copy is neutralized, staging is restarted and
# healthy. Then the same with file:// storage into the dev environment.
# Then production restores: each first backs up what it replaces
# (pre_restore), and one whose Odoo fails its health check puts the old
# database back. Last, production is destroyed: after an approval, with a
# final backup first.
# The Odoo is the stand-in (tests/harness/odoo_standin.py), not Odoo.
source "$(dirname "$0")/lib.sh"
setup_control_plane
start_s3 odooops-backups
read -ra S3 <<<"$(S3_FLAGS)"
start_worker s3w "${S3[@]}" --storage s3://odooops-backups/acme \
  --multipart-threshold $((5 << 20)) --multipart-part-size $((5 << 20))

d1=$(queue production deploy); d2=$(queue staging deploy)
wait_status "$d1" succeeded 90; wait_status "$d2" succeeded 90
art=$(scalar "SELECT location || ' ' || size_bytes || ' ' || sha256 FROM ops.artifacts WHERE run_id = $d1 AND name = 'addons.json'")
[[ $art == s3://odooops-backups/acme/artifacts/acme/run-$d1/addons.json\ * ]] || fail "addons report artifact not uploaded: '$art'"
"$WORKER_BIN" storage get "${art%% *}" - "${S3[@]}" 2>/dev/null | has acme_stock || fail "artifact content"
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
[[ $loc == s3://odooops-backups/acme/backups/acme/production/*/db.dump.zst ]] || fail "backup location $loc"
[ "$size" -gt $((5 << 20)) ] || fail "the dump ($size bytes) is too small to exercise multipart upload"
# The object in the S3 server is byte-identical to what was recorded.
"$WORKER_BIN" storage get "$loc" "$WORK/check.dump" --expect-sha256 "$(scalar "SELECT sha256 FROM ops.backups WHERE id = $bid")" \
  "${S3[@]}" 2>/dev/null || fail "the stored dump does not match its checksum"
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
  # Its mail goes to the environment's mail catcher only (docs/mail.md).
  [ "$(psql -X -A -t -d "$db" -c "SELECT string_agg(name || ' ' || smtp_host, ',') FROM ir_mail_server WHERE active")" = "odooops mail catcher 127.0.0.1" ] \
    || fail "$db: a real mail server is still active"
  [ "$(psql -X -A -t -d "$db" -c "SELECT count(*) FROM payment_provider WHERE state NOT IN ('disabled', 'test')")" = 0 ] \
    || fail "$db: payment providers still enabled"
}
check_neutralized "$STAGING"
[ "$(psql -X -A -t -d "$PROD" -c "SELECT count(*) FROM ir_cron WHERE active")" = 3 ] || fail "production itself was changed"
health "$PORT_STAGING" | has '"pass"' || fail "staging not healthy after the restore"
curl -fsS "http://127.0.0.1:$PORT_STAGING/standin/info" | has "\"database\": \"$STAGING\"" || fail "staging serves another database"
say "restore $r into staging: data equal to production, neutralized, restarted and healthy"

# A neutralized copy is not reported ready once something re-enables its
# scheduled actions: the deploy fails at the health step and says why
# (staging keeps its database here: no refresh from production on this
# deploy). A re-enabled outgoing mail server never gets that far: the start
# points the database at the mail catcher again first.
scalar "UPDATE ops.environments SET settings = settings || '{\"refresh_from_production\": false}' WHERE name = 'staging'" >/dev/null
psql -X -q -d "$STAGING" -c "UPDATE ir_mail_server SET active = true WHERE smtp_host <> 'invalid'" \
  -c "UPDATE ir_cron SET active = true WHERE cron_name <> 'Base: Auto-vacuum internal data'"
d=$(queue staging deploy)
wait_status "$d" failed 120
scalar "SELECT error FROM ops.runs WHERE id = $d" | has "no longer neutralized" \
  || fail "deploy $d: $(scalar "SELECT error FROM ops.runs WHERE id = $d")"
[ "$(psql -X -A -t -d "$STAGING" -c "SELECT string_agg(name, ',') FROM ir_mail_server WHERE active")" = "odooops mail catcher" ] \
  || fail "deploy $d started staging with a real mail server active"
psql -X -q -d "$STAGING" -c "UPDATE ir_cron SET active = false WHERE cron_name <> 'Base: Auto-vacuum internal data'"
say "deploy $d refused to report staging ready while its crons ran again; its re-enabled mail server was switched off"

# The same through file:// storage, into the dev environment (never deployed:
# the restore leaves it stopped until its next deploy).
kill -TERM "$LAST_WORKER_PID"; wait "$LAST_WORKER_PID" || true
start_worker filew --storage "file://$WORK/backups"
rehost filew production staging
b2=$(queue_backup production)
wait_status "$b2" succeeded 120
bid2=$(backup_of "$b2")
loc2=$(scalar "SELECT location FROM ops.backups WHERE id = $bid2")
[[ $loc2 == file://$WORK/backups/backups/acme/production/*/db.dump.zst ]] || fail "file backup location $loc2"
[ "$(sha256sum "${loc2#file://}" | cut -c1-64)" = "$(scalar "SELECT sha256 FROM ops.backups WHERE id = $bid2")" ] || fail "file checksum"
r2=$(queue_restore "$bid2" dev)
wait_status "$r2" succeeded 120
[ "$(data_fingerprint "$DEV")" = "$(data_fingerprint "$PROD")" ] || fail "restored dev data differs from production"
check_neutralized "$DEV"
# What the restores replaced was dropped once they stood (kept aside until then).
[ -z "$(psql -X -A -t -d postgres -c "SELECT string_agg(datname, ' ') FROM pg_database WHERE datname ~ '^($STAGING|$DEV)_pre_'")" ] \
  || fail "databases the restores replaced are left: $(psql -X -A -t -d postgres -c "SELECT string_agg(datname, ' ') FROM pg_database WHERE datname ~ '^($STAGING|$DEV)_pre_'")"
say "file:// backup $bid2 restored into dev: equal and neutralized"

# Backups taken before dumps were zstd-compressed (a plain custom-format
# db.dump) still restore: the same data as backup $bid2, stored the old way.
legacy=$WORK/backups/backups/acme/production/legacy
mkdir -p "$legacy"
zstd -d -q "${loc2#file://}" -o "$legacy/db.dump"
pg_restore --list "$legacy/db.dump" >/dev/null || fail "the unpacked dump of backup $bid2 is not a pg_dump archive"
fs2=$(scalar "SELECT metadata -> 'backup' -> 'filestore' FROM ops.backups WHERE id = $bid2")
psql -X -q -d "$DEV" -c "INSERT INTO res_partner (name, email) VALUES ('dev only', 'dev@example.com')"
bid_old=$(scalar "INSERT INTO ops.backups (project_id, environment_id, backup_type, status, location, size_bytes, sha256,
                                           metadata, completed_at)
                  SELECT 1, id, 'manual', 'completed', 'file://$legacy/db.dump', $(stat -c %s "$legacy/db.dump"),
                         '$(sha256sum "$legacy/db.dump" | cut -c1-64)',
                         jsonb_build_object('backup', jsonb_build_object('filestore', '$fs2'::jsonb,
                                                                         'format', 'pg_dump custom + tar filestore')), now()
                    FROM ops.environments WHERE name = 'production' RETURNING id")
r_old=$(queue_restore "$bid_old" dev)
wait_status "$r_old" succeeded 120
[ "$(data_fingerprint "$DEV")" = "$(data_fingerprint "$PROD")" ] || fail "the plain-dump backup $bid_old did not restore production's data"
say "a plain custom-format dump (backup $bid_old, as stored before 0.1.3) restored into dev"

# A production restore loses nothing: what it replaces is backed up first
# (pre_restore, named in the restore's result), with a row and an attachment
# written after the backup being restored; restoring that pre_restore
# backup brings them back.
late_file=$STATE/envs/acme/production/data/filestore/$PROD/7a/late-attachment
psql -X -q -d "$PROD" -c "INSERT INTO res_partner (name, email) VALUES ('written after backup $bid2', 'late@example.com')"
mkdir -p "$(dirname "$late_file")"; echo "attachment written after backup $bid2" >"$late_file"
late() { psql -X -A -t -d "$PROD" -c "SELECT count(*) FROM res_partner WHERE name = 'written after backup $bid2'"; }
[ "$(late)" = 1 ] || fail "the late row was not written"
r3=$(queue_restore "$bid2" production)
wait_status "$r3" succeeded 180
[ "$(late)" = 0 ] || fail "restore $r3 did not put backup $bid2 in place in production"
[ ! -e "$late_file" ] || fail "restore $r3 did not put the filestore of backup $bid2 in place"
pre=$(scalar "SELECT result ->> 'pre_restore_backup_id' FROM ops.runs WHERE id = $r3")
[ -n "$pre" ] || fail "restore $r3 of production recorded no pre_restore backup (result: $(scalar "SELECT result FROM ops.runs WHERE id = $r3"))"
[ "$(scalar "SELECT backup_type || ' ' || status || ' ' || run_id FROM ops.backups WHERE id = $pre")" = "pre_restore completed $r3" ] \
  || fail "backup $pre: $(scalar "SELECT backup_type || ' ' || status || ' ' || coalesce(run_id::text, '-') FROM ops.backups WHERE id = $pre")"
[ "$(scalar "SELECT metadata ->> 'pre_restore_backup_id' FROM ops.restores WHERE run_id = $r3")" = "$pre" ] \
  || fail "the restore of run $r3 does not name its pre_restore backup $pre"
[ -z "$(psql -X -A -t -d postgres -c "SELECT datname FROM pg_database WHERE datname LIKE '${PROD}\\_pre\\_%'")" ] \
  || fail "the replaced production database was not dropped once the restore stood"
health "$PORT_PROD" | has '"pass"' || fail "production not healthy after restore $r3"
r4=$(queue_restore "$pre" production)
wait_status "$r4" succeeded 180
[ "$(late)" = 1 ] || fail "the pre_restore backup $pre does not hold the row written after backup $bid2"
cmp -s <(echo "attachment written after backup $bid2") "$late_file" || fail "the pre_restore backup $pre does not hold the late attachment"
say "restore $r3 into production took pre_restore backup $pre first; restoring it brought back what was written after backup $bid2"

# A restore whose Odoo fails its health check puts the replaced database
# back and production serves it again: the backup restored here carries the
# stand-in's failure marker (a database its Odoo cannot serve).
psql -X -q -d "$PROD" -c "INSERT INTO ir_config_parameter (key, value) VALUES ('standin.fail_start', 'true')"
b5=$(queue_backup production)
wait_status "$b5" succeeded 120
bad=$(backup_of "$b5")
psql -X -q -d "$PROD" -c "DELETE FROM ir_config_parameter WHERE key = 'standin.fail_start'" \
  -c "INSERT INTO res_partner (name, email) VALUES ('written before the failed restore', 'kept@example.com')"
before=$(data_fingerprint "$PROD")
r5=$(queue_restore "$bad" production)
wait_status "$r5" failed 180
scalar "SELECT error FROM ops.runs WHERE id = $r5" | has "restore/50-start" \
  || fail "restore $r5 failed elsewhere: $(scalar "SELECT error FROM ops.runs WHERE id = $r5")"
[ "$(data_fingerprint "$PROD")" = "$before" ] || fail "production does not have its database back after the failed restore $r5"
[ "$(psql -X -A -t -d "$PROD" -c "SELECT count(*) FROM ir_config_parameter WHERE key = 'standin.fail_start'")" = 0 ] \
  || fail "production still runs on the failed restore's database"
health "$PORT_PROD" | has '"pass"' || fail "production does not serve after the failed restore $r5"
curl -fsS "http://127.0.0.1:$PORT_PROD/standin/info" | has "\"database\": \"$PROD\"" || fail "production serves another database"
[ -z "$(psql -X -A -t -d postgres -c "SELECT datname FROM pg_database WHERE datname LIKE '${PROD}\\_%'")" ] \
  || fail "databases left behind by the failed restore: $(psql -X -A -t -d postgres -c "SELECT string_agg(datname, ' ') FROM pg_database WHERE datname LIKE '${PROD}\\_%'")"
[ -n "$(scalar "SELECT result ->> 'pre_restore_backup_id' FROM ops.runs WHERE id = $r5")" ] \
  || fail "the failed restore $r5 names no pre_restore backup"
say "restore $r5 failed its health check: production has its database back and serves it"

# Destroying production waits for another member's approval and takes a
# final backup first; without storage for it, nothing is removed and
# production serves on.
kill -TERM "$LAST_WORKER_PID"; wait "$LAST_WORKER_PID" || true
start_worker nostore
rehost nostore production
final_fp=$(data_fingerprint "$PROD")
d1=$(scalar "SELECT id FROM ops.destroy_environment(1, 'production', 'end-to-end test')")
sleep 2
[ "$(scalar "SELECT status || ' ' || (available_at = 'infinity') FROM ops.runs WHERE id = $d1")" = "queued true" ] \
  || fail "destroy $d1 of production did not wait for its approval"
approve_destroy "$d1"
wait_status "$d1" failed 120
scalar "SELECT error FROM ops.runs WHERE id = $d1" | has "no storage configured" \
  || fail "destroy $d1: $(scalar "SELECT error FROM ops.runs WHERE id = $d1")"
[ "$(scalar "SELECT status FROM ops.environments WHERE name = 'production'")" = active ] || fail "production is not active after the refused destroy"
[ "$(data_fingerprint "$PROD")" = "$final_fp" ] || fail "production lost data in the refused destroy $d1"
health "$PORT_PROD" | has '"pass"' || fail "production does not serve after the refused destroy $d1"
kill -TERM "$LAST_WORKER_PID"; wait "$LAST_WORKER_PID" || true
start_worker filew --storage "file://$WORK/backups"
rehost filew production
d2=$(scalar "SELECT id FROM ops.destroy_environment(1, 'production', 'end-to-end test')")
approve_destroy "$d2"
wait_status "$d2" succeeded 180
[ "$(scalar "SELECT status FROM ops.environments WHERE name = 'production'")" = destroyed ] || fail "production is not destroyed"
[ -z "$(psql -X -A -t -d postgres -c "SELECT 1 FROM pg_database WHERE datname = '$PROD'")" ] || fail "destroy $d2 left the database $PROD"
final=$(scalar "SELECT result ->> 'final_backup_id' FROM ops.runs WHERE id = $d2")
[ "$(scalar "SELECT backup_type || ' ' || status || ' ' || (expires_at IS NULL) FROM ops.backups WHERE id = ${final:-0}")" = "final completed true" ] \
  || fail "destroy $d2 recorded no final backup that is kept (result: $(scalar "SELECT result FROM ops.runs WHERE id = $d2"))"
r6=$(queue_restore "$final" staging)
wait_status "$r6" succeeded 180
[ "$(data_fingerprint "$STAGING")" = "$final_fp" ] || fail "the final backup $final does not hold production's last data"
say "production destroyed after an approval: refused without storage for its final backup, then final backup $final taken, restorable"
say "PASS"
