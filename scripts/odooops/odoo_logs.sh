#!/usr/bin/env bash
# The Odoo server log of an environment (not a run's log: `logs` has those),
# read in its runtime by its worker.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"
usage() {
  cat <<'TXT'
Usage: odoo_logs.sh --project SLUG [--env] NAME [--follow] [--grep RE] [--worker NAME | --worker-config FILE]
  The environment's Odoo server log (process runtime: the log file the
  worker keeps; container runtime: the container's log).
  --follow           keep printing new lines until interrupted
  --grep RE          only the lines matching the extended regular expression RE
  --project SLUG     the project
  --env NAME         the environment (or NAME alone)
  --worker NAME      the worker instance of this host that reads it
                     (/etc/odooops/worker-NAME.conf; default main)
  --worker-config F  a worker configuration file naming everything itself
                     (or $ODOOOPS_WORKER_CONFIG)
  --dsn URI          your connection (the session is opened as you)
  --version          the release
Needs env.logs on the environment (every project member, as run logs);
each reading is written to the project's audit log. Runs on the
environment's host, as a user allowed to run its worker.
TXT
  exit_codes_help
}
project='' env='' args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --project) project=$(option_value "$@"); shift 2 ;;
    --env) env=$(option_value "$@"); shift 2 ;;
    --follow | -f) args+=(--follow); shift ;;
    --grep)
      re=$(option_value "$@")
      [ ${#re} -le 1024 ] || die "--grep: at most 1024 characters"
      args+=(--grep "$re"); shift 2 ;;
    --worker | --worker-config) session_worker_option "$1" "$(option_value "$@")"; shift 2 ;;
    --dsn) ODOOOPS_DSN=$(option_value "$@"); shift 2 ;;
    -*) other_option "$1" ;;
    *) [ -z "$env" ] || die "one environment"; env=$1; shift ;;
  esac
done
if [ -z "$project" ] || [ -z "$env" ]; then usage >&2; die "--project and --env are required"; fi
run_session odoo_logs "$project" "$env" "${args[@]}"
