# shellcheck shell=bash disable=SC2034  # sourced: the variables are used by the steps
# Shared helpers of the default step scripts (sourced, not executed).
# The environment contract is documented in worker/README.md.
set -Eeuo pipefail
# A command that fails a step without a message of its own still says where.
trap 'printf "%s: line %s: \"%s\" failed\n" "$(basename "$0")" "$LINENO" "$BASH_COMMAND" >&2' ERR

STEPS_LIB=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# Commands to the worker go to file descriptor 3, the step's command channel
# (worker/README.md), never to stdout: stdout and stderr are log text only.
# Programs that run repository content (git, odoo-bin, tests) are started
# with `3>&-`, so nothing they print or do reaches the channel through an
# inherited descriptor. A command is one line: the helpers fold or refuse
# line breaks so that no value can start a second command.
meta() { printf '::odooops::metadata %s\n' "${1//[$'\n\r']/ }" >&3; }
export_env() {
  [[ $2 != *[$'\n\r']* ]] || die "export_env $1: the value contains a line break"
  printf '::odooops::env %s=%s\n' "$1" "$2" >&3
}
warn() { local m=$*; printf '::odooops::warning %s\n' "${m//[$'\n\r']/ }" >&3; }
# meta_fields KEY=VALUE...: metadata built as JSON by python3's json module,
# never by interpolating values into JSON text. A dotted KEY nests
# (tests.modules=...), KEY:=N stores an integer, KEY?=true|false a boolean.
meta_fields() {
  meta "$(python3 - "$@" <<'PY'
import json, sys
out = {}
for arg in sys.argv[1:]:
    key, _, value = arg.partition("=")
    if key.endswith(":"):
        key, value = key[:-1], int(value)
    elif key.endswith("?"):
        key, value = key[:-1], {"true": True, "false": False}[value]
    node = out
    *parents, last = key.split(".")
    for p in parents:
        node = node.setdefault(p, {})
    node[last] = value
print(json.dumps(out))
PY
)"
}
# artifact NAME KIND path|location VALUE: reports an artifact (a file of the
# workspace to upload, or something stored elsewhere), as JSON.
artifact() {
  local json
  json=$(python3 -c 'import json, sys; print(json.dumps({"name": sys.argv[1], "kind": sys.argv[2], sys.argv[3]: sys.argv[4]}))' "$@")
  printf '::odooops::artifact %s\n' "$json" >&3
}
die() { printf '%s\n' "$*" >&2; exit 1; }

# psql against the environments' database server (PGHOST/PGPORT/PGUSER are
# set by the worker to it, never to the control plane).
q() { psql -X -q -A -t -v ON_ERROR_STOP=1 "$@"; }
# in_env_db CMD...: CMD (psql, q) connecting to an environment's database,
# or a copy of it, as that environment's own role (the worker's login is a
# member of it). The branch's code owns that database -- its Odoo connects
# as that role -- and a backup carries whatever it put there into every
# copy: its triggers and functions then run with its own rights, never with
# the worker's login.
in_env_db() { PGOPTIONS="${PGOPTIONS:-} -c role=$ENV_ROLE" "$@"; }
# assert_neutralized DB: fails while a neutralized production copy could
# still send mail (but to the environment's catcher), run scheduled actions
# or call webhooks.
assert_neutralized() {
  local port=''
  [ ! -s "$MAIL_DIR/catcher.port" ] || port=$(mail_catcher_port)
  PGOPTIONS="${PGOPTIONS:-} -c odooops_neutralize.mail_port=$port" in_env_db psql -X -q -v ON_ERROR_STOP=1 -d "$1" -f "$STEPS_LIB/neutralization_check.sql" 2>&1 \
    | sed 's/^psql:[^ ]* ERROR:  //' >&2
  return "${PIPESTATUS[0]}"
}
db_exists() { [ "$(q -d postgres -c "SELECT 1 FROM pg_database WHERE datname = '$1'")" = 1 ]; }

# Reads a JSON value: json_get '<json>' key.sub.key  (prints "" when absent;
# objects, arrays and booleans as JSON: true, false)
json_get() {
  python3 - "$1" "$2" <<'PY'
import json, sys
v = json.loads(sys.argv[1] or "{}")
for k in sys.argv[2].split("."):
    v = v.get(k) if isinstance(v, dict) else None
print("" if v is None else (json.dumps(v) if isinstance(v, (dict, list, bool)) else v))
PY
}

ENV_DIR=${ODOOOPS_ENV_DIR:?}
PIDFILE=$ENV_DIR/odoo.pid
# Behind the reverse proxy, the new Odoo of a redeploy until it serves
# (deploy/40-start starts it, deploy/50-health switches to it).
NEXT_PIDFILE=$ENV_DIR/odoo.next.pid
LOGDIR=$ENV_DIR/logs
DATA_DIR=$ENV_DIR/data
FILESTORE=$DATA_DIR/filestore/${ODOOOPS_DB_NAME:?}

# The environment's own database role: Odoo connects with it and nothing
# else. It owns only the environment's databases (the live one, its
# restore/snapshot copies, the test workflow's throw-away one), is neither
# superuser nor allowed to create databases or roles, and its password is a
# random secret of this environment in the worker's state directory (0600).
# The role is named after the database (unique on the server), shortened
# with a hash past PostgreSQL's 63 bytes.
env_role_name() {
  local db=$1
  if [ ${#db} -le 58 ]; then printf 'odoo_%s\n' "$db"
  else printf 'odoo_%s_%s\n' "${db:0:45}" "$(printf %s "$db" | md5sum | cut -c1-12)"; fi
}
ENV_ROLE=$(env_role_name "$ODOOOPS_DB_NAME")
ROLE_SECRET=${ODOOOPS_STATE_DIR:?}/secrets/$ENV_ROLE.password
# The libpq password file the Odoo processes get (PGPASSFILE): this role only.
ODOO_PGPASS=$ENV_DIR/odoo.pgpass

# env_role_ensure: creates (or re-asserts the attributes and password of)
# the environment's role through the worker's login, and writes the
# password file Odoo gets.
env_role_ensure() {
  local dir; dir=$(dirname "$ROLE_SECRET")
  (umask 077; mkdir -p "$dir" "$ENV_DIR")
  chmod 700 "$dir"
  if [ ! -s "$ROLE_SECRET" ]; then
    (umask 077; head -c 48 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' >"$ROLE_SECRET.tmp" && mv "$ROLE_SECRET.tmp" "$ROLE_SECRET")
  fi
  chmod 600 "$ROLE_SECRET"
  local pw; pw=$(cat "$ROLE_SECRET")
  # Variables through psql (:'role', :'pw'), never spliced into SQL text;
  # the password through psql's environment (readable by the worker's user
  # only), never its command line (readable by every user of the host).
  ODOOOPS_ROLE_PASSWORD=$pw q -d postgres -v role="$ENV_ROLE" >/dev/null <<'SQL'
\getenv pw ODOOOPS_ROLE_PASSWORD
SELECT format('CREATE ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS', :'role')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'role') \gexec
-- Only a superuser may even clear SUPERUSER, REPLICATION or BYPASSRLS:
-- a role that has one of them is refused below instead.
SELECT format('ALTER ROLE %I LOGIN NOCREATEDB NOCREATEROLE PASSWORD %L', :'role', :'pw') \gexec
-- A worker login that is not superuser needs the role's membership to hand
-- it databases (ALTER DATABASE ... OWNER TO).
SELECT format('GRANT %I TO %I', :'role', current_user)
 WHERE NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) \gexec
SQL
  [ "$(q -d postgres -v role="$ENV_ROLE" <<<"SELECT rolsuper OR rolreplication OR rolbypassrls FROM pg_roles WHERE rolname = :'role'")" = f ] \
    || die "the database role $ENV_ROLE is privileged (superuser, replication or bypassrls): Odoo is not started with it"
  (umask 077; printf '*:*:*:%s:%s\n' "$ENV_ROLE" "$pw" >"$ODOO_PGPASS.tmp" && mv "$ODOO_PGPASS.tmp" "$ODOO_PGPASS")
}

# own_database DB: DB (and every relation and schema in it) becomes the
# environment role's, and no other role may connect to it (CONNECT revoked
# from PUBLIC; the owner keeps it). Run after anything that creates or
# renames a database into place: a copy made by the worker's login (CREATE
# DATABASE ... TEMPLATE, a restore) or a database made before roles existed.
own_database() {
  local db=$1
  q -d postgres -v role="$ENV_ROLE" -v db="$db" >/dev/null <<'SQL'
SELECT format('ALTER DATABASE %I OWNER TO %I', :'db', :'role') \gexec
SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', :'db') \gexec
SQL
  # The login's own session (it owns what it copied), reading the catalogs
  # only, with no search path the database's owner could have set.
  PGOPTIONS="${PGOPTIONS:-} -c search_path=pg_catalog,pg_temp" q -d "$db" -v role="$ENV_ROLE" >/dev/null <<'SQL'
SELECT format('ALTER SCHEMA %I OWNER TO %I', n.nspname, :'role')
  FROM pg_namespace n
 WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'public')
   AND n.nspname NOT LIKE 'pg\_%' AND n.nspowner <> (SELECT oid FROM pg_roles WHERE rolname = :'role') \gexec
-- Sequences owned by a column follow their table; indexes too.
SELECT format('ALTER TABLE %s OWNER TO %I', c.oid::regclass, :'role')
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_%'
   AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
   AND c.relowner <> (SELECT oid FROM pg_roles WHERE rolname = :'role')
   AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                      AND d.objid = c.oid AND d.deptype IN ('a', 'i'))
   AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                      AND d.objid = c.oid AND d.deptype = 'e') \gexec
SQL
}

# create_env_database DB [TEMPLATE]: a new database owned by the role.
create_env_database() {
  q -d postgres -v role="$ENV_ROLE" -v db="$1" -v tpl="${2:-}" >/dev/null <<'SQL'
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'role')
       || CASE WHEN :'tpl' = '' THEN '' ELSE format(' TEMPLATE %I', :'tpl') END \gexec
SQL
  own_database "$1"
}

# env_db_prepare: the role exists, and the environment's database exists
# and is the role's, before any Odoo process runs (the role cannot create
# databases).
env_db_prepare() {
  env_role_ensure
  if db_exists "$ODOOOPS_DB_NAME"; then own_database "$ODOOOPS_DB_NAME"; else create_env_database "$ODOOOPS_DB_NAME"; fi
}

# env_role_drop: the environment is destroyed: its role goes too (after its
# databases; whatever it still owns elsewhere is dropped with it).
env_role_drop() {
  q -d postgres -v role="$ENV_ROLE" >/dev/null <<'SQL'
SELECT format('DROP OWNED BY %I', :'role') FROM pg_roles WHERE rolname = :'role' \gexec
SELECT format('DROP ROLE %I', :'role') FROM pg_roles WHERE rolname = :'role' \gexec
SQL
  rm -f "$ROLE_SECRET"
}

# odoo_env_args: the arguments of env(1) that start odoo-bin with a clean
# environment: nothing of the worker's or the step's (no worker login, no
# storage settings, no run context), only PATH, the locale and the
# environment role's credentials (PGUSER and its password file). One per
# line.
odoo_env_args() {
  printf '%s\n' -i "PATH=$PATH" "LANG=${LANG:-C.UTF-8}" "HOME=$DATA_DIR" \
    "PGHOST=${ODOOOPS_DB_HOST:-}" "PGPORT=${ODOOOPS_DB_PORT:-5432}" \
    "PGUSER=$ENV_ROLE" "PGPASSFILE=$ODOO_PGPASS"
  [ -n "${TZ:-}" ] && printf '%s\n' "TZ=$TZ"
  [ -n "${SSL_CERT_FILE:-}" ] && printf '%s\n' "SSL_CERT_FILE=$SSL_CERT_FILE"
  return 0
}

# The operating-system user that runs the environment's Odoo, and with it
# the branch's code (ODOOOPS_ODOO_USER, the worker's --odoo-user):
# per-environment -- a system user of its own per environment, named after
# the worker's state directory and the environment (so two workers on one
# host never share one), created on first use; a user name -- that user; worker
# -- the worker's own user. Branch code then cannot read the worker's
# secrets (state/secrets is 0700), its environment (/proc/<pid>/environ),
# the git mirrors, nor another environment's files, database password or
# filestore.
case ${ODOOOPS_ODOO_USER:-worker} in
  worker) ODOO_OS_USER= ;;
  per-environment) ODOO_OS_USER=odooops-$(printf '%s' "$ENV_DIR" | sha256sum | cut -c1-12) ;;
  *) ODOO_OS_USER=$ODOOOPS_ODOO_USER ;;
esac

# odoo_os_user_prepare: the user exists, and it can read the environment's
# directory (group) and owns its data, logs and database password file;
# nothing else of the worker's state is open to it.
odoo_os_user_prepare() {
  [ -n "$ODOO_OS_USER" ] || return 0
  if ! id -u "$ODOO_OS_USER" >/dev/null 2>&1; then
    [ "${ODOOOPS_ODOO_USER:-}" = per-environment ] || die "the operating-system user $ODOO_OS_USER (--odoo-user) does not exist"
    (umask 077; mkdir -p "$ODOOOPS_STATE_DIR/secrets")
    (
      flock 8
      id -u "$ODOO_OS_USER" >/dev/null 2>&1 ||
        useradd --system --user-group --no-create-home --home-dir /nonexistent \
          --shell /usr/sbin/nologin --comment "odooops ${ODOOOPS_PROJECT:-}/${ODOOOPS_ENVIRONMENT:-}" "$ODOO_OS_USER"
    ) 8>"$ODOOOPS_STATE_DIR/secrets/useradd.lock" || die "cannot create the operating-system user $ODOO_OS_USER"
    echo "created the operating-system user $ODOO_OS_USER for ${ODOOOPS_ENVIRONMENT:-the environment}"
  fi
  local state=$ODOOOPS_STATE_DIR
  # Traversable, not listable: the user reaches its own environment only.
  chmod 711 "$state" "$state/envs" "$(dirname "$ENV_DIR")" 2>/dev/null || true
  chmod 700 "$state/secrets" "$state/git" 2>/dev/null || true
  mkdir -p "$LOGDIR" "$DATA_DIR"
  chown "root:$ODOO_OS_USER" "$ENV_DIR" && chmod 750 "$ENV_DIR"
  find "$DATA_DIR" \! -user "$ODOO_OS_USER" -exec chown -h "$ODOO_OS_USER:$ODOO_OS_USER" {} +
  chmod 700 "$DATA_DIR"
  # The logs are read by the worker (as root): their directory is not the
  # user's, so a log file cannot be swapped for a link to another file; the
  # user may only write into its own two log files.
  chown root:root "$LOGDIR" && chmod 711 "$LOGDIR"
  local f
  for f in "$LOGDIR/odoo.log" "$LOGDIR/odoo.stdout"; do
    if [ -L "$f" ] || [ ! -f "$f" ]; then rm -rf "$f"; : >"$f"; fi
    chown "$ODOO_OS_USER:$ODOO_OS_USER" "$f" && chmod 600 "$f"
  done
  [ -f "$ODOO_PGPASS" ] && chown "$ODOO_OS_USER:$ODOO_OS_USER" "$ODOO_PGPASS"
  # (The password file exists once the role does: not yet while a first
  # deploy builds its Python environment, lib/venv.sh.)
  setpriv --reuid="$ODOO_OS_USER" --regid="$ODOO_OS_USER" --clear-groups -- test -x "$DATA_DIR" -a \( ! -e "$ODOO_PGPASS" -o -r "$ODOO_PGPASS" \) ||
    die "the operating-system user $ODOO_OS_USER cannot reach $ENV_DIR: every directory above the worker's state directory must be traversable (o+x)"
}

# odoo_os_user_drop: the environment is destroyed; its own user goes too.
odoo_os_user_drop() {
  [ "${ODOOOPS_ODOO_USER:-}" = per-environment ] && id -u "$ODOO_OS_USER" >/dev/null 2>&1 || return 0
  pkill -KILL -u "$ODOO_OS_USER" 2>/dev/null || true
  userdel "$ODOO_OS_USER" && echo "removed the operating-system user $ODOO_OS_USER"
}

# env_remove: the environment is destroyed (its Odoo already stopped): its
# database and role, its directory (releases, filestore, logs), its
# operating-system user, its mail catcher and its HTTP port go.
env_remove() {
  if db_exists "$ODOOOPS_DB_NAME"; then
    q -d postgres -c "DROP DATABASE \"$ODOOOPS_DB_NAME\" WITH (FORCE)"
    echo "dropped database $ODOOOPS_DB_NAME"
  fi
  # shellcheck source=refresh_seed.sh
  source "$STEPS_LIB/refresh_seed.sh"
  seed_drop_all
  env_role_drop
  echo "dropped the environment's database role $ENV_ROLE"
  rm -rf "$ENV_DIR"
  mail_catcher_remove
  echo "removed $ENV_DIR"
  odoo_os_user_drop
  proxy_unroute
  http_port_release
}

# http_port_release: the environment's HTTP port reservation (the worker's
# <state>/ports/<port>, holding the environment's directory) is removed, so
# the port goes to the next environment.
http_port_release() {
  local f
  for f in "$ODOOOPS_STATE_DIR"/ports/*; do
    case $([ -f "$f" ] && head -n 1 "$f") in
      "$ENV_DIR" | "$ENV_DIR#websocket" | "$ENV_DIR#next" | "$ENV_DIR#websocket-next" | \
        "$ENV_DIR#restore-test" | "$ENV_DIR#restore-test-websocket")
        rm -f "$f"
        echo "released port $(basename "$f")" ;;
    esac
  done
  return 0
}

odoo_bin() {
  local bin=${ODOO_BIN:-odoo-bin}
  if [[ $bin != /* ]]; then bin=$(command -v "$bin" || true); fi
  if [ -n "${ODOOOPS_ODOO_PYTHON:-}${ODOO_VENV:-}" ]; then
    [[ -n $bin && -r $bin ]] || die "odoo-bin not found: ${ODOO_BIN:-odoo-bin} (the worker's --odoo-src or --odoo-bin, or the runtime profile's odoo_bin)"
  else
    [[ -n $bin && -x $bin ]] || die "odoo-bin not found or not executable: ${ODOO_BIN:-odoo-bin} (the worker's --odoo-src or --odoo-bin, or the runtime profile's odoo_bin)"
  fi
  printf '%s\n' "$bin"
}

# odoo_command: sets ODOO_CMD to the command that runs odoo-bin for this
# environment: its database credentials only, as its operating-system user,
# through the python of ODOO_VENV (the release's Python environment,
# lib/venv.sh) when set, else --odoo-python when set. Callers append
# odoo-bin's arguments, and start it with `3>&-` (it runs the branch's code).
odoo_command() {
  local bin; bin=$(odoo_bin)
  local cred; mapfile -t cred < <(odoo_env_args)
  odoo_os_user_prepare
  ODOO_CMD=(env "${cred[@]}")
  [ -n "$ODOO_OS_USER" ] && ODOO_CMD+=(setpriv --reuid="$ODOO_OS_USER" --regid="$ODOO_OS_USER" --clear-groups --)
  if [ -n "${ODOO_VENV:-}" ]; then ODOO_CMD+=("$ODOO_VENV/bin/python")
  elif [ -n "${ODOOOPS_ODOO_PYTHON:-}" ]; then ODOO_CMD+=("$ODOOOPS_ODOO_PYTHON"); fi
  ODOO_CMD+=("$bin")
}
# odoo_run ARGS...: runs odoo-bin ARGS that way.
odoo_run() {
  odoo_command
  production_never_tested "$@"
  "${ODOO_CMD[@]}" "$@" 3>&- 9>&-
}

# production_never_tested ARGS...: production's own database is its live
# data: an odoo-bin run with --test-enable on it is refused (tests of a
# production branch run on a throw-away database: test/30-odoo-tests).
production_never_tested() {
  [ "${ODOOOPS_STAGE:-}" = production ] || return 0
  local a db="" testing=""
  for a in "$@"; do
    case $a in --test-enable) testing=1 ;; esac
  done
  [ -n "$testing" ] || return 0
  while [ $# -gt 0 ]; do
    case $1 in --database | -d) db=${2:-}; shift ;; --database=*) db=${1#*=} ;; esac
    shift
  done
  if [ -z "$db" ] || [ "$db" = "$ODOOOPS_DB_NAME" ]; then
    die "refused: tests never run on production's database $ODOOOPS_DB_NAME"
  fi
}

# addons_path SRC_DIR ADDONS_JSON: Odoo's own addons directories (the
# worker's current setting, never a value cached with a release) and the
# repository's addons directories that the addons step found (ADDONS_JSON,
# relative to SRC_DIR).
addons_path() {
  python3 - "$1" "$2" "${ODOOOPS_ODOO_ADDONS:-}" <<'PY'
import json, os, sys
src, info, core = sys.argv[1], json.load(open(sys.argv[2])), sys.argv[3]
paths = [p for p in core.split(",") if p]
paths += [os.path.normpath(os.path.join(src, p)) for p in info["addons_paths"]]
print(",".join(paths))
PY
}
# release_addons_path RELEASE_DIR: the addons path of a deployed release.
release_addons_path() { addons_path "$1" "$1/.odooops-addons.json"; }

odoo_running() { [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }

# odoo_stop_pid PID: stops one Odoo process (TERM, then KILL after 15 s).
odoo_stop_pid() {
  local pid=$1
  kill -0 "$pid" 2>/dev/null || return 0
  echo "stopping the running Odoo process $pid of ${ODOOOPS_ENVIRONMENT}"
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    warn "Odoo process $pid did not stop within 15 s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
}

# Stops the environment's Odoo processes (the serving one and a new one a
# redeploy started beside it), and whatever else the branch's code started
# as the environment's own user.
odoo_stop() {
  local f
  for f in "$PIDFILE" "$NEXT_PIDFILE"; do
    [ -f "$f" ] && odoo_stop_pid "$(cat "$f")"
    rm -f "$f" "${f%.pid}.port"
  done
  odoo_os_user_sweep
  return 0
}

# Test runs of the environment run as its user too, next to its server, and
# hold TESTS_LOCK shared while they do: the sweep of the user's leftover
# processes waits for a moment when none runs rather than kill their Odoo.
TESTS_LOCK=$ENV_DIR/.tests.lock
odoo_os_user_sweep() {
  [ "${ODOOOPS_ODOO_USER:-}" = per-environment ] && id -u "$ODOO_OS_USER" >/dev/null 2>&1 || return 0
  (
    if flock -n -x 9; then
      pkill -KILL -u "$ODOO_OS_USER" 2>/dev/null || true
    else
      echo "a test run of ${ODOOOPS_ENVIRONMENT:-the environment} is running as $ODOO_OS_USER: its processes are left to it"
    fi
  ) 9>>"$TESTS_LOCK"
}

# odoo-bin flags shared by init/update and the server.
odoo_flags() {
  local addons_path=$1
  printf '%s\n' --database "$ODOOOPS_DB_NAME" --addons-path "$addons_path" --data-dir "$DATA_DIR" --logfile "$LOGDIR/odoo.log"
  [ -n "${ODOOOPS_DB_HOST:-}" ] && printf '%s\n' --db_host "$ODOOOPS_DB_HOST"
  [ -n "${ODOOOPS_DB_PORT:-}" ] && printf '%s\n' --db_port "$ODOOOPS_DB_PORT"
  printf '%s\n' --db_user "$ENV_ROLE"
  return 0
}

# Development and preview environments get Odoo's demo data (as Odoo.sh
# development builds do); staging and production never do.
demo_wanted() {
  case $ODOOOPS_STAGE in
    development | preview) echo true ;;
    *) echo false ;;
  esac
}
# The demo-data flag of a module install.
demo_flags() {
  [ "$(demo_wanted)" = true ] || printf '%s\n' --without-demo all
}

# odoo_start [HTTP_PORT WEBSOCKET_PORT PIDFILE]: starts the release in
# $ENV_DIR/current, detached from the step (its own session), and records
# its pid in PIDFILE and its ports beside it (odoo.port). By default on the
# environment's ports as the serving Odoo, which the reverse proxy then
# routes to; a redeploy behind the proxy starts the new Odoo on the other
# ports, with NEXT_PIDFILE, and routes to it once healthy. Outside
# production its outgoing mail goes to the environment's mail catcher first.
odoo_start() {
  local port=${1:-$ODOOOPS_HTTP_PORT} ws=${2:-${ODOOOPS_WEBSOCKET_PORT:-}} pidfile=${3:-$PIDFILE}
  local release; release=$(readlink -e "$ENV_DIR/current") || die "no release deployed in $ENV_DIR/current"
  local addons; addons=$(release_addons_path "$release")
  local ODOO_VENV; ODOO_VENV=$(release_venv "$release")
  mkdir -p "$LOGDIR" "$DATA_DIR"
  mapfile -t flags < <(odoo_flags "$addons")
  env_db_prepare
  # Outside production every start sends the database's mail to the
  # environment's catcher: a new database, a restored copy, one whose
  # catcher moved to another port since.
  [ "$ODOOOPS_STAGE" = production ] || mail_catcher_point "$ODOOOPS_DB_NAME"
  odoo_command
  ODOOOPS_WEBSOCKET_PORT=$ws odoo_config_write
  # Where this start's part of the log begins (the health check's failure line).
  stat -c %s "$LOGDIR/odoo.log" >"$ENV_DIR/odoo.log-offset" 2>/dev/null || echo 0 >"$ENV_DIR/odoo.log-offset"
  echo "starting ${ODOO_CMD[*]: -1} on port $port (database $ODOOOPS_DB_NAME, release $(basename "$release")${ODOO_OS_USER:+, user $ODOO_OS_USER}${ODOO_VENV:+, Python environment $(basename "$ODOO_VENV")})"
  setsid "${ODOO_CMD[@]}" -c "$ODOO_CONF" "${flags[@]}" --http-port "$port" \
    --http-interface "${ODOOOPS_HTTP_INTERFACE:-127.0.0.1}" >>"$LOGDIR/odoo.stdout" 2>&1 </dev/null 3>&- &
  local pid=$!
  # The worker ends a step's process group when the step exits: wait until
  # the server runs in its own session before returning.
  for _ in $(seq 1 100); do
    [ "$(ps -o sid= -p "$pid" 2>/dev/null | tr -d ' ')" = "$pid" ] && break
    sleep 0.05
  done
  echo "$pid" >"$pidfile"
  echo "$port $ws" >"${pidfile%.pid}.port"
  [ "$pidfile" != "$PIDFILE" ] || proxy_route "$port" "$ws"
}

# odoo_failure LOG [OFFSET]: the line that says why Odoo failed, from LOG
# (from byte OFFSET on: this invocation's part): the exception of the last
# traceback with the file and line it points at (a Python syntax error, an
# XML file that does not parse), else the first ERROR or CRITICAL message.
odoo_failure() {
  python3 - "$1" "${2:-0}" "${ENV_DIR:-}" <<'PY'
import re, sys
path, offset, env_dir = sys.argv[1], int(sys.argv[2]), sys.argv[3]
try:
    with open(path, errors="replace") as fh:
        fh.seek(offset)
        lines = fh.read().splitlines()
except OSError:
    sys.exit(0)
def short(text):
    text = text.replace(env_dir + "/", "") if env_dir else text
    return re.sub(r"releases/[0-9a-f]{40}/", "", text)[:500]
exc, where, in_tb = None, None, False
for line in lines:
    if line.startswith("Traceback (most recent call last):"):
        in_tb, where = True, None
        continue
    if in_tb:
        m = re.match(r'\s*File "([^"]+)", line (\d+)', line)
        if m:
            where = "%s:%s" % (m.group(1), m.group(2))
        elif line and not line[0].isspace():
            exc, in_tb = (line, where), False
if exc:
    text, where = exc
    print(short(text + (" (at %s)" % where if where and where.split(":")[0] not in text else "")))
    sys.exit(0)
for line in lines:
    m = re.match(r"\S+ \S+ \d+ (ERROR|CRITICAL) \S+ (\S+): (.*)", line)
    if m:
        print(short(m.group(3)))
        break
PY
}

# health_probe URL: one check that the Odoo answering at URL is this
# environment's and serves: GET /web/health?db_server_status=1 passes; it
# can open the environment's database (JSON-RPC db.db_exist, which needs
# no login and works with the database manager off: only this
# environment's Odoo connects as the environment's own role, the one
# role that may open that database); and that database's registry loads
# (GET /web/login answers the login page, not a redirect to the database
# selector; the server's dbfilter admits that database only). Prints what
# it saw. Returns 0 when all hold, 2 when the Odoo cannot open the
# database (another environment's Odoo on this port: trying again would
# not help), 1 otherwise.
health_probe() {
  local url=$1 body dbs code
  body=$(curl -fsS --max-time 5 "$url/web/health?db_server_status=1" 2>/dev/null) || body=""
  [[ $body == *'"pass"'* ]] || { echo "GET /web/health: ${body:-no answer}"; return 1; }
  dbs=$(curl -fsS --max-time 5 -H 'Content-Type: application/json' \
          -d "{\"jsonrpc\": \"2.0\", \"method\": \"call\", \"params\": {\"service\": \"db\", \"method\": \"db_exist\", \"args\": [\"$ODOOOPS_DB_NAME\"]}}" \
          "$url/jsonrpc" 2>/dev/null) || { echo "POST /jsonrpc db.db_exist: no answer"; return 1; }
  if [ "$(json_get "$dbs" result)" != true ]; then
    echo "the Odoo at $url cannot open $ODOOOPS_DB_NAME of ${ODOOOPS_ENVIRONMENT:-this environment}: another environment's Odoo holds this port"
    return 2
  fi
  code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 30 "$url/web/login" 2>/dev/null) || true
  [ "$code" = 200 ] || { echo "GET /web/login: HTTP ${code:-no answer} (the registry of $ODOOOPS_DB_NAME did not load)"; return 1; }
  echo "$body, serving $ODOOOPS_DB_NAME"
}

# health_check URL [TRIES]: health_probe until it passes (default 60 tries,
# 0.5 s apart); fails at once when another database answers.
health_check() {
  local url=$1 tries=${2:-${ODOOOPS_HEALTH_TRIES:-60}} seen="" rc
  for i in $(seq 1 "$tries"); do
    rc=0; seen=$(health_probe "$url") || rc=$?
    if [ "$rc" = 0 ]; then
      echo "health check passed after $i attempt(s): $seen"
      return 0
    fi
    if [ "$rc" = 2 ]; then
      echo "health check failed: $seen" >&2
      return 1
    fi
    if [ -n "${HEALTH_PID:-}" ] && ! kill -0 "$HEALTH_PID" 2>/dev/null; then
      tail -n 20 "$LOGDIR/odoo.log" "$LOGDIR/odoo.stdout" >&2 2>/dev/null || true
      echo "the Odoo process exited during the health check: $(odoo_failure "$LOGDIR/odoo.log" "$(cat "$ENV_DIR/odoo.log-offset" 2>/dev/null || echo 0)")" >&2
      return 1
    fi
    sleep 0.5
  done
  tail -n 20 "$LOGDIR/odoo.log" >&2 2>/dev/null || true
  echo "the health check of $url did not pass after $tries attempts (last: ${seen:-none}); $(odoo_failure "$LOGDIR/odoo.log" "$(cat "$ENV_DIR/odoo.log-offset" 2>/dev/null || echo 0)")" >&2
  return 1
}

# modules_decide [DB]: which modules a deploy of the checked-out revision
# ($ODOOOPS_WORKSPACE/addons.json) installs or updates on DB (default: the
# environment's database), as JSON {"install": [...], "update": [...],
# "changed_without_bump": [...], "removed": [...], "series": "17.0",
# "database_exists": bool}; decided as Odoo and Odoo.sh decide it: addons
# not installed yet are installed (base on a new database); an installed
# addon is updated when its manifest version, read the way Odoo reads it
# (adapt_version: "1.0" is "<series>.1.0", no version is "1.0"), differs
# from what the database last saw (ir_module_module.latest_version), or
# when its files changed without a version bump (their checksum differs
# from the one recorded after the last install or update,
# record_addon_checksums). "removed" lists the repository's installed
# addons the revision no longer has (reported only: Odoo uninstalls
# nothing by itself). The one decision of every deploy (modules_plan) and of
# a deploy plan (plan/30-plan); DB is only read, in read-only transactions.
modules_decide() {
  local db=${1:-$ODOOOPS_DB_NAME} installed="{}" recorded="{}" exists=false
  if db_exists "$db"; then
    exists=true
    if [ "$(PGOPTIONS="${PGOPTIONS:-} -c default_transaction_read_only=on" in_env_db q -d "$db" -c "SELECT to_regclass('ir_module_module') IS NOT NULL")" = t ]; then
      installed=$(PGOPTIONS="${PGOPTIONS:-} -c default_transaction_read_only=on" in_env_db q -d "$db" -c "SELECT coalesce(json_object_agg(name, coalesce(latest_version, '')), '{}') FROM ir_module_module WHERE state = 'installed'")
      recorded=$(PGOPTIONS="${PGOPTIONS:-} -c default_transaction_read_only=on" in_env_db q -d "$db" -c "SELECT coalesce((SELECT value FROM ir_config_parameter WHERE key = 'odooops.addon_checksums'), '{}')")
    fi
  fi
  python3 - "$ODOOOPS_WORKSPACE/addons.json" "$installed" "$recorded" "$exists" <<'PY'
import json, sys
all_addons = json.load(open(sys.argv[1]))["addons"]
addons = [a for a in all_addons if a.get("installable", True)]
installed, recorded = json.loads(sys.argv[2]), json.loads(sys.argv[3] or "{}")
# The Odoo series of this database: base's version is "<major>.<minor>.x.y".
series = ".".join(installed.get("base", "").split(".")[:2])

def adapt(version):
    version = version or "1.0"
    if not series or version.startswith(series + ".") and version != series:
        return version
    return "%s.%s" % (series, version)

init = ["base"] if "base" not in installed else []
init += [a["name"] for a in addons if a["name"] not in installed]
update, silent = [], []
for a in addons:
    name = a["name"]
    if name not in installed:
        continue
    if installed[name] != adapt(a["version"]):
        update.append(name)
    elif name in recorded and recorded[name] != a.get("checksum"):
        update.append(name)
        silent.append(name)
names = {a["name"] for a in all_addons}
removed = sorted(n for n in recorded if n in installed and n not in names)
print(json.dumps({"install": init, "update": update, "changed_without_bump": silent,
                  "removed": removed, "series": series, "database_exists": sys.argv[4] == "true"}))
PY
}

# modules_plan: the deploy's decision (modules_decide on the environment's
# database) as "INIT UPDATE" (comma lists, "-" for none); changed-without-bump
# addons are also listed in $ODOOOPS_WORKSPACE/changed-without-bump.
modules_plan() {
  local decision; decision=$(modules_decide "$ODOOOPS_DB_NAME")
  python3 - "$decision" "$ODOOOPS_WORKSPACE/changed-without-bump" <<'PY'
import json, sys
d = json.loads(sys.argv[1])
open(sys.argv[2], "w").write(",".join(d["changed_without_bump"]))
print(",".join(d["install"]) or "-", ",".join(d["update"]) or "-")
PY
}

# record_addon_checksums: after a successful install or update, the
# database remembers the checksum of each repository addon it has
# installed (ir_config_parameter odooops.addon_checksums), so a copy of it
# (a backup, a staging refresh) knows which files it runs.
record_addon_checksums() {
  local sums
  sums=$(python3 -c 'import json,sys; print(json.dumps({a["name"]: a.get("checksum") for a in json.load(open(sys.argv[1]))["addons"]}))' "$ODOOOPS_WORKSPACE/addons.json")
  in_env_db q -d "$ODOOOPS_DB_NAME" -v sums="$sums" >/dev/null <<'SQL'
INSERT INTO ir_config_parameter (key, value)
SELECT 'odooops.addon_checksums', (SELECT coalesce(jsonb_object_agg(key, value), '{}')::text
         FROM jsonb_each(:'sums'::jsonb)
        WHERE key IN (SELECT name FROM ir_module_module WHERE state = 'installed'))
ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value;
SQL
}

# modules_meta INIT UPDATE [CHANGED_WITHOUT_BUMP]: the module plan as the
# run's metadata (comma lists, "-" for none).
modules_meta() {
  python3 - "$1" "$2" "${3:-}" >&3 <<'PY'
import json, sys
names = lambda v: [m for m in v.split(",") if m and m != "-"]
modules = {"installed": names(sys.argv[1]), "updated": names(sys.argv[2])}
if sys.argv[3]:
    modules["changed_without_bump"] = names(sys.argv[3])
print("::odooops::metadata " + json.dumps({"modules": modules}))
PY
}

# The configuration file of the Odoo server.
# shellcheck source=odoo_config.sh
source "$STEPS_LIB/odoo_config.sh"
# The reverse proxy.
# shellcheck source=proxy.sh
source "$STEPS_LIB/proxy.sh"
# The environment's Python environment (requirements.txt).
# shellcheck source=venv.sh
source "$STEPS_LIB/venv.sh"
# The mail catcher of an environment that is not production.
# shellcheck source=mail_catcher.sh
source "$STEPS_LIB/mail_catcher.sh"
