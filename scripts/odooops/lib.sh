# shellcheck shell=bash
# Shared by the odooops command-line tools: exit codes, the options every
# tool takes (--version, --help; --dsn is the tools' own), connection, and
# SQL calls with safe parameters whose errors become exit codes.
#
# Connection: --dsn URI, else $ODOOOPS_DSN, else the PG* variables, else the
# private demo cluster in .odooops/ when it exists. The database defaults to
# "odooops".

# Exit codes, from sysexits.h, the same for every tool (docs/cli.md).
# Scripts rely on them: change a number only with a new release's notes.
readonly EX_OK=0 EX_RUN_FAILED=1 EX_USAGE=64 EX_DATAERR=65 EX_NOINPUT=66 \
  EX_UNAVAILABLE=69 EX_SOFTWARE=70 EX_TEMPFAIL=75 EX_NOPERM=77

# The table every --help ends with.
exit_codes_help() {
  echo "Exit codes (the same for every odooops tool):"
  printf '  %-3s %s\n' \
    "$EX_OK" "ok" \
    "$EX_RUN_FAILED" "the run failed or was cancelled (logs --follow, env_wait_ready)" \
    "$EX_USAGE" "usage: unknown option, missing or malformed argument" \
    "$EX_DATAERR" "refused: invalid input or not allowed now (OD001, OD004-OD011, 22xxx, 23xxx)" \
    "$EX_NOINPUT" "not found: no such project, environment, run, backup or approval (OD002)" \
    "$EX_UNAVAILABLE" "cannot connect, or the database lacks odooops (08xxx, 3F000, 42P01, 42883)" \
    "$EX_SOFTWARE" "any other database error" \
    "$EX_TEMPFAIL" "timed out, or try again (--timeout; 57014, 55P03, 40001, 40P01)" \
    "$EX_NOPERM" "permission denied (42501)"
}

# The SQLSTATE of a failed call -> the exit code.
exit_code_for() {
  case "$1" in
    OD002) echo "$EX_NOINPUT" ;;
    42501) echo "$EX_NOPERM" ;;
    OD001 | OD004 | OD005 | OD006 | OD007 | OD008 | OD009 | OD010 | OD011 | 22??? | 23???) echo "$EX_DATAERR" ;;
    # The server answers, but not with odooops (or not this version of it):
    # its schema, tables or functions are missing.
    08??? | 3F000 | 42P01 | 42883) echo "$EX_UNAVAILABLE" ;;
    57014 | 55P03 | 40001 | 40P01) echo "$EX_TEMPFAIL" ;;
    *) echo "$EX_SOFTWARE" ;;
  esac
}

ODOOOPS_DSN=${ODOOOPS_DSN:-}
# The tools' directory: installed (libexec/odooops) or in the source tree.
ODOOOPS_TOOLS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [ -z "$ODOOOPS_DSN" ] && [ -z "${PGHOST:-}" ] && [ -f "$ODOOOPS_TOOLS_DIR/../../.odooops/pg/env" ]; then
  # shellcheck source=/dev/null # written by the demo when it starts its cluster
  source "$ODOOOPS_TOOLS_DIR/../../.odooops/pg/env"
  export PGDATABASE=odooops
fi
export PGDATABASE=${PGDATABASE:-odooops}

# die MESSAGE [CODE]: the message on stderr, then exit (default: usage).
die() { echo "$(basename "$0"): $1" >&2; exit "${2:-$EX_USAGE}"; }

# print_version NAME: "NAME RELEASE" and exit. The release is the
# extension's default_version in odooops.control, installed beside the tools
# or in the source tree's control/.
print_version() {
  local control=$ODOOOPS_TOOLS_DIR/odooops.control release
  [ -f "$control" ] || control=$ODOOOPS_TOOLS_DIR/../../control/odooops.control
  release=$(sed -n "s/^default_version = '\(.*\)'$/\1/p" "$control" 2>/dev/null || true)
  [ -n "$release" ] || die "no release in $control" "$EX_SOFTWARE"
  echo "$1 $release"
  exit "$EX_OK"
}

# option_value OPTION [VALUE...]: prints the value that follows an option;
# a missing one is a usage error. Use as x=$(option_value "$@"); shift 2.
option_value() {
  [ $# -ge 2 ] || die "$1 needs a value"
  printf '%s' "$2"
}

# other_option OPTION: the last branch of every tool's option loop, after
# its own options and --dsn: --version and --help print and exit, anything
# else is a usage error.
other_option() {
  case "$1" in
    --version) print_version "$(basename "$0")" ;;
    -h | --help) usage; exit "$EX_OK" ;;
    *) usage >&2; die "unknown option $1" ;;
  esac
}

# sql QUERY [-v name=value ...]: runs one query (values are bound with
# psql's :'name' quoting, never spliced), prints unaligned tuples separated
# by '|'. On error prints the server's message and exits with its code.
sql() {
  local query=$1 out err state status=0
  shift
  err=$(mktemp)
  out=$(psql ${ODOOOPS_DSN:+"$ODOOOPS_DSN"} -X -qAt -v ON_ERROR_STOP=0 -v SHOW_CONTEXT=never "$@" 2>"$err" <<SQL
$query;
\if :ERROR
\echo __odooops_error :LAST_ERROR_SQLSTATE
\endif
SQL
  ) || status=$?
  if grep -q '^__odooops_error' <<<"$out"; then
    state=$(sed -n 's/^__odooops_error //p' <<<"$out")
    sed 's/^psql:<stdin>:[0-9]*: //' "$err" >&2
    rm -f "$err"
    exit "$(exit_code_for "$state")"
  fi
  if [ "$status" -ne 0 ]; then
    # psql exits 2 when the connection failed or was lost, 1 on a fatal
    # error of its own.
    cat "$err" >&2
    rm -f "$err"
    [ "$status" -eq 2 ] && exit "$EX_UNAVAILABLE"
    exit "$EX_SOFTWARE"
  fi
  rm -f "$err"
  printf '%s' "$out"
}

# sql_json ROWS ORDER [-v name=value ...]: prints the rows of the query ROWS
# as one JSON array of objects (its column names as keys, [] when there are
# none) in the order of ORDER (columns of ROWS, e.g. "id DESC"; a constant
# of the tool, never input), built by the server.
sql_json() {
  local rows=$1 order=$2
  shift 2
  sql "SELECT coalesce(json_agg(r ORDER BY $order), '[]') FROM ($rows) r" "$@"
  echo
}

# Sessions in an environment's runtime (shell.sh, psql.sh, odoo_logs.sh).
# The caller's connection opens the session (ops.open_session: the caller's
# permission on the environment, a one-time token); the worker of the
# environment's host runs it (`odooops-worker session`), with its own
# identity and configuration, which the caller must be able to read: the
# tools run on that host, as a user allowed to run the worker.
#
# Which worker: --worker NAME (default main) is the installed instance
# odooops-worker@NAME: /etc/odooops/worker-NAME.conf, the unit's worker id
# (<hostname>-NAME), state directory (/var/lib/odooops-worker/NAME) and
# libpq files (/etc/odooops/pg_service.conf, pgpass); --worker-config FILE
# (or $ODOOOPS_WORKER_CONFIG) is a configuration file that names
# everything itself (dsn, worker-id, state-dir, ...).
SESSION_WORKER=main SESSION_WORKER_CONFIG=${ODOOOPS_WORKER_CONFIG:-}

# session_worker_option OPTION VALUE: takes --worker / --worker-config;
# status 1 for any other option.
session_worker_option() {
  case "$1" in
    --worker)
      [[ "$2" =~ ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$ ]] || die "--worker needs an instance name"
      SESSION_WORKER=$2 ;;
    --worker-config) SESSION_WORKER_CONFIG=$2 ;;
    *) return 1 ;;
  esac
}

# The worker binary: $ODOOOPS_WORKER_BIN, installed beside the tools
# (bin/ next to libexec/odooops), the source tree's build/, or on PATH.
worker_bin() {
  local b
  for b in "${ODOOOPS_WORKER_BIN:-}" "$ODOOOPS_TOOLS_DIR/../../bin/odooops-worker" \
           "$ODOOOPS_TOOLS_DIR/../../build/odooops-worker" "$(command -v odooops-worker || true)"; do
    if [ -n "$b" ] && [ -x "$b" ]; then printf '%s\n' "$b"; return 0; fi
  done
  return 1
}

# run_session KIND PROJECT ENV [ARGS...]: opens the session and runs it;
# exits with the session's status (the worker's refusals: sysexits codes).
run_session() {
  local kind=$1 project=$2 env=$3 opened token worker
  shift 3
  local -a how
  if [ -n "$SESSION_WORKER_CONFIG" ]; then
    how=(--config "$SESSION_WORKER_CONFIG")
  else
    SESSION_WORKER_CONFIG=/etc/odooops/worker-$SESSION_WORKER.conf
    how=(--config "$SESSION_WORKER_CONFIG" --worker-id "$(uname -n)-$SESSION_WORKER"
         --state-dir "/var/lib/odooops-worker/$SESSION_WORKER")
  fi
  [ -r "$SESSION_WORKER_CONFIG" ] ||
    die "cannot read the worker's configuration $SESSION_WORKER_CONFIG: run this on the environment's host as a user allowed to run its worker (--worker NAME, --worker-config FILE)" "$EX_NOPERM"
  worker=$(worker_bin) || die "no odooops-worker found (ODOOOPS_WORKER_BIN)" "$EX_UNAVAILABLE"
  opened=$(sql "SELECT session_id || ' ' || token FROM ops.open_session(:'project', :'env', :'kind')" \
    -v project="$project" -v env="$env" -v kind="$kind")
  token=${opened#* }
  [ -n "$token" ] || die "no session was opened" "$EX_SOFTWARE"
  echo "$(basename "$0"): session ${opened%% *}: $kind in $project/$env" >&2
  # The worker's environment, not the caller's: the caller's ODOOOPS_* and
  # PG* variables would override the worker's configuration.
  local -a keep=(PATH="${PATH:-/usr/local/bin:/usr/bin:/bin}" HOME="${HOME:-/}" LANG="${LANG:-C.UTF-8}"
                 TERM="${TERM:-dumb}")
  [ -z "${TZ:-}" ] || keep+=(TZ="$TZ")
  [ ! -f /etc/odooops/pg_service.conf ] || keep+=(PGSERVICEFILE=/etc/odooops/pg_service.conf)
  [ ! -f /etc/odooops/pgpass ] || keep+=(PGPASSFILE=/etc/odooops/pgpass)
  exec env -i "${keep[@]}" ODOOOPS_SESSION_TOKEN="$token" "$worker" "${how[@]}" session -- "$@"
}
