# shellcheck shell=bash
# Refresh seeds (the worker's --refresh-seeds, docs/backups.md): a staging
# refresh keeps the neutralized copy it restored as the environment's seed,
# <db>_seed_<backup id> (a name no environment may take), owned by the
# environment's role and closed to connections, with a hard-linked copy of
# its filestore in <env>/seeds/<backup id>. The next refresh of the same
# environment from the same backup -- every staging push of the day, when
# production is backed up daily -- clones the seed (CREATE DATABASE ...
# TEMPLATE, file by file) instead of fetching, unpacking and restoring the
# backup, and neutralizes the clone again for its own release. The seed
# never serves: nothing connects to it, so it can always be cloned. A
# refresh from a newer backup replaces the seed; the environment's destroy
# drops it. Seeds cost as much disk as the staging database.
# Sourced by deploy/35-restore-backup after lib/restore.sh.

seeds_enabled() { [ "${ODOOOPS_REFRESH_SEEDS:-false}" = true ] && [ "$ODOOOPS_STAGE" != production ]; }
seed_name() { printf '%s_seed_%s\n' "${ODOOOPS_DB_NAME:0:40}" "$1"; }
SEED_DIR=$ENV_DIR/seeds

# seed_clone TMP DIR: when the environment has the seed of the backup being
# restored, TMP becomes a clone of it and DIR a copy of its filestore
# (RESTORED_FILESTORE); status 1 when it has none.
seed_clone() {
  local tmp=$1 dir=$2 seed
  seeds_enabled || return 1
  seed=$(seed_name "$ODOOOPS_BACKUP_ID")
  db_exists "$seed" && [ -d "$SEED_DIR/$ODOOOPS_BACKUP_ID" ] || return 1
  drop_database "$tmp"
  env_role_ensure
  q -d postgres -v db="$tmp" -v role="$ENV_ROLE" -v seed="$seed" \
    -v strategy="$(seed_strategy)" >/dev/null <<'SQL' || return 1
SELECT format('CREATE DATABASE %I OWNER %I TEMPLATE %I', :'db', :'role', :'seed') || :'strategy' \gexec
SQL
  own_database "$tmp"
  rm -rf "$dir" && mkdir -p "$dir"
  cp -al "$SEED_DIR/$ODOOOPS_BACKUP_ID/filestore" "$dir/filestore"
  # shellcheck disable=SC2034 # read by the sourcing step
  RESTORED_FILESTORE=$dir/filestore
  echo "cloned $seed, the neutralized copy of backup $ODOOOPS_BACKUP_ID this environment keeps: no download, no restore"
}

# seed_keep TMP FILESTORE: TMP (restored and neutralized) and FILESTORE are
# kept as the seed of the backup just restored; the environment's older
# seeds go.
seed_keep() {
  local tmp=$1 filestore=$2 seed
  seeds_enabled || return 0
  seed=$(seed_name "$ODOOOPS_BACKUP_ID")
  seed_drop_all
  q -d postgres -v db="$seed" -v role="$ENV_ROLE" -v tmp="$tmp" \
    -v strategy="$(seed_strategy)" >/dev/null <<'SQL'
SELECT format('CREATE DATABASE %I OWNER %I TEMPLATE %I', :'db', :'role', :'tmp') || :'strategy' \gexec
SELECT format('ALTER DATABASE %I WITH ALLOW_CONNECTIONS false', :'db') \gexec
SQL
  mkdir -p "$SEED_DIR/$ODOOOPS_BACKUP_ID"
  chmod 700 "$SEED_DIR"
  cp -al "$filestore" "$SEED_DIR/$ODOOOPS_BACKUP_ID/filestore"
  echo "kept $seed, a neutralized copy of backup $ODOOOPS_BACKUP_ID, for the next refresh from it"
}

# seed_drop_all: the environment's seeds go (databases and filestores).
seed_drop_all() {
  local db
  while read -r db; do
    [ -n "$db" ] || continue
    drop_database "$db"
    echo "dropped the seed $db"
  done < <(q -d postgres -v prefix="${ODOOOPS_DB_NAME:0:40}_seed_" <<'SQL'
SELECT datname FROM pg_database
 WHERE left(datname, length(:'prefix')) = :'prefix' AND substr(datname, length(:'prefix') + 1) ~ '^[0-9]+$'
SQL
)
  rm -rf "$SEED_DIR"
}

# seed_strategy: a clone copies the template's files (PostgreSQL 15 and
# later default to copying through the WAL, block by block).
seed_strategy() {
  [ "$(q -d postgres -c 'SHOW server_version_num')" -ge 150000 ] && echo ' STRATEGY FILE_COPY'
  return 0
}
