#!/usr/bin/env bash
# What a development Odoo (running branch code, so anyone who can push a
# branch) holds: its process environment and command line carry no storage
# credentials and no login of the worker, only the environment's own role;
# with exactly those credentials it reaches its own database and neither
# another environment's database nor the control plane's. A step's
# environment holds no storage credential either (steps reach storage
# through `odooops-worker storage`, which a backup here uses), and with a
# worker login on the environments' server that is not superuser (CREATEDB
# CREATEROLE) deploys, backups and destroy work. Destroying the
# environment drops the role.
source "$(dirname "$0")/lib.sh"
setup_control_plane
start_s3
PGOPTIONS="-c client_min_messages=warning" psql -X -q -d postgres -c "DROP ROLE IF EXISTS odooops_e2e_envadmin" \
  -c "CREATE ROLE odooops_e2e_envadmin LOGIN CREATEDB CREATEROLE" >/dev/null
EXTRA_CLEANUP+=("psql -X -q -d postgres -c 'DROP ROLE IF EXISTS odooops_e2e_envadmin' >/dev/null 2>&1")
# The shipped steps plus one that records its own environment.
cp -r "$ROOT/worker/steps" "$WORK/steps"
cat >"$WORK/steps/deploy/45-probe" <<PROBE
#!/usr/bin/env bash
tr '\\0' '\\n' </proc/\$\$/environ >"$WORK/step-\$ODOOOPS_ENVIRONMENT.environ"
PROBE
chmod +x "$WORK/steps/deploy/45-probe"
# shellcheck disable=SC2046
start_worker lp $(S3_FLAGS) --storage s3://odooops-backups/acme --kinds build,deploy,test,backup,destroy \
  --steps-dir "$WORK/steps" --odoo-db-user odooops_e2e_envadmin

staging=$(queue staging deploy)
wait_status "$staging" succeeded 90
dev=$(queue dev deploy)
wait_status "$dev" succeeded 90
pid=$(cat "$STATE/envs/acme/dev/odoo.pid")
alive "$pid" || fail "the development Odoo process $pid does not run"
mapfile -t environ < <(tr '\0' '\n' <"/proc/$pid/environ")
mapfile -t cmdline < <(tr '\0' '\n' <"/proc/$pid/cmdline")

# No storage secret, no password, and no login but the role.
for e in "${environ[@]}"; do
  case $e in
    AWS_* | ODOOOPS_S3_* | ODOOOPS_STORAGE=* | ODOOOPS_CONFIG=* | PGPASSWORD=* | PGSERVICE* | ODOOOPS_DB_USER=*)
      fail "the development Odoo's environment holds ${e%%=*}" ;;
  esac
done
db_user=""
for i in "${!cmdline[@]}"; do
  [ "${cmdline[$i]}" = --db_user ] && db_user=${cmdline[$((i + 1))]}
  [[ ${cmdline[$i]} == --db_password* || ${cmdline[$i]} == -w ]] && fail "a password on the Odoo command line"
done
pguser=$(printf '%s\n' "${environ[@]}" | sed -n 's/^PGUSER=//p')
[ -n "$db_user" ] || fail "the development Odoo has no --db_user: ${cmdline[*]}"
[ "$pguser" = "$db_user" ] || fail "PGUSER ($pguser) is not the --db_user ($db_user)"
[ "$(scalar "SELECT rolsuper OR rolcreatedb OR rolcreaterole OR rolreplication OR rolbypassrls FROM pg_roles WHERE rolname = '$db_user'")" = f ] \
  || fail "the development Odoo's role $db_user is privileged"
[ "$(scalar "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'e2e_least_privilege_dev'")" = "$db_user" ] \
  || fail "the development database is not owned by $db_user"
[ "$(psql -X -A -t -d e2e_least_privilege_dev -c "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = 'public' AND c.relowner <> (SELECT oid FROM pg_roles WHERE rolname = '$db_user')")" = 0 ] \
  || fail "objects of the development database are not owned by $db_user"
secret=$STATE/secrets/$db_user.password
[ "$(stat -c %a "$secret")" = 600 ] || fail "the role's secret $secret is not mode 0600"
say "the development Odoo runs as role $db_user, owner of its database only, with no storage or worker credentials"

# A step: no storage credential, no superuser login, no password.
step_env=$WORK/step-dev.environ
[ -s "$step_env" ] || fail "the probe step did not record its environment"
if grep -E '^(AWS_|ODOOOPS_S3_|PGPASSWORD=)' "$step_env"; then fail "a step's environment holds the above"; fi
step_user=$(sed -n 's/^PGUSER=//p' "$step_env")
[ "$(scalar "SELECT rolsuper FROM pg_roles WHERE rolname = '$step_user'")" = f ] || fail "a step logs in as superuser $step_user"
conf=$(sed -n 's/^ODOOOPS_CONFIG=//p' "$step_env")
[ "$(stat -c %a "$conf")" = 600 ] || fail "the worker's storage settings $conf are not mode 0600"
grep -q '^s3-secret-key = ' "$conf" || fail "the storage settings file holds no credential"
b=$(queue_backup dev)
wait_status "$b" succeeded 60
say "steps hold no storage credential nor superuser login (PGUSER=$step_user); backup $b reached storage through the worker"

# Connect with exactly what the Odoo process got: its PG* environment and --db_user.
as_odoo() {
  local db=$1; shift
  env -i PATH="$PATH" "${pg_env[@]}" psql -X -A -t -w -U "$db_user" -d "$db" "$@"
}
mapfile -t pg_env < <(printf '%s\n' "${environ[@]}" | grep '^PG')
[ "$(as_odoo e2e_least_privilege_dev -c "SELECT current_user")" = "$db_user" ] \
  || fail "the role cannot reach its own database"
as_odoo e2e_least_privilege_staging -c "SELECT 1" >/dev/null 2>&1 \
  && fail "the development Odoo's credentials reach the staging database"
as_odoo "$CP_DB" -c "SELECT 1" >/dev/null 2>&1 \
  && fail "the development Odoo's credentials reach the control-plane database"
as_odoo postgres -c "CREATE DATABASE e2e_least_privilege_x" >/dev/null 2>&1 \
  && fail "the development Odoo's credentials create databases"
as_odoo postgres -c "CREATE ROLE e2e_least_privilege_r" >/dev/null 2>&1 \
  && fail "the development Odoo's credentials create roles"
say "its credentials reach its own database only (not staging, not the control plane)"

gone=$(scalar "SELECT id FROM ops.destroy_environment(1, 'dev', 'end-to-end test')")
wait_status "$gone" succeeded 60
[ "$(scalar "SELECT count(*) FROM pg_roles WHERE rolname = '$db_user'")" = 0 ] || fail "role $db_user survives the destroy"
[ ! -e "$secret" ] || fail "the role's secret survives the destroy"
say "destroy dropped role $db_user and its secret"
say "PASS"
