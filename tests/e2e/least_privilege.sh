#!/usr/bin/env bash
# What a development Odoo (running branch code, so anyone who can push a
# branch) holds and reaches, read from the running process and tried as its
# own operating-system user:
# - it runs as a user of its own (not root, not the worker's, not the
#   staging Odoo's), with no supplementary group, and its environment holds
#   only the allow-listed variables: no storage setting or credential, no
#   login of the worker, only the environment's own role;
# - as that user it cannot read the worker's environment, secrets or git
#   mirrors, nor the staging environment's password file, filestore or
#   releases, while its own are open to it;
# - with exactly its credentials it reaches its own database and neither
#   another environment's database nor the control plane's (the
#   environments' roles log in with a password here, as an operator
#   configures them);
# - destroying the environment drops its role and its user, and no process
#   of that user is left.
# A step's environment holds no storage credential either (steps reach
# storage through `odooops-worker storage`, which a backup here uses), and
# with a worker login on the environments' server that is not superuser
# (CREATEDB CREATEROLE) deploys, backups and destroy work.
# Finally the test tries, as the development Odoo's user, what branch code
# could do beyond that: read the command lines of every process while
# production deploys (the worker's, the steps'), read production's
# workspace and release while they are written, and plant symlinks in its
# own log directory that the deploy steps, running as root, follow. Each
# of these it achieves is reported, and fails the test.
source "$(dirname "$0")/lib.sh"
[ "$(id -u)" = 0 ] || fail "run as root: the worker then runs each environment's Odoo as a user of its own"
setup_control_plane
start_s3 odooops-backups
PGOPTIONS="-c client_min_messages=warning" psql -X -q -d postgres -c "DROP ROLE IF EXISTS odooops_e2e_envadmin" \
  -c "CREATE ROLE odooops_e2e_envadmin LOGIN CREATEDB CREATEROLE" >/dev/null
EXTRA_CLEANUP+=("psql -X -q -d postgres -c 'DROP ROLE IF EXISTS odooops_e2e_envadmin' >/dev/null 2>&1")
HOLES=()

# The environments' roles must log in with their password (scram-sha-256),
# as docs/security.md asks of the operator; the test server trusts every
# other login. So what a process can reach is decided by the credentials it
# holds. The role names follow env_role_name (lib/common.sh).
require_role_passwords() {
  local hba roles
  hba=$(psql -X -A -t -d postgres -c "SHOW hba_file")
  roles=$(scalar "SELECT string_agg('odoo_' || db_name, ',') FROM ops.environments")
  cp -p "$hba" "$WORK/pg_hba.conf.orig"
  EXTRA_CLEANUP+=("cat '$WORK/pg_hba.conf.orig' >'$hba' && psql -X -q -d postgres -c 'SELECT pg_reload_conf()' >/dev/null")
  { printf 'local all %s scram-sha-256\nhost all %s 127.0.0.1/32 scram-sha-256\n' "$roles" "$roles"
    cat "$WORK/pg_hba.conf.orig"; } >"$hba"
  psql -X -q -d postgres -c "SELECT pg_reload_conf()" >/dev/null
  sleep 0.5 # the server reloads in the background
  [ "$(psql -X -A -t -d postgres -c "SELECT count(*) FROM pg_hba_file_rules
        WHERE auth_method = 'scram-sha-256' AND user_name @> string_to_array('$roles', ',') AND error IS NULL")" = 2 ] \
    || fail "the server does not require passwords of $roles"
}

# odoo_ids PID -> UID:GID of an Odoo process. Its real, effective, saved and
# file ids agree and it holds no supplementary group, so whatever a command
# run with exactly these ids can do, the process can do too.
odoo_ids() {
  local pid=$1 u g groups
  read -r -a u < <(sed -n 's/^Uid:[[:space:]]*//p' "/proc/$pid/status")
  read -r -a g < <(sed -n 's/^Gid:[[:space:]]*//p' "/proc/$pid/status")
  groups=$(sed -n 's/^Groups:[[:space:]]*//p' "/proc/$pid/status")
  [ "$(printf '%s\n' "${u[@]}" "${g[@]/#/g}" | sort -u | wc -l)" = 2 ] \
    || fail "the Odoo process $pid has mixed ids: uid ${u[*]}, gid ${g[*]}"
  [ -z "${groups//[[:space:]]/}" ] || fail "the Odoo process $pid keeps the supplementary groups $groups"
  echo "${u[0]}:${g[0]}"
}
# ids_prefix UID:GID -> the command prefix (a word a line) that runs a
# command with exactly those ids and no group.
ids_prefix() { printf '%s\n' setpriv --reuid="${1%:*}" --regid="${1#*:}" --clear-groups --; }
as_ids() { local prefix; mapfile -t prefix < <(ids_prefix "$1"); shift; "${prefix[@]}" "$@"; }
# as_dev [NAME=VALUE...] CMD...: CMD as the development Odoo runs, with its
# user and its environment (what branch code in it can do). AS_DEV is the
# prefix itself, for a background process whose pid $! must be its own.
as_dev() { "${AS_DEV[@]}" "$@"; }
# open_to UID:GID PATH: that user reads PATH (a file) or lists it (a directory).
open_to() {
  [ -e "$2" ] || fail "$2 does not exist: nothing to try"
  if [ -d "$2" ]; then as_ids "$1" ls -A "$2" >/dev/null 2>&1; else as_ids "$1" cat "$2" >/dev/null 2>&1; fi
}
closed_to_dev() { if open_to "$dev_ids" "$1"; then fail "the development Odoo's user reads $1 ($2)"; fi; }
open_to_dev() { open_to "$dev_ids" "$1" || fail "the development Odoo's user cannot read its own $1"; }
# hole WHAT: branch code reaches something it must not; reported, and the
# test fails at its end (after the destroy, which is checked as well).
hole() { printf '[%s] HOLE: %s\n' "$E2E_NAME" "$*" >&2; HOLES+=("$*"); }

require_role_passwords
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
worker=$LAST_WORKER_PID

staging=$(queue staging deploy)
wait_status "$staging" succeeded 90
dev=$(queue dev deploy)
wait_status "$dev" succeeded 90
DEV=$STATE/envs/acme/dev
STAGING=$STATE/envs/acme/staging
env_db() { scalar "SELECT db_name FROM ops.environments WHERE name = '$1'"; }
dev_db=$(env_db dev)
staging_db=$(env_db staging)
pid=$(cat "$DEV/odoo.pid")
staging_pid=$(cat "$STAGING/odoo.pid")
alive "$pid" || fail "the development Odoo process $pid does not run"
alive "$staging_pid" || fail "the staging Odoo process $staging_pid does not run"
mapfile -t environ < <(tr '\0' '\n' <"/proc/$pid/environ")
mapfile -t cmdline < <(tr '\0' '\n' <"/proc/$pid/cmdline")

# Its own operating-system user: not root, not the worker's, not staging's.
dev_ids=$(odoo_ids "$pid")
staging_ids=$(odoo_ids "$staging_pid")
worker_uid=$(awk '/^Uid:/ {print $3}' "/proc/$worker/status")
[ "${dev_ids%:*}" != 0 ] || fail "the development Odoo runs as root"
[ "${dev_ids%:*}" != "$worker_uid" ] || fail "the development Odoo runs as the worker's user (uid $worker_uid)"
[ "${staging_ids%:*}" != 0 ] || fail "the staging Odoo runs as root"
[ "${staging_ids%:*}" != "$worker_uid" ] || fail "the staging Odoo runs as the worker's user (uid $worker_uid)"
[ "${dev_ids%:*}" != "${staging_ids%:*}" ] || fail "the development and staging Odoo share the uid ${dev_ids%:*}"
dev_user=$(id -nu "${dev_ids%:*}")
mapfile -t AS_DEV < <(ids_prefix "$dev_ids")
AS_DEV+=(env -i "${environ[@]}")
say "the development Odoo runs as $dev_user ($dev_ids), staging's as ${staging_ids}, the worker as uid $worker_uid"

# Its command line: the role, no password.
db_user=""
for i in "${!cmdline[@]}"; do
  [ "${cmdline[$i]}" = --db_user ] && db_user=${cmdline[$((i + 1))]}
  [[ ${cmdline[$i]} == --db_password* || ${cmdline[$i]} == -w ]] && fail "a password on the Odoo command line"
done
[ -n "$db_user" ] || fail "the development Odoo has no --db_user: ${cmdline[*]}"
# Its environment: the allow-list only (no ODOOOPS_*, AWS_*, PGPASSWORD,
# PGSERVICE...), its own role, password file and home.
for e in "${environ[@]}"; do
  case ${e%%=*} in
    PATH | LANG | TZ | SSL_CERT_FILE | PGHOST | PGPORT) ;;
    PGUSER) [ "$e" = "PGUSER=$db_user" ] || fail "the development Odoo's $e is not its role $db_user" ;;
    PGPASSFILE) [ "$e" = "PGPASSFILE=$DEV/odoo.pgpass" ] || fail "the development Odoo's $e is not its environment's" ;;
    HOME) [ "$e" = "HOME=$DEV/data" ] || fail "the development Odoo's $e is not its data directory" ;;
    *) fail "the development Odoo's environment holds ${e%%=*}, which is not on the allow-list" ;;
  esac
done
printf '%s\n' "${environ[@]}" | has '^PGPASSFILE=' || fail "the development Odoo has no PGPASSFILE"
[ "$(scalar "SELECT rolsuper OR rolcreatedb OR rolcreaterole OR rolreplication OR rolbypassrls FROM pg_roles WHERE rolname = '$db_user'")" = f ] \
  || fail "the development Odoo's role $db_user is privileged"
[ "$(scalar "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = '$dev_db'")" = "$db_user" ] \
  || fail "the development database is not owned by $db_user"
[ "$(psql -X -A -t -d "$dev_db" -c "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = 'public' AND c.relowner <> (SELECT oid FROM pg_roles WHERE rolname = '$db_user')")" = 0 ] \
  || fail "objects of the development database are not owned by $db_user"
secret=$STATE/secrets/$db_user.password
[ "$(stat -c %a "$secret")" = 600 ] || fail "the role's secret $secret is not mode 0600"
say "it runs as role $db_user, owner of its database only, with only the allow-listed variables"

# What that user can read: its own environment, nothing of the worker's or
# of staging's.
storage_conf=$STATE/secrets/storage-$worker.conf
[ -f "$storage_conf" ] || fail "the worker wrote no storage settings file $storage_conf"
closed_to_dev "/proc/$worker/environ" "the worker's environment"
closed_to_dev "$STATE/secrets" "the worker's secrets"
for f in "$STATE"/secrets/*; do closed_to_dev "$f" "a secret of the worker"; done
closed_to_dev "$STATE/git" "the git mirrors"
for m in "$STATE"/git/*/; do closed_to_dev "${m}HEAD" "a git mirror"; done
closed_to_dev "$STAGING/odoo.pgpass" "staging's database password"
closed_to_dev "$STAGING/data" "staging's data"
closed_to_dev "$STAGING/data/filestore/$staging_db" "staging's filestore"
closed_to_dev "$STAGING/releases" "staging's releases"
closed_to_dev "$STAGING/releases/$SHA/addons/acme_sale/__manifest__.py" "staging's code"
open_to_dev "$DEV/odoo.pgpass"
open_to_dev "$DEV/data/filestore/$dev_db"
open_to_dev "$DEV/releases/$SHA/addons/acme_sale/__manifest__.py"
say "as $dev_user: its own password file, filestore and release are readable; the worker's environment, secrets and git mirrors and staging's password file, filestore and releases are not"

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

# psql with exactly what the development Odoo holds: its environment (its
# role, its password file) and its operating-system user.
as_odoo() { local db=$1; shift; as_dev psql -X -A -t -w -d "$db" "$@"; }
staging_role=$(tr '\0' '\n' <"/proc/$staging_pid/environ" | sed -n 's/^PGUSER=//p')
[ "${staging_role:-$db_user}" != "$db_user" ] || fail "the staging Odoo has no role of its own (PGUSER=$staging_role)"
[ "$(as_odoo "$dev_db" -c "SELECT current_user")" = "$db_user" ] \
  || fail "the development Odoo's credentials do not reach its own database"
if as_odoo "$staging_db" -c "SELECT 1" >/dev/null 2>&1; then fail "the development Odoo's credentials reach the staging database"; fi
if as_odoo "$staging_db" -U "$staging_role" -c "SELECT 1" >/dev/null 2>&1; then fail "the development Odoo logs in as staging's role $staging_role"; fi
if as_odoo "$CP_DB" -c "SELECT 1" >/dev/null 2>&1; then fail "the development Odoo's credentials reach the control-plane database"; fi
if as_odoo postgres -c "CREATE DATABASE ${dev_db}_x" >/dev/null 2>&1; then fail "the development Odoo's credentials create databases"; fi
if as_odoo postgres -c "CREATE ROLE ${dev_db}_r" >/dev/null 2>&1; then fail "the development Odoo's credentials create roles"; fi
say "as $dev_user with its credentials: its own database only (not staging's, not as staging's role, not the control plane)"

# Beyond that, what branch code could try.
# 1. Watch every process's command line (/proc/<pid>/cmdline, open to all
#    users) and try production's workspace and release while production
#    deploys: the worker's flags, the steps' arguments, code being written.
watcher=$WORK/watch.py
cat >"$watcher" <<'PY'
import os, sys, time
paths, seen = list(sys.argv[1:]), set()
while True:
    for p in os.listdir("/proc"):
        try:
            with open("/proc/%s/cmdline" % p, "rb") as fh:
                line = fh.read()
        except OSError:
            continue
        if line and line not in seen:
            seen.add(line)
            print("cmdline " + line.replace(b"\0", b" ").decode(errors="replace"), flush=True)
    for path in list(paths):
        try:
            with open(path) as fh:
                print("read %s: %s" % (path, fh.readline().strip()), flush=True)
            paths.remove(path)
        except OSError:
            pass
    time.sleep(0.002)
PY
# The run the production deploy will be (branch code would try each id).
prod_ws=$STATE/workspaces/run-$(scalar "SELECT pg_sequence_last_value(pg_get_serial_sequence('ops.runs', 'id')::regclass) + 1")-a1
"${AS_DEV[@]}" python3 "$watcher" "$prod_ws/src/addons/acme_sale/__manifest__.py" \
  "$STATE/envs/acme/production/releases/$SHA/addons/acme_sale/__manifest__.py" >"$WORK/watch.out" 2>&1 &
watch_pid=$!
EXTRA_CLEANUP+=("kill $watch_pid 2>/dev/null")
prod=$(queue production deploy)
[ "$STATE/workspaces/run-$prod-a1" = "$prod_ws" ] || fail "the production deploy is run $prod, not the one watched"
wait_status "$prod" succeeded 90
alive "$watch_pid" || fail "the watcher ended early: $(tail -n 5 "$WORK/watch.out")"
kill "$watch_pid"
wait "$watch_pid" 2>/dev/null || true
prod_db=$(env_db production)
grep -q "^cmdline .*$prod_db" "$WORK/watch.out" || fail "the watcher saw nothing of the production deploy"
prod_role=$(tr '\0' '\n' <"/proc/$(cat "$STATE/envs/acme/production/odoo.pid")/environ" | sed -n 's/^PGUSER=//p')
[ -n "$prod_role" ] || fail "the production Odoo has no PGUSER"
prod_pw=$(cat "$STATE/secrets/$prod_role.password")
if grep -q -F -- "$prod_pw" "$WORK/watch.out"; then
  hole "production's database password is on a command line every user can read: $(grep -F -- "$prod_pw" "$WORK/watch.out" | head -n 1 | cut -c1-160)"
  if [ "$(as_dev PGUSER="$prod_role" PGPASSWORD="$prod_pw" psql -X -A -t -w -d "$prod_db" \
        -c "SELECT current_user" 2>/dev/null)" = "$prod_role" ]; then
    hole "with it, $dev_user logs in to the production database as $prod_role"
  fi
fi
s3_line=$(grep '^s3-secret-key = ' "$storage_conf")
s3_secret=$(sed 's/^s3-secret-key = "\{0,1\}//; s/"$//' <<<"$s3_line")
# This test's worker only (other workers of the host are not this test's).
if tr '\0' ' ' <"/proc/$worker/cmdline" | has -E -- "--s3-secret-key[ =]$s3_secret( |\$)"; then
  hole "the storage secret key is on the worker's command line, which every user reads (/proc/$worker/cmdline)"
fi
while read -r line; do hole "$dev_user $line (production's code, while it was deployed)"; done < <(grep '^read ' "$WORK/watch.out")
say "watched the production deploy (run $prod) as $dev_user"

# 2. Leave a process behind (detached, not the server the pidfile names),
#    and plant symlinks in its own log directory, which the deploy steps (as
#    root) read and append to: odoo.log to the worker's storage settings,
#    odoo.stdout to a file that does not exist yet in the worker's secrets.
planted=$STATE/secrets/planted-by-branch-code
"${AS_DEV[@]}" setsid sleep 600 </dev/null >/dev/null 2>&1 &
lingering=$!
disown "$lingering"
EXTRA_CLEANUP+=("kill -KILL $lingering 2>/dev/null")
planting=planted
if ! as_dev ln -sfn "$storage_conf" "$DEV/logs/odoo.log" 2>/dev/null ||
   ! as_dev ln -sfn "$planted" "$DEV/logs/odoo.stdout" 2>/dev/null; then
  planting="could not plant symlinks (the directory is not its own)"
fi
again=$(queue dev deploy)
wait_status "$again" "succeeded|failed" 90
leaked=$(cp_psql -v line="$s3_line" <<<"SELECT count(*) FROM ops.run_events WHERE run_id = $again AND strpos(message, :'line') > 0")
[ "$leaked" = 0 ] || hole "the storage settings, through a symlink planted as logs/odoo.log, are in the events of run $again ($leaked line(s))"
[ ! -e "$planted" ] || hole "a file was created as $(stat -c %U "$planted") where a symlink planted as logs/odoo.stdout points ($planted: $(head -c 80 "$planted" | tr '\n' ' '))"
if alive "$lingering"; then hole "the process $lingering that branch code left behind survives a redeploy"; fi
say "$planting in its log directory; the redeploy (run $again) $(scalar "SELECT status FROM ops.runs WHERE id = $again"), the process it left behind ended with its server"

gone=$(scalar "SELECT id FROM ops.destroy_environment(1, 'dev', 'end-to-end test')")
wait_status "$gone" succeeded 60
[ "$(scalar "SELECT count(*) FROM pg_roles WHERE rolname = '$db_user'")" = 0 ] || fail "role $db_user survives the destroy"
[ ! -e "$secret" ] || fail "the role's secret survives the destroy"
if id -u "$dev_user" >/dev/null 2>&1; then fail "the operating-system user $dev_user survives the destroy"; fi
if alive "$lingering"; then fail "the process $lingering that $dev_user left behind still runs after the destroy"; fi
# Unless another user got the uid since.
if ! getent passwd "${dev_ids%:*}" >/dev/null; then
  left=$(pgrep -u "${dev_ids%:*}" | tr '\n' ' ' || true)
  [ -z "$left" ] || fail "processes of uid ${dev_ids%:*} still run after the destroy: $left"
fi
say "destroy dropped role $db_user and its secret, and the user $dev_user, with no process left"

[ "${#HOLES[@]}" = 0 ] || fail "branch code reached past its boundary (${#HOLES[@]}): $(printf '\n  - %s' "${HOLES[@]}")"
say "PASS"
