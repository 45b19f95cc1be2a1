# shellcheck shell=bash
# Rebuilds (sourced after common.sh and restore.sh): a deploy queued by
# ops.rebuild_environment (run metadata `rebuild`: true) starts the
# environment over from scratch on the same commit: a new database from the
# template and an empty filestore, the branch's modules installed as on a
# first deploy. Production is never rebuilt (the control plane refuses it;
# this checks again). The database and filestore it replaces are kept aside
# as a deploy's snapshot is (ODOOOPS_DB_SNAPSHOT, ODOOOPS_FILESTORE_SNAPSHOT):
# dropped once the deploy stands (50-health), put back if it fails
# (on-failure/10-rollback).

# rebuild_requested: true when this deploy is a rebuild.
rebuild_requested() { [ "$(json_get "${ODOOOPS_RUN_METADATA:-}" rebuild)" = true ]; }

# rebuild_keep_aside: with Odoo stopped, moves the environment's database
# and filestore aside, so that the deploy goes on as a first deploy.
rebuild_keep_aside() {
  [ "$ODOOOPS_STAGE" != production ] || die "production is never rebuilt: its database is its data"
  local keep="${ODOOOPS_DB_NAME:0:40}_pre_${ODOOOPS_RUN_ID}"
  if db_exists "$ODOOOPS_DB_NAME"; then
    drop_database "$keep"
    rename_database "$ODOOOPS_DB_NAME" "$keep"
    export_env ODOOOPS_DB_SNAPSHOT "$keep"
    echo "rebuild: database $ODOOOPS_DB_NAME kept aside as $keep until the rebuilt one stands"
  fi
  if [ -d "$FILESTORE" ]; then
    rm -rf "$FILESTORE.pre-deploy-$ODOOOPS_RUN_ID"
    mv "$FILESTORE" "$FILESTORE.pre-deploy-$ODOOOPS_RUN_ID"
    export_env ODOOOPS_FILESTORE_SNAPSHOT "$FILESTORE.pre-deploy-$ODOOOPS_RUN_ID"
  fi
}
