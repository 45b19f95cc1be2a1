#!/usr/bin/env bash
# An Odoo shell (odoo-bin shell) in an environment's runtime, as its
# worker runs it.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"
usage() {
  cat <<'TXT'
Usage: shell.sh --project SLUG [--env] NAME [--worker NAME | --worker-config FILE]
  Odoo's shell (odoo-bin shell) on the environment's database, in its
  runtime (process or container), with the terminal; Python read from
  stdin when it is not one. Needs env.shell on the environment (owners and
  admins; developers not on production); opened, started and ended are
  written to the project's audit log (session.open, session.start,
  session.end).
  --project SLUG     the project
  --env NAME         the environment (or NAME alone)
  --worker NAME      the worker instance of this host that runs it
                     (/etc/odooops/worker-NAME.conf; default main)
  --worker-config F  a worker configuration file naming everything itself
                     (or $ODOOOPS_WORKER_CONFIG)
  --dsn URI          your connection (the session is opened as you)
  --version          the release
Runs on the environment's host, as a user allowed to run its worker. The
exit code is the shell's; not found (66), permission denied (77, also a
worker configuration this user cannot read) as below.
TXT
  exit_codes_help
}
project='' env=''
while [ $# -gt 0 ]; do
  case "$1" in
    --project) project=$(option_value "$@"); shift 2 ;;
    --env) env=$(option_value "$@"); shift 2 ;;
    --worker | --worker-config) session_worker_option "$1" "$(option_value "$@")"; shift 2 ;;
    --dsn) ODOOOPS_DSN=$(option_value "$@"); shift 2 ;;
    -*) other_option "$1" ;;
    *) [ -z "$env" ] || die "one environment"; env=$1; shift ;;
  esac
done
if [ -z "$project" ] || [ -z "$env" ]; then usage >&2; die "--project and --env are required"; fi
run_session shell "$project" "$env"
