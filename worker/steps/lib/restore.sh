# shellcheck shell=bash
# Restoring a backup into an environment (sourced after common.sh): shared
# by the restore workflow (restore/10-fetch … 40-switch) and the deploy step
# that puts a backup in place before the new code starts (deploy/35-restore-
# backup: a staging refresh from production, a rollback's pre-deploy backup),
# with what a deploy or restore does afterwards with the database and
# filestore it replaced: put them back after a failure, drop them once it
# stands; and the backup a production deploy, restore or destroy takes first
# of what it replaces or removes (run_backup).
# The backup is described by ODOOOPS_BACKUP_ID, _LOCATION, _SHA256,
# _FILESTORE_LOCATION, _FILESTORE_SHA256 and _METADATA (worker/README.md). Until restore_switch, the environment's own
# database and filestore are never touched.

# The restore calls the runtime interface (runtime_stop, runtime_neutralize,
# ...): loaded here unless the step loaded it first.
# shellcheck source=runtime.sh
declare -F runtime_choose >/dev/null || source "$STEPS_LIB/runtime.sh"

# restore_fetch: downloads the dump and the filestore archive (filestore.tar)
# into the current directory and verifies both SHA-256 checksums (of the
# stored objects) and the dump's table of contents; a missing checksum or any
# mismatch stops here, before any database is created or touched. A dump
# stored zstd-compressed (db.dump.zst, backups since 0.1.3) is unpacked to
# db.dump, a plain one (db.dump, earlier backups) is used as it is: either way
# a seekable local file, which pg_restore needs to restore in parallel.
restore_fetch() {
  local W=$ODOOOPS_WORKER_BIN loc=${ODOOOPS_BACKUP_LOCATION:?}
  local sha=${ODOOOPS_BACKUP_SHA256:-} fs_loc=${ODOOOPS_BACKUP_FILESTORE_LOCATION:-} fs_sha=${ODOOOPS_BACKUP_FILESTORE_SHA256:-}
  # Both checksums are required: an archive that cannot be verified is not
  # restored (the worker refuses such a backup before any step as well).
  if [ -z "$sha" ] || [ -z "$fs_loc" ] || [ -z "$fs_sha" ]; then
    die "backup $ODOOOPS_BACKUP_ID does not record both checksums (database dump and filestore archive), nothing was restored"
  fi
  echo "fetching backup $ODOOOPS_BACKUP_ID from $loc"
  local stored=db.dump
  [[ $loc == *.zst ]] && stored=db.dump.zst
  "$W" storage get "$loc" "$stored" --expect-sha256 "$sha" 2>fetch.err ||
    { cat fetch.err >&2; die "backup $ODOOOPS_BACKUP_ID, nothing was restored: $(tail -n 1 fetch.err)"; }
  if [ "$stored" = db.dump.zst ]; then
    command -v zstd >/dev/null || die "zstd is not installed on this worker host (Debian package zstd): backup $ODOOOPS_BACKUP_ID cannot be unpacked, nothing was restored"
    zstd -d -q -f --rm db.dump.zst -o db.dump 2>fetch.err ||
      { cat fetch.err >&2; die "backup $ODOOOPS_BACKUP_ID cannot be unpacked, nothing was restored: $(tail -n 1 fetch.err)"; }
  fi
  "$W" storage get "$fs_loc" filestore.tar --expect-sha256 "$fs_sha" 2>fetch.err ||
    { cat fetch.err >&2; die "backup $ODOOOPS_BACKUP_ID (filestore), nothing was restored: $(tail -n 1 fetch.err)"; }
  pg_restore --list db.dump >/dev/null || die "backup $ODOOOPS_BACKUP_ID is not a valid pg_dump archive"
  echo "backup verified ($(stat -c %s db.dump) bytes dump, filestore archive $(stat -c %s filestore.tar) bytes)"
}

# restore_database TMP RELEASE_DIR: pg_restore of db.dump into the new
# database TMP beside the environment's own; unless the environment is
# production, the copy is neutralized -- by Odoo itself first (odoo-bin
# neutralize with the addons of RELEASE_DIR, the release that will run on
# the copy; Odoo's own addons only when empty), then by lib/neutralize.sql
# -- and checked. On any failure TMP is dropped.
restore_database() {
  local tmp=$1 release=$2
  drop_database "$tmp"
  # The copy is the environment role's, and so is everything pg_restore
  # creates in it (--role: the restore runs as that role).
  env_role_ensure
  create_env_database "$tmp"
  echo "restoring into $tmp"
  # Parallel jobs, one per CPU (at most 4): tables load and indexes build
  # side by side.
  local jobs; jobs=$(nproc 2>/dev/null || echo 1)
  ((jobs > 4)) && jobs=4
  if ! pg_restore --no-owner --no-privileges --role="$ENV_ROLE" --exit-on-error --jobs="$jobs" -d "$tmp" db.dump; then
    drop_database "$tmp"
    die "pg_restore of backup $ODOOOPS_BACKUP_ID failed; the environment keeps its database"
  fi
  if [ "$ODOOOPS_STAGE" != production ]; then
    neutralize_copy "$tmp" "$release"
  else
    echo "production target: not neutralized"
    meta '{"neutralized": false}'
  fi
}

# neutralize_sql DB: lib/neutralize.sql on DB, as the environment's role
# (its NOTICEs shown without psql's prefix); false when it failed.
neutralize_sql() {
  in_env_db psql -X -q -v ON_ERROR_STOP=1 -d "$1" -f "$STEPS_LIB/neutralize.sql" 2>&1 | sed 's/^psql:[^ ]* NOTICE:  //'
}

# neutralize_copy TMP RELEASE_DIR: TMP, a copy of production for this
# environment, neutralized by Odoo itself (odoo-bin neutralize with the
# addons of RELEASE_DIR) and then by lib/neutralize.sql (with the
# environment's own URL), its mail pointed at the environment's catcher,
# and checked. On any failure TMP is dropped.
neutralize_copy() {
  local tmp=$1 release=$2
  echo "neutralizing the copy (${ODOOOPS_STAGE} is not production)"
  runtime_neutralize "$tmp" "$release"
  # The copy's own URL (as 50-health reports it), for web.base.url.
  if [ -n "${ODOOOPS_HTTP_PORT:-}" ]; then
    local base_url; base_url=$(env_url)
    export PGOPTIONS="${PGOPTIONS:-} -c odooops_neutralize.base_url=$base_url"
  fi
  if ! neutralize_sql "$tmp"; then
    drop_database "$tmp"
    die "neutralization failed; the environment keeps its database"
  fi
  # The copy's mail goes to the environment's catcher where the runtime's
  # Odoo can reach it (lib/runtime.sh runtime_catches_mail; elsewhere the
  # dummy server of neutralize.sql stays, and mail fails).
  if runtime_catches_mail && ! mail_catcher_point "$tmp"; then
    drop_database "$tmp"
    die "cannot point the copy's outgoing mail at the mail catcher; the environment keeps its database"
  fi
  if ! assert_neutralized "$tmp"; then
    drop_database "$tmp"
    die "the restored copy is still not neutralized; the environment keeps its database"
  fi
  meta '{"neutralized": true}'
}

# restore_filestore DIR: unpacks filestore.tar (if fetched) into DIR, beside
# the environment's filestore, and sets RESTORED_FILESTORE to the directory
# to swap in (the archive holds one directory named after the source
# database; an empty one when there is none).
restore_filestore() {
  local dir=$1 src
  rm -rf "$dir"
  mkdir -p "$dir"
  if [ -f filestore.tar ]; then
    tar -C "$dir" -xf filestore.tar || { rm -rf "$dir"; die "cannot unpack the filestore archive"; }
  fi
  src=$(find "$dir" -mindepth 1 -maxdepth 1 -type d | head -n 1)
  [ -n "$src" ] || { mkdir -p "$dir/empty"; src=$dir/empty; }
  echo "filestore unpacked: $(find "$src" -type f | wc -l) file(s)"
  # shellcheck disable=SC2034 # read by the sourcing step
  RESTORED_FILESTORE=$src
}

# Needs lib/runtime.sh for env_stop, env_serve_again and restore_database.

# restore_switch TMP FILESTORE_DIR [KEEP]: stops the environment's Odoo and
# swaps in the restored database and filestore by renames, so the switch is
# short and never half done; the unpacking directory around FILESTORE_DIR is
# removed. Without KEEP the replaced database and filestore are dropped;
# with KEEP (a database name) they are kept aside as KEEP and
# $FILESTORE.pre-deploy-<run>, and exported as ODOOOPS_DB_SNAPSHOT and
# ODOOOPS_FILESTORE_SNAPSHOT, so a failed deploy or restore can put them back
# (deploy/on-failure/10-rollback, restore/on-failure/10-put-back) and a
# successful one drops them (deploy/50-health, restore/50-start).
restore_switch() {
  local tmp=$1 fs_src=$2 keep=${3:-}
  env_stop
  if [ -n "$keep" ] && db_exists "$ODOOOPS_DB_NAME"; then
    drop_database "$keep"
    rename_database "$ODOOOPS_DB_NAME" "$keep"
    export_env ODOOOPS_DB_SNAPSHOT "$keep"
    echo "database $ODOOOPS_DB_NAME kept aside as $keep until the ${ODOOOPS_WORKFLOW:-deploy} stands"
  else
    q -d postgres -c "DROP DATABASE IF EXISTS \"$ODOOOPS_DB_NAME\" WITH (FORCE)"
  fi
  q -d postgres -c "ALTER DATABASE \"$tmp\" RENAME TO \"$ODOOOPS_DB_NAME\""
  own_database "$ODOOOPS_DB_NAME"
  echo "database $ODOOOPS_DB_NAME replaced by the restored copy"
  mkdir -p "$(dirname "$FILESTORE")"
  if [ -n "$keep" ] && [ -d "$FILESTORE" ]; then
    rm -rf "$FILESTORE.pre-deploy-$ODOOOPS_RUN_ID"
    mv "$FILESTORE" "$FILESTORE.pre-deploy-$ODOOOPS_RUN_ID"
    export_env ODOOOPS_FILESTORE_SNAPSHOT "$FILESTORE.pre-deploy-$ODOOOPS_RUN_ID"
  else
    rm -rf "$FILESTORE.old"
    [ -d "$FILESTORE" ] && mv "$FILESTORE" "$FILESTORE.old"
  fi
  mv "$fs_src" "$FILESTORE"
  rm -rf "$FILESTORE.old" "$(dirname "$fs_src")"
  echo "filestore $FILESTORE replaced"
}

# odoo_neutralize DB RELEASE_DIR: Odoo's own neutralization of DB, which
# runs the data/neutralize.sql of each installed module: Odoo's, and the
# repository's own modules of RELEASE_DIR (a module knows what of its data
# reaches the outside world). Run the way every odoo-bin of the environment
# runs (odoo_run: its role, its user); the process runtime's
# runtime_neutralize. Fails the step, with Odoo's reason, after dropping DB.
odoo_neutralize() {
  local db=$1 release=$2 addons=${ODOOOPS_ODOO_ADDONS:-} flags code=0 reason ODOO_VENV=
  [ -z "$release" ] || addons=$(release_addons_path "$release")
  [ -z "$release" ] || ODOO_VENV=$(release_venv "$release")
  mapfile -t flags < <(odoo_flags "$addons" | odoo_copy_flags)
  echo "odoo-bin neutralize of $db, addons path: ${addons:-the default of odoo-bin}"
  odoo_run neutralize --database "$db" "${flags[@]}" >neutralize.log 2>&1 || code=$?
  cat neutralize.log
  if [ "$code" != 0 ]; then
    reason=$(odoo_failure neutralize.log)
    drop_database "$db"
    die "Odoo's neutralization (odoo-bin neutralize) failed: ${reason:-$(tail -n 1 neutralize.log)} (exit code $code); the environment keeps its database"
  fi
  echo "odoo-bin neutralize done; modules on the addons path with a data/neutralize.sql of their own: $(modules_with_neutralization "$db" "$addons")"
}

# odoo_copy_flags: odoo_flags (one per line, on stdin) for a copy beside
# the environment's database: without the live database (the copy is
# named) and log file (Odoo's lines go to the step's log), nor an empty
# addons path (odoo-bin refuses it; without the flag Odoo uses its own).
odoo_copy_flags() {
  local flag value
  while IFS= read -r flag && IFS= read -r value; do
    case $flag in
      --database | --logfile) ;;
      --addons-path) [ -z "$value" ] || printf '%s\n' "$flag" "$value" ;;
      *) printf '%s\n' "$flag" "$value" ;;
    esac
  done
}

# modules_with_neutralization DB ADDONS_PATH: the installed modules of DB
# (as odoo-bin neutralize selects them) that have a data/neutralize.sql in
# a directory of ADDONS_PATH, comma-separated; for the log only.
modules_with_neutralization() {
  local db=$1 dirs dir module found=()
  IFS=, read -ra dirs <<<"$2"
  while read -r module; do
    for dir in "${dirs[@]}"; do
      if [ -f "$dir/$module/data/neutralize.sql" ]; then found+=("$module"); break; fi
    done
  done < <(in_env_db q -d "$db" -c "SELECT name FROM ir_module_module
                           WHERE state IN ('installed', 'to upgrade', 'to remove') AND name ~ '^[A-Za-z0-9_]+$'
                           ORDER BY name")
  if [ ${#found[@]} = 0 ]; then echo none; else (IFS=,; echo "${found[*]}"); fi
}

drop_database() { q -d postgres -c "DROP DATABASE IF EXISTS \"$1\" WITH (FORCE)" >/dev/null 2>&1 || true; }

# rename_database FROM TO: ends the connections to FROM first (RENAME needs none);
# retried, as a client may connect in between.
rename_database() {
  local i
  for i in 1 2 3 4 5; do
    q -d postgres -c "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                       WHERE datname = '$1' AND pid <> pg_backend_pid()" >/dev/null
    q -d postgres -c "ALTER DATABASE \"$1\" RENAME TO \"$2\"" 2>rename.err && return 0
    sleep "0.$i"
  done
  cat rename.err >&2
  die "cannot rename database $1 to $2: $(tail -n 1 rename.err)"
}

# put_back_kept: after a failed deploy or restore, the database snapshot
# (taken by deploy/40-start, or the database restore_switch replaced) and
# the replaced filestore become the environment's again. Odoo must be
# stopped.
put_back_kept() {
  local snapshot=${ODOOOPS_DB_SNAPSHOT:-} fs=${ODOOOPS_FILESTORE_SNAPSHOT:-}
  if [ -n "$snapshot" ] && db_exists "$snapshot"; then
    q -d postgres -c "DROP DATABASE IF EXISTS \"$ODOOOPS_DB_NAME\" WITH (FORCE)"
    q -d postgres -c "ALTER DATABASE \"$snapshot\" RENAME TO \"$ODOOOPS_DB_NAME\""
    env_role_ensure
    own_database "$ODOOOPS_DB_NAME"
    echo "database $ODOOOPS_DB_NAME rolled back to the one it had before this ${ODOOOPS_WORKFLOW:-deploy}"
  fi
  if [ -n "$fs" ] && [ -d "$fs" ]; then
    rm -rf "$FILESTORE"
    mv "$fs" "$FILESTORE"
    echo "filestore $FILESTORE rolled back to the one before this ${ODOOOPS_WORKFLOW:-deploy}"
  fi
}

# drop_kept: the deploy or restore stands; the snapshot and the replaced
# filestore are no longer needed.
drop_kept() {
  if [ -n "${ODOOOPS_DB_SNAPSHOT:-}" ]; then
    q -d postgres -c "DROP DATABASE IF EXISTS \"$ODOOOPS_DB_SNAPSHOT\" WITH (FORCE)"
    echo "dropped $ODOOOPS_DB_SNAPSHOT, the database this ${ODOOOPS_WORKFLOW:-deploy} replaced"
  fi
  if [ -n "${ODOOOPS_FILESTORE_SNAPSHOT:-}" ]; then
    rm -rf "$ODOOOPS_FILESTORE_SNAPSHOT"
    echo "removed the replaced filestore $ODOOOPS_FILESTORE_SNAPSHOT"
  fi
}

# env_stop: stops the environment's Odoo (lib/runtime.sh runtime_stop)
# and, when it was serving, says so (ODOOOPS_WAS_SERVING), so that a failed
# restore or destroy starts it again (env_serve_again).
env_stop() {
  if runtime_running; then export_env ODOOOPS_WAS_SERVING 1; fi
  runtime_stop
}

# env_serve_again: after a failed restore or destroy, starts the
# environment's Odoo again on the database it has (the one put back) if a
# step of this run stopped it, and checks /web/health.
env_serve_again() {
  [ -n "${ODOOOPS_WAS_SERVING:-}" ] || return 0
  runtime_deployed || return 0
  runtime_start_again
}

# run_backup REFUSE|WARN: the backup a production deploy, restore or destroy
# takes first of the database and filestore it replaces or removes (the
# backup workflow's dump, backup/10-dump), written where the worker says
# (ODOOOPS_RUN_BACKUP_PREFIX); the worker reads it back, hashes it and
# records it as a backup of type ODOOOPS_RUN_BACKUP_TYPE (pre_deploy,
# pre_restore, final). Outside production there is none, and without a
# database nothing to back up. Without storage, WARN goes on with a warning
# (a deploy) and REFUSE stops the run (a restore, a destroy: nothing is
# replaced or removed without a copy to go back to); a failed dump always
# stops it.
run_backup() {
  local without_storage=$1 type=${ODOOOPS_RUN_BACKUP_TYPE:-}
  [ "${ODOOOPS_STAGE:-}" = production ] && [ -n "$type" ] || return 0
  if ! db_exists "$ODOOOPS_DB_NAME"; then
    echo "${ODOOOPS_ENVIRONMENT} has no database $ODOOOPS_DB_NAME yet: no $type backup to take"
    return 0
  fi
  if [ -z "${ODOOOPS_STORAGE:-}" ] || [ -z "${ODOOOPS_RUN_BACKUP_PREFIX:-}" ]; then
    [ "$without_storage" = WARN ] || die "no storage configured: no $type backup, so ${ODOOOPS_ENVIRONMENT} is left as it is"
    warn "no storage configured: no $type backup"
    return 0
  fi
  ODOOOPS_BACKUP_KEY=${type}_backup "$STEPS_LIB/../backup/10-dump" ||
    die "the $type backup of $ODOOOPS_DB_NAME failed: ${ODOOOPS_ENVIRONMENT} is left as it is"
}
