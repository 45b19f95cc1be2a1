#!/usr/bin/env bash
# Storage is really cleaned up. Backups and deploy artifacts are written to
# an S3 server (SigV4) and then to a file:// root; some are expired (their
# expiry moved into the past, then ops.expire_backups / ops.expire_artifacts,
# which the scheduler runs) and the worker, between runs, deletes exactly
# those: the dump and the filestore archive of each expired backup and the
# expired artifacts are gone from storage and marked deleted / expired in
# the catalogue; everything else stays. A deletion that fails while the S3
# server is down is tried again after its retry delay, not before, and then
# succeeds. A queued location outside the worker's storage root, or an
# object the catalogue does not mark expired, is refused and left alone.
source "$(dirname "$0")/lib.sh"
setup_control_plane
start_s3 odooops-backups
read -ra S3 <<<"$(S3_FLAGS)"
FILES=$WORK/files

# exists URL: the object is in storage (file:// or the S3 server).
exists() {
  case $1 in
    file://*) [ -e "${1#file://}" ] ;;
    s3://*) "$WORKER_BIN" storage list "$1" "${S3[@]}" 2>/dev/null | grep -Fxq "$1" ;;
    *) fail "not a storage location: '$1'" ;;
  esac
}
# objects_of BACKUP: its dump and filestore archive locations.
objects_of() {
  scalar "SELECT location || ' ' || (metadata #>> '{backup,filestore,location}') FROM ops.backups WHERE id = $1"
}
artifact_of() {  # RUN: the location of the run's addons report
  scalar "SELECT location FROM ops.artifacts WHERE run_id = $1 AND name = 'addons.json'"
}
take_backup() {  # ENV -> a completed manual backup's id
  local run
  run=$(queue_backup "$1")
  wait_status "$run" succeeded 120
  backup_of "$run"
}
expire_backup() {  # BACKUP: its TTL has passed
  scalar "UPDATE ops.backups SET expires_at = now() - interval '1 second' WHERE id = $1" >/dev/null
}
expire_artifact() {  # LOCATION: its TTL has passed
  scalar "UPDATE ops.artifacts SET created_at = now() - interval '2 days', expires_at = now() - interval '1 second'
           WHERE location = '$1'" >/dev/null
}
# wait_deletions CONDITION STATUS [SECONDS]: every deletion row matching the
# condition has the status.
wait_deletions() {
  local cond=$1 want=$2 secs=${3:-60} left=""
  for _ in $(seq 1 $((secs * 10))); do
    left=$(scalar "SELECT count(*) FROM ops.storage_deletions WHERE ($cond) AND status <> '$want'")
    [ "$left" = 0 ] && [ "$(scalar "SELECT count(*) FROM ops.storage_deletions WHERE $cond")" != 0 ] && return 0
    sleep 0.1
  done
  scalar "SELECT id, object_kind, object_id, status, attempts, error FROM ops.storage_deletions WHERE $cond" >&2
  fail "deletions ($cond) are not all $want after ${secs}s"
}
expiry() {  # -> "<backups expired> <artifacts expired>", as the scheduler runs them
  scalar "SELECT ops.expire_backups() || ' ' || ops.expire_artifacts()"
}

# --- S3 -------------------------------------------------------------------
start_worker s3w "${S3[@]}" --storage s3://odooops-backups/acme --deletion-interval 1
d1=$(queue production deploy); d2=$(queue staging deploy)
wait_status "$d1" succeeded 90; wait_status "$d2" succeeded 90
a1=$(artifact_of "$d1"); a2=$(artifact_of "$d2")
[[ $a1 == s3://odooops-backups/acme/artifacts/acme/run-$d1/addons.json ]] || fail "artifact of $d1 at '$a1'"
# Recorded with the default artifact TTL (odooops.artifact_ttl, 30 days).
[ "$(scalar "SELECT string_agg(DISTINCT (expires_at - created_at)::text, ',') FROM ops.artifacts")" = "30 days" ] \
  || fail "artifacts expire after $(scalar "SELECT string_agg((expires_at - created_at)::text, ',') FROM ops.artifacts"), not 30 days"
b1=$(take_backup production); b2=$(take_backup production); b3=$(take_backup production)
read -r b1_dump b1_fs <<<"$(objects_of "$b1")"
read -r b2_dump b2_fs <<<"$(objects_of "$b2")"
read -r b3_dump b3_fs <<<"$(objects_of "$b3")"
for o in "$a1" "$a2" "$b1_dump" "$b1_fs" "$b2_dump" "$b2_fs" "$b3_dump" "$b3_fs"; do
  exists "$o" || fail "$o was not stored"
done
say "S3: artifacts of deploys $d1 and $d2 (30-day TTL) and backups $b1, $b2, $b3 (dump + filestore archive) stored"

expire_backup "$b1"; expire_artifact "$a1"
[ "$(expiry)" = "1 1" ] || fail "expiry did not expire backup $b1 and artifact $a1 alone"
wait_deletions "object_kind IN ('backup', 'filestore') AND object_id = $b1" "done" 60
wait_deletions "object_kind = 'artifact' AND location = '$a1'" "done" 60
for o in "$b1_dump" "$b1_fs" "$a1"; do ! exists "$o" || fail "$o is still in S3"; done
for o in "$a2" "$b2_dump" "$b2_fs" "$b3_dump" "$b3_fs"; do exists "$o" || fail "$o, not expired, was deleted"; done
[ "$(scalar "SELECT status FROM ops.backups WHERE id = $b1")" = deleted ] || fail "backup $b1 is not marked deleted"
[ "$(scalar "SELECT count(*) FROM ops.backups WHERE id IN ($b2, $b3) AND status = 'completed'")" = 2 ] || fail "backups $b2, $b3 changed"
[ "$(scalar "SELECT expired_at IS NOT NULL FROM ops.artifacts WHERE location = '$a1'")" = t ] || fail "artifact $a1 not marked expired"
say "S3: expired backup $b1 (dump and filestore archive) and artifact $a1 deleted and marked; the rest kept"

# The S3 server goes away: deleting expired backup $b2 fails, is not tried
# again before its retry time, and succeeds once the server is back.
kill -TERM "$S3_PID"; wait "$S3_PID" 2>/dev/null || true
expire_backup "$b2"
[ "$(expiry)" = "1 0" ] || fail "expiry did not expire backup $b2 alone"
b2_cond="object_kind IN ('backup', 'filestore') AND object_id = $b2"
for _ in $(seq 1 600); do
  [ "$(scalar "SELECT count(*) FROM ops.storage_deletions WHERE $b2_cond AND attempts = 1 AND status = 'pending'")" = 2 ] && break
  sleep 0.1
done
[ "$(scalar "SELECT count(*) FROM ops.storage_deletions WHERE $b2_cond AND attempts = 1 AND status = 'pending'
               AND error LIKE '%unreachable%' AND retry_at > now() + interval '30 seconds'")" = 2 ] \
  || fail "the failed deletions of $b2: $(scalar "SELECT string_agg(status || ' ' || attempts || ' ' || coalesce(error, '-'), '; ') FROM ops.storage_deletions WHERE $b2_cond")"
sleep 4   # four deletion intervals: a failed deletion is not hammered
[ "$(scalar "SELECT sum(attempts) FROM ops.storage_deletions WHERE $b2_cond")" = 2 ] || fail "a failed deletion was tried again before its retry time"
[ "$(scalar "SELECT status FROM ops.backups WHERE id = $b2")" = expired ] || fail "backup $b2 marked deleted though its objects are not"
node "$ROOT/tests/harness/s3_server.js" "$S3_PORT" "$WORK/s3" odooops-backups >"$WORK/s3-again.log" 2>&1 &
S3_PID=$!
EXTRA_CLEANUP+=("kill $S3_PID 2>/dev/null")
for _ in $(seq 1 100); do grep -q listening "$WORK/s3-again.log" && break; sleep 0.1; done
exists "$b2_dump" || fail "the S3 server lost $b2_dump"
# The retry time comes (here: is moved to now instead of waiting a minute).
scalar "UPDATE ops.storage_deletions SET retry_at = now() WHERE $b2_cond" >/dev/null
wait_deletions "$b2_cond" "done" 60
for o in "$b2_dump" "$b2_fs"; do ! exists "$o" || fail "$o is still in S3 after the retry"; done
[ "$(scalar "SELECT status FROM ops.backups WHERE id = $b2")" = deleted ] || fail "backup $b2 is not marked deleted after the retry"
[ "$(scalar "SELECT string_agg(DISTINCT attempts::text, ',') FROM ops.storage_deletions WHERE $b2_cond")" = 2 ] || fail "the retry was not the second attempt"
for o in "$b3_dump" "$b3_fs" "$a2"; do exists "$o" || fail "$o, not expired, was deleted"; done
say "S3 down: the deletions of backup $b2 failed, waited for their retry time, then succeeded"

# --- file:// ---------------------------------------------------------------
kill -TERM "$LAST_WORKER_PID"; wait "$LAST_WORKER_PID" || true
start_worker filew --storage "file://$FILES" --deletion-interval 1
rehost filew production   # the worker replaced on the same host takes its environments
# Production deploys (a staging deploy would refresh from a backup in S3,
# which this worker refuses to read).
d3=$(queue production deploy); wait_status "$d3" succeeded 90
d4=$(queue production deploy); wait_status "$d4" succeeded 90
a3=$(artifact_of "$d3"); a4=$(artifact_of "$d4")
b4=$(take_backup production); b5=$(take_backup production)
read -r b4_dump b4_fs <<<"$(objects_of "$b4")"
read -r b5_dump b5_fs <<<"$(objects_of "$b5")"
[[ $b4_fs == file://$FILES/backups/acme/production/*/filestore.tar ]] || fail "filestore archive of $b4 at '$b4_fs'"
for o in "$a3" "$a4" "$b4_dump" "$b4_fs" "$b5_dump" "$b5_fs"; do exists "$o" || fail "$o was not stored"; done
expire_backup "$b4"; expire_artifact "$a3"
[ "$(expiry)" = "1 1" ] || fail "expiry did not expire backup $b4 and artifact $a3 alone"
wait_deletions "object_kind IN ('backup', 'filestore') AND object_id = $b4" "done" 60
wait_deletions "object_kind = 'artifact' AND location = '$a3'" "done" 60
for o in "$b4_dump" "$b4_fs" "$a3"; do ! exists "$o" || fail "$o is still on disk"; done
for o in "$a4" "$b5_dump" "$b5_fs" "$b3_dump" "$b3_fs" "$a2"; do exists "$o" || fail "$o, not expired, was deleted"; done
[ "$(scalar "SELECT status FROM ops.backups WHERE id = $b4")" = deleted ] || fail "backup $b4 is not marked deleted"
[ "$(scalar "SELECT status FROM ops.backups WHERE id = $b5")" = completed ] || fail "backup $b5 changed"
say "file://: expired backup $b4 (dump and filestore archive) and artifact $a3 deleted and marked; the rest kept"

# Refused: an expired artifact stored outside this worker's root (a file of
# the same layout elsewhere on the host), and a queued object the catalogue
# does not mark expired (the live backup $b5).
outside=$WORK/outside/artifacts/acme/run-$d4/secret.log
mkdir -p "$(dirname "$outside")"; echo secret >"$outside"
scalar "INSERT INTO ops.artifacts (run_id, project_id, kind, name, location, created_at, expires_at)
        VALUES ($d4, 1, 'log', 'secret.log', 'file://$outside', now() - interval '2 days', now() - interval '1 second')" >/dev/null
[ "$(expiry)" = "0 1" ] || fail "the artifact outside the root was not expired"
scalar "INSERT INTO ops.storage_deletions (object_kind, object_id, location, reason)
        VALUES ('backup', $b5, '$b5_dump', 'manual')" >/dev/null
outside_cond="object_kind = 'artifact' AND location = 'file://$outside'"
for _ in $(seq 1 300); do
  [ "$(scalar "SELECT count(*) FROM ops.storage_deletions WHERE $outside_cond AND attempts = 1 AND status = 'pending'")" = 1 ] && break
  sleep 0.1
done
scalar "SELECT error FROM ops.storage_deletions WHERE $outside_cond" | has "refused: .*outside the storage root" \
  || fail "the deletion outside the root: $(scalar "SELECT status || ' ' || coalesce(error, '-') FROM ops.storage_deletions WHERE $outside_cond")"
wait_deletions "object_kind = 'backup' AND object_id = $b5" failed 30
scalar "SELECT error FROM ops.storage_deletions WHERE object_kind = 'backup' AND object_id = $b5" | has "does not mark backup $b5 .* expired" \
  || fail "the deletion of live backup $b5: $(scalar "SELECT error FROM ops.storage_deletions WHERE object_kind = 'backup' AND object_id = $b5")"
[ -e "$outside" ] || fail "the worker deleted $outside, outside its storage root"
for o in "$b5_dump" "$b5_fs"; do exists "$o" || fail "$o of live backup $b5 was deleted"; done
[ "$(scalar "SELECT status FROM ops.backups WHERE id = $b5")" = completed ] || fail "live backup $b5 changed"
say "refused: an artifact outside the storage root and a live backup's dump; both left alone, the reasons recorded"

# Everything done was expired, and nothing expired is left in storage.
[ "$(scalar "SELECT count(*) FROM ops.storage_deletions WHERE status = 'done'
               AND NOT ops._storage_object_expired(object_kind, object_id, location)")" = 0 ] \
  || fail "a deletion was done for an object the catalogue does not mark expired"
[ "$(scalar "SELECT count(*) FROM ops.backups WHERE status = 'deleted'")" = 3 ] || fail "not exactly backups $b1, $b2, $b4 are deleted"
say "PASS"
