# Shared by the odooops command-line tools: connection, SQL calls with safe
# parameters, and exit codes derived from SQLSTATEs.
#
# Connection: --dsn URI, else $ODOOOPS_DSN, else the PG* variables, else the
# private demo cluster in .odooops/ when it exists. The database defaults to
# "odooops".
#
# Exit codes: 0 ok; 1 the run failed or was cancelled; 2 usage; 3 not found
# (OD002); 4 permission denied (42501); 5 invalid input (OD001, OD004-OD011);
# 6 timed out; 7 cannot connect; 10 other database error.

ODOOOPS_DSN=${ODOOOPS_DSN:-}
_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
if [ -z "$ODOOOPS_DSN" ] && [ -z "${PGHOST:-}" ] && [ -f "$_root/.odooops/pg/env" ]; then
  # shellcheck disable=SC1091
  source "$_root/.odooops/pg/env"
  export PGDATABASE=odooops
fi
export PGDATABASE=${PGDATABASE:-odooops}

die() { echo "$(basename "$0"): $1" >&2; exit "${2:-2}"; }

# Parses --dsn from the arguments (the rest are the tool's).
take_dsn() { if [ "${1:-}" = "--dsn" ]; then ODOOOPS_DSN=${2:?--dsn needs a value}; return 0; fi; return 1; }

exit_code_for() {
  case "$1" in
    OD002) echo 3 ;;
    42501|42883) echo 4 ;;
    OD001|OD004|OD005|OD006|OD007|OD008|OD009|OD010|OD011|22P02|23505|23514) echo 5 ;;
    08*) echo 7 ;;
    *) echo 10 ;;
  esac
}

# sql QUERY [-v name=value ...]: runs one query (values are bound with
# psql's :'name' quoting, never spliced), prints unaligned tuples separated
# by '|'. On error prints the server's message and exits with its code.
sql() {
  local query=$1 out status
  shift
  local err
  err=$(mktemp)
  out=$(psql ${ODOOOPS_DSN:+"$ODOOOPS_DSN"} -X -qAt -v ON_ERROR_STOP=0 -v SHOW_CONTEXT=never "$@" 2>"$err" <<SQL
$query;
\if :ERROR
\echo __odooops_error :LAST_ERROR_SQLSTATE
\endif
SQL
  )
  status=$?
  if [ $status -ne 0 ] && ! grep -q __odooops_error <<<"$out"; then
    cat "$err" >&2; rm -f "$err"; exit 7
  fi
  if grep -q '^__odooops_error' <<<"$out"; then
    local state
    state=$(grep '^__odooops_error' <<<"$out" | awk '{print $2}')
    sed 's/^psql:<stdin>:[0-9]*: //' "$err" >&2
    rm -f "$err"
    exit "$(exit_code_for "$state")"
  fi
  rm -f "$err"
  printf '%s' "$out"
}
