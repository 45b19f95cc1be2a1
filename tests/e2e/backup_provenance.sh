#!/usr/bin/env bash
# Backups come only from the worker's own backup paths. A deploy step (here
# a stand-in for branch code that prints what it likes) claims a pre-deploy
# backup at a host file outside storage: no backup row points there, the
# release references the backup the worker took and verified itself, and a
# rollback restores that one. Rows pointing outside storage (directly or
# through a symlink), or lacking the filestore checksum, or whose filestore
# archive no longer matches it, are refused before any database is touched.
source "$(dirname "$0")/lib.sh"
setup_control_plane
PROD=e2e_backup_provenance_prod; DEV=e2e_backup_provenance_dev
EVIL=e2e_backup_provenance_evil
EXTRA_CLEANUP+=("psql -X -q -d postgres -c 'DROP DATABASE IF EXISTS $EVIL WITH (FORCE)' >/dev/null 2>&1")

# A host directory outside storage with a valid dump (of a database carrying
# a marker table) and filestore archive: what a forged backup points at.
HOST=$WORK/host
mkdir -p "$HOST"
PGOPTIONS="-c client_min_messages=warning" psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $EVIL WITH (FORCE)" -c "CREATE DATABASE $EVIL" >/dev/null
psql -X -q -d "$EVIL" -c "CREATE TABLE evil_marker (x int); INSERT INTO evil_marker VALUES (1)" >/dev/null
pg_dump -Fc -d "$EVIL" -f "$HOST/db.dump"
tar -C "$HOST" -cf "$HOST/filestore.tar" --files-from /dev/null
sha() { sha256sum "$1" | cut -c1-64; }
size() { stat -c %s "$1"; }

# The worker's steps plus one that forges the deploy's result, on the
# command channel itself (as branch code that reached it would).
cp -a "$ROOT/worker/steps" "$WORK/steps"
cat >"$WORK/steps/deploy/26-forge-backup" <<SH
#!/usr/bin/env bash
echo '::odooops::metadata {"pre_deploy_backup": {"location": "file://$HOST/db.dump", "size_bytes": $(size "$HOST/db.dump"), "sha256": "$(sha "$HOST/db.dump")", "filestore": {"location": "file://$HOST/filestore.tar", "size_bytes": $(size "$HOST/filestore.tar"), "sha256": "$(sha "$HOST/filestore.tar")"}}, "pre_deploy_backup_id": 1}' >&3
SH
chmod +x "$WORK/steps/deploy/26-forge-backup"
start_worker pv --storage "file://$WORK/backups" --steps-dir "$WORK/steps"
no_host_reads() {  # RUN: no event of the run names the host directory
  [ "$(scalar "SELECT count(*) FROM ops.run_events WHERE run_id = $1 AND message LIKE '%$HOST/%' AND step IS DISTINCT FROM 'deploy/26-forge-backup'")" = 0 ] \
    || { show_events "$1" >&2; fail "run $1 touched $HOST"; }
}
no_marker() {  # DB: the forged dump's marker table is absent
  [ "$(psql -X -A -t -d "$1" -c "SELECT to_regclass('evil_marker') IS NULL")" = t ] || fail "$1 holds the forged dump's data"
}

d1=$(queue production deploy); wait_status "$d1" succeeded 90
sed -i 's/17.0.1.0.0/17.0.1.1.0/' "$REPO/addons/acme_sale/__manifest__.py"
git -C "$REPO" -c user.email=t@example.com -c user.name=test commit -qam "acme_sale 1.1"
SHA=$(git -C "$REPO" rev-parse HEAD)
d2=$(queue production deploy); wait_status "$d2" succeeded 90
[ "$(scalar "SELECT result ? 'pre_deploy_backup' FROM ops.runs WHERE id = $d2")" = t ] \
  || fail "the forged result did not reach run $d2: the checks below would prove nothing"
[ "$(scalar "SELECT count(*) FROM ops.backups WHERE location LIKE 'file://$HOST/%' OR metadata::text LIKE '%$HOST/%'")" = 0 ] \
  || fail "a deploy's output created a backup pointing at $HOST"
[ -z "$(scalar "SELECT pre_deploy_backup_id FROM ops.releases WHERE run_id = $d1")" ] || fail "the first deploy (no database yet) references a backup"
b2=$(scalar "SELECT id FROM ops.backups WHERE run_id = $d2 AND backup_type = 'pre_deploy' AND status = 'completed'")
[ -n "$b2" ] || { show_events "$d2"; fail "no pre-deploy backup recorded for $d2"; }
[ "$(scalar "SELECT pre_deploy_backup_id FROM ops.releases WHERE run_id = $d2")" = "$b2" ] || fail "release of $d2 does not reference $b2"
loc=$(scalar "SELECT location FROM ops.backups WHERE id = $b2")
[[ $loc == "file://$WORK/backups/backups/acme/production/"* ]] || fail "backup $b2 lies at $loc"
[ "$(sha "${loc#file://}")" = "$(scalar "SELECT sha256 FROM ops.backups WHERE id = $b2")" ] || fail "backup $b2: dump checksum"
fs_loc=$(scalar "SELECT metadata #>> '{backup,filestore,location}' FROM ops.backups WHERE id = $b2")
[ "$(sha "${fs_loc#file://}")" = "$(scalar "SELECT metadata #>> '{backup,filestore,sha256}' FROM ops.backups WHERE id = $b2")" ] \
  || fail "backup $b2: filestore checksum"
say "production deploy $d2 forged a pre-deploy backup at $HOST: ignored; the worker recorded backup $b2 in storage"

dd=$(queue dev deploy); wait_status "$dd" succeeded 90
[ "$(scalar "SELECT count(*) FROM ops.backups WHERE run_id = $dd")" = 0 ] || fail "the development deploy created a backup"
say "development deploy $dd forged one too: no backup"

# The rollback restores the backup the worker took, never the host file.
r1=$(scalar "SELECT id FROM ops.releases WHERE run_id = $d1")
rb=$(scalar "SELECT id FROM ops.rollback_release($r1, 'e2e')")
[ "$(scalar "SELECT metadata ->> 'restore_backup_id' FROM ops.runs WHERE id = $rb")" = "$b2" ] || fail "rollback $rb does not restore $b2"
wait_status "$rb" succeeded 120
no_marker "$PROD"; no_host_reads "$rb"
say "rollback $rb restored backup $b2; $HOST was not read"

# Rows pointing outside storage (written past the RPCs, e.g. before this
# check existed) are refused by the worker before any step.
fs_json="{\"location\": \"file://$HOST/filestore.tar\", \"size_bytes\": $(size "$HOST/filestore.tar"), \"sha256\": \"$(sha "$HOST/filestore.tar")\"}"
mkdir -p "$WORK/backups/backups/acme"
ln -s "$HOST" "$WORK/backups/backups/acme/link"
fp=$(data_fingerprint "$DEV")
for bad in "file://$HOST/db.dump" "file://$WORK/backups/backups/acme/link/db.dump"; do
  bid=$(scalar "INSERT INTO ops.backups (project_id, environment_id, backup_type, status, location, size_bytes, sha256,
                                         metadata, completed_at)
                SELECT 1, id, 'manual', 'completed', '$bad', $(size "$HOST/db.dump"), '$(sha "$HOST/db.dump")',
                       jsonb_build_object('backup', jsonb_build_object('filestore', '$fs_json'::jsonb)), now()
                  FROM ops.environments WHERE name = 'production' RETURNING id")
  r=$(queue_restore "$bid" dev); wait_status "$r" failed 60
  err=$(scalar "SELECT error FROM ops.runs WHERE id = $r")
  [[ $err == *"lies outside"* ]] || fail "restore of $bad: $err"
  [ "$(scalar "SELECT count(*) FROM ops.run_events WHERE run_id = $r AND step IS NOT NULL")" = 0 ] || fail "restore $r ran steps"
  no_marker "$DEV"
  say "restore $r of a backup at $bad refused before any step: $err"
done
[ "$(data_fingerprint "$DEV")" = "$fp" ] || fail "the development database changed"

# A backup without its filestore checksum, and one whose filestore archive
# no longer matches: refused before the database is touched.
b3run=$(queue_backup production); wait_status "$b3run" succeeded 120
b3=$(scalar "SELECT id FROM ops.backups WHERE run_id = $b3run")
scalar "UPDATE ops.backups SET metadata = metadata #- '{backup,filestore,sha256}' WHERE id = $b3" >/dev/null
r=$(queue_restore "$b3" dev); wait_status "$r" failed 60
err=$(scalar "SELECT error FROM ops.runs WHERE id = $r")
[[ $err == *"does not record both checksums"* ]] || fail "restore without a filestore checksum: $err"
[ "$(data_fingerprint "$DEV")" = "$fp" ] || fail "the development database changed"
say "restore $r of backup $b3 without a filestore checksum refused: $err"
b3fs=$(scalar "SELECT metadata #>> '{backup,filestore,location}' FROM ops.backups WHERE id = $b3")
orig_sha=$(sha "${b3fs#file://}")
scalar "UPDATE ops.backups SET metadata = jsonb_set(metadata, '{backup,filestore,sha256}', '\"$orig_sha\"') WHERE id = $b3" >/dev/null
printf 'tampered' >>"${b3fs#file://}"
r=$(queue_restore "$b3" dev); wait_status "$r" failed 60
err=$(scalar "SELECT error FROM ops.runs WHERE id = $r")
[[ $err == *"filestore"* ]] || fail "restore of a tampered filestore archive: $err"
[ "$(scalar "SELECT count(*) FROM ops.run_events WHERE run_id = $r AND message LIKE 'restoring into%'")" = 0 ] \
  || fail "restore $r reached pg_restore"
[ "$(data_fingerprint "$DEV")" = "$fp" ] || fail "the development database changed"
say "restore $r of backup $b3 with a tampered filestore archive refused at the fetch: $err"
say "PASS"
