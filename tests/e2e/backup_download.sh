#!/usr/bin/env bash
# Time-limited download links of backups, downloaded for real with curl.
# A project admin asks for links with `odooops backup download ID`; a worker
# signs them: with s3:// storage presigned GET URLs that the S3 server
# (which verifies SigV4, expiry included) answers with the very bytes whose
# checksums the backup recorded; with file:// storage signed paths of the
# worker's own listener. A tampered link, another key, a signed link of
# another object and an expired link are refused (403); a viewer may not ask
# and does not see the admin's links; a worker whose storage does not hold
# the backup does not sign it.
# The Odoo is the stand-in (tests/harness/odoo_standin.py), not Odoo.
source "$(dirname "$0")/lib.sh"
setup_control_plane
start_s3 odooops-backups
read -ra S3 <<<"$(S3_FLAGS)"
FILES=$WORK/files
CLI=$ROOT/scripts/odooops/odooops
ADMIN=odooops_e2e_dl_admin VIEWER=odooops_e2e_dl_viewer
for role in "$ADMIN" "$VIEWER"; do
  PGOPTIONS="-c client_min_messages=warning" psql -X -q -d postgres \
    -c "DO \$\$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$role')
                 THEN CREATE ROLE $role LOGIN; END IF; END \$\$" \
    -c "GRANT odooops_api TO $role" -c "GRANT CONNECT ON DATABASE $CP_DB TO $role" >/dev/null
done
scalar "INSERT INTO ops.project_members (project_id, user_id, role) VALUES (1, '$ADMIN', 'admin'), (1, '$VIEWER', 'viewer')" >/dev/null
# as ROLE CMD...: the command line as that login.
as() { local role=$1; shift; PGUSER=$role PGDATABASE=$CP_DB "$CLI" "$@"; }
take_backup() {  # ENV -> a completed manual backup's id
  local run
  run=$(queue_backup "$1")
  wait_status "$run" succeeded 120
  backup_of "$run"
}
sha_of() { sha256sum "$1" | cut -c1-64; }
code_of() { curl -s --path-as-is -o /dev/null -w '%{http_code}' --max-time 10 "$1"; }
# fetch URL FILE SHA256: curl downloads it, byte-identical to the recorded checksum.
fetch() {
  curl -fsS --max-time 30 -o "$2" "$1" || fail "curl could not download $1"
  [ "$(sha_of "$2")" = "$3" ] || fail "the download of $1 does not match its recorded checksum"
}
link() { sed -n "s/^$1 //p" <<<"$2"; }

# --- S3 -------------------------------------------------------------------
start_worker s3w "${S3[@]}" --storage s3://odooops-backups/acme
d=$(queue production deploy); wait_status "$d" succeeded 90
b1=$(take_backup production)
read -r sha fs_sha <<<"$(scalar "SELECT sha256 || ' ' || (metadata #>> '{backup,filestore,sha256}') FROM ops.backups WHERE id = $b1")"

# Who may ask: not a viewer, not for a backup of nothing.
rc=0; as "$VIEWER" backup download "$b1" 2>"$WORK/err" || rc=$?
[ "$rc" = 77 ] || fail "a viewer asked for a download link (exit $rc: $(cat "$WORK/err"))"
rc=0; as "$ADMIN" backup download 999999 2>/dev/null || rc=$?
[ "$rc" = 66 ] || fail "a missing backup answered exit $rc, not 66"
rc=0; as "$ADMIN" backup download "$b1" --ttl '2 days' 2>"$WORK/err" || rc=$?
if [ "$rc" != 65 ] || ! grep -q "out of range" "$WORK/err"; then fail "a 2-day link was not refused (exit $rc)"; fi
[ "$(scalar "SELECT count(*) FROM ops.backup_downloads")" = 0 ] || fail "a refused request was recorded"

short_at=$(date +%s)
short=$(as "$ADMIN" backup download "$b1" --ttl '1 minute' --timeout 60) || fail "no short-lived link"
out=$(as "$ADMIN" backup download "$b1" --ttl '10 minutes' --timeout 60) || fail "no link"
url=$(link dump "$out"); fs_url=$(link filestore "$out")
[[ $url == "$S3_ENDPOINT"/odooops-backups/acme/backups/acme/production/*/db.dump.zst\?X-Amz-Algorithm=AWS4-HMAC-SHA256\&*X-Amz-Expires=600\&*X-Amz-Signature=* ]] \
  || fail "not a presigned URL of the dump: $url"
[ -n "$(link expires "$out")" ] || fail "no expiry printed: $out"
fetch "$url" "$WORK/s3.dump" "$sha"
fetch "$fs_url" "$WORK/s3-filestore.tar" "$fs_sha"
say "S3: backup $b1's presigned links downloaded with curl, byte-identical to the recorded checksums"

[ "$(code_of "${url/X-Amz-Expires=600/X-Amz-Expires=6000}")" = 403 ] || fail "S3 took a link whose expiry was changed"
[ "$(code_of "${url%?}0")" = 403 ] || [ "$(code_of "${url%?}1")" = 403 ] || fail "S3 took a tampered signature"
[ "$(code_of "${url/db.dump.zst/filestore.tar}")" = 403 ] || fail "the dump's signature opened the filestore archive"
# The links are the admin's: the viewer and the worker see none; the request is audited.
[ "$(PGUSER=$VIEWER psql -X -A -t -d "$CP_DB" -c "SELECT count(*) FROM ops.backup_downloads")" = 0 ] || fail "a viewer sees the admin's links"
[ "$(PGUSER=$ADMIN psql -X -A -t -d "$CP_DB" -c "SELECT count(*) FROM ops.backup_downloads WHERE url IS NOT NULL")" = 2 ] || fail "the admin does not see their links"
[ "$(scalar "SELECT count(*) FROM ops.audit_log WHERE action = 'backup.download_requested' AND actor = '$ADMIN' AND subject_id = $b1")" = 2 ] \
  || fail "the download requests are not audited"
say "S3: changed expiry, tampered signature and another object refused (403); the links are the requester's alone"

# --- file:// ---------------------------------------------------------------
kill -TERM "$LAST_WORKER_PID"; wait "$LAST_WORKER_PID" || true
# An S3 backup waits while only a file:// worker runs: it does not sign what its storage lacks.
pending=$(scalar "SELECT id FROM ops.request_backup_download($b1, '5 minutes')")
METRICS_PORT=$(free_port)
start_worker filew --storage "file://$FILES" --metrics-listen "127.0.0.1:$METRICS_PORT"
rehost filew production   # the same host, with another storage
d=$(queue production deploy); wait_status "$d" succeeded 90
b2=$(take_backup production)
read -r sha fs_sha <<<"$(scalar "SELECT sha256 || ' ' || (metadata #>> '{backup,filestore,sha256}') FROM ops.backups WHERE id = $b2")"
out=$(as "$ADMIN" backup download "$b2" --ttl '10 minutes' --timeout 60) || fail "no file:// link"
url=$(link dump "$out"); fs_url=$(link filestore "$out")
[[ $url == http://127.0.0.1:$METRICS_PORT/download/backups/acme/production/*/db.dump.zst\?expires=*\&signature=* ]] \
  || fail "not a signed download path of the dump: $url"
fetch "$url" "$WORK/file.dump" "$sha"
fetch "$fs_url" "$WORK/file-filestore.tar" "$fs_sha"
[ "$(scalar "SELECT status FROM ops.backup_downloads WHERE id = $pending")" = pending ] || fail "the file:// worker took the S3 backup's request"
say "file://: backup $b2's signed links downloaded from the worker's listener, byte-identical to the recorded checksums"

key=${url#*/download/}; key=${key%%\?*}
expires=${url#*expires=}; expires=${expires%%&*}
signature=${url##*signature=}
base=http://127.0.0.1:$METRICS_PORT/download
[ "$(code_of "$base/$key?expires=$((expires + 60))&signature=$signature")" = 403 ] || fail "a link with a changed expiry was served"
[ "$(code_of "$base/$key?expires=$expires&signature=${signature//[0-9]/a}")" = 403 ] || fail "a tampered signature was served"
[ "$(code_of "$base/$key?expires=$expires")" = 403 ] || fail "a link without a signature was served"
[ "$(code_of "$base/${key/db.dump.zst/filestore.tar}?expires=$expires&signature=$signature")" = 403 ] || fail "the dump's signature opened the filestore archive"
# Signed with the worker's key (what only the worker holds) the rules are
# those of docs/backups.md: HMAC-SHA256 of "<key>\n<expires>"; an expired
# one, or one outside backups/, is refused all the same.
sign() { printf '%s\n%s' "$1" "$2" | openssl dgst -sha256 -hmac "$(cat "$STATE/download.key")" -r | cut -c1-64; }
[ "$(sign "$key" "$expires")" = "$signature" ] || fail "the signature is not HMAC-SHA256 of key and expiry"
past=$(( $(date +%s) - 5 ))
[ "$(code_of "$base/$key?expires=$past&signature=$(sign "$key" "$past")")" = 403 ] || fail "an expired link was served"
[ "$(code_of "$base/../../state/download.key?expires=$expires&signature=$(sign "../../state/download.key" "$expires")")" = 403 ] || fail "a path outside the storage was served"
[ "$(code_of "$base/$key?expires=$expires&signature=$signature")" = 200 ] || fail "the genuine link stopped working"
[ "$(curl -fsS "http://127.0.0.1:$METRICS_PORT/metrics" | grep -c '^odooops_worker')" -gt 0 ] || fail "the listener stopped serving /metrics"
say "file://: changed expiry, tampered or missing signature, another object, an expired link and a path outside backups/ refused (403)"

# The one-minute S3 link of the start has expired by now (S3 says so).
now=$(date +%s); [ "$now" -ge $((short_at + 62)) ] || sleep $((short_at + 62 - now))
[ "$(code_of "$(link dump "$short")")" = 403 ] || fail "S3 still served a presigned link past its expiry"
say "S3: the one-minute link is refused once expired"
