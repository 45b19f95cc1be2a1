# shellcheck shell=bash
# The operator's major-version upgrade hook (sourced after common.sh):
# shared by the upgrade test (upgrade_test/40-upgrade) and whatever runs an
# upgrade on a database. The hook is the worker's --upgrade-hook
# (ODOOOPS_UPGRADE_HOOK): an executable of the operator's, never a value
# of a setting or of the branch. Its inputs are documented in
# docs/upgrades.md.

# upgrade_columns DB: "table.column" of every column of DB's public schema,
# one a line, sorted (what the hook changed is the difference).
upgrade_columns() {
  PGOPTIONS="${PGOPTIONS:-} -c default_transaction_read_only=on" in_env_db q -d "$1" -c \
    "SELECT table_name || '.' || column_name FROM information_schema.columns
      WHERE table_schema = 'public' ORDER BY 1"
}

# upgrade_modules DB: the installed modules and their versions, as JSON.
upgrade_modules() {
  if [ "$(in_env_db q -d "$1" -c "SELECT to_regclass('ir_module_module') IS NOT NULL")" = t ]; then
    PGOPTIONS="${PGOPTIONS:-} -c default_transaction_read_only=on" in_env_db q -d "$1" -c \
      "SELECT coalesce(json_object_agg(name, coalesce(latest_version, '') ORDER BY name), '{}')
         FROM ir_module_module WHERE state = 'installed'"
  else
    echo '{}'
  fi
}

# upgrade_role_ready: the environment's role and its password file (which
# env_role_ensure writes as the worker) exist, and the file is again the
# environment's operating-system user's, so the Odoo that keeps serving
# still connects.
upgrade_role_ready() {
  env_role_ensure
  if [ -n "$ODOO_OS_USER" ] && id -u "$ODOO_OS_USER" >/dev/null 2>&1; then
    chown "$ODOO_OS_USER:$ODOO_OS_USER" "$ODOO_PGPASS"
  fi
}

# upgrade_run_hook DB DIR ADDONS_PATH MODE: runs the hook on DB with a
# clean environment -- the connection as the environment's own database
# role (PGHOST, PGPORT, PGUSER, PGPASSFILE, PGDATABASE), the target
# version, the addons path (Odoo's and the revision's), the checkout, a
# data directory (DIR/data, holding DB's filestore) and the log file it
# may write to -- in DIR, as the worker's user (the hook is the
# operator's), its output appended to that log. Records result.upgrade
# and the upgrade.log artifact; fails the step, with the hook's last line,
# when the hook exits non-zero.
upgrade_run_hook() {
  local db=$1 dir=$2 addons=$3 mode=$4 hook=${ODOOOPS_UPGRADE_HOOK:?} log=$ODOOOPS_WORKSPACE/upgrade.log
  local before after started code=0 duration series modules
  if [ ! -x "$hook" ] || [ ! -f "$hook" ]; then die "the upgrade hook $hook is not an executable file; nothing was upgraded"; fi
  upgrade_role_ready
  before=$(upgrade_columns "$db")
  series=$(json_get "$(upgrade_modules "$db")" base | cut -d. -f1-2)
  : >"$log"
  echo "running the upgrade hook $hook on $db (from ${series:-an unknown version} to ${ODOOOPS_UPGRADE_TARGET_VERSION:-the target version})"
  started=$(date +%s)
  (cd "$dir" && env -i "PATH=$PATH" "LANG=${LANG:-C.UTF-8}" "HOME=$dir" \
      "PGHOST=${ODOOOPS_DB_HOST:-}" "PGPORT=${ODOOOPS_DB_PORT:-5432}" "PGUSER=$ENV_ROLE" \
      "PGPASSFILE=$ODOO_PGPASS" "PGDATABASE=$db" \
      "ODOOOPS_UPGRADE_DB=$db" "ODOOOPS_UPGRADE_MODE=$mode" \
      "ODOOOPS_UPGRADE_FROM_VERSION=$series" \
      "ODOOOPS_UPGRADE_TARGET_VERSION=${ODOOOPS_UPGRADE_TARGET_VERSION:-}" \
      "ODOOOPS_UPGRADE_ADDONS_PATH=$addons" "ODOOOPS_UPGRADE_SOURCE_DIR=$ODOOOPS_WORKSPACE/src" \
      "ODOOOPS_UPGRADE_DATA_DIR=$dir/data" "ODOOOPS_UPGRADE_LOG=$log" \
      "ODOO_BIN=${ODOO_BIN:-}" "ODOOOPS_ODOO_PYTHON=${ODOOOPS_ODOO_PYTHON:-}" \
      "$hook" "$db" >>"$log" 2>&1 </dev/null 3>&- 9>&-) || code=$?
  duration=$(($(date +%s) - started))
  after=$(upgrade_columns "$db" 2>/dev/null) || after=$before
  artifact upgrade.log log path upgrade.log
  modules=$(upgrade_modules "$db" 2>/dev/null) || modules='{}'
  meta "$(python3 - "$code" "$duration" "$db" "${ODOOOPS_UPGRADE_TARGET_VERSION:-}" "$series" \
            "$modules" "$before" "$after" "$mode" <<'PY'
import json, sys
code, duration, db, target, source, modules, before, after, mode = sys.argv[1:]
b, a = set(filter(None, before.splitlines())), set(filter(None, after.splitlines()))
print(json.dumps({"upgrade": {
    "mode": mode, "status": "succeeded" if code == "0" else "failed", "exit_code": int(code),
    "duration_seconds": int(duration), "database": db, "from_version": source, "target_version": target,
    "modules": json.loads(modules or "{}"),
    "schema": {"columns_added": sorted(a - b)[:500], "columns_removed": sorted(b - a)[:500]}}}))
PY
)"
  echo "--- the upgrade hook's log (last 50 lines) ---"
  tail -n 50 "$log"
  if [ "$code" != 0 ]; then
    die "the upgrade hook failed (exit $code) after ${duration} s: $(grep -v '^[[:space:]]*$' "$log" | tail -n 1 | cut -c1-300)"
  fi
  echo "the upgrade hook succeeded after ${duration} s"
}
