#!/usr/bin/env bash
# Rebuilds an environment: its current commit deployed again from scratch,
# on a new database and filestore (ops.rebuild_environment).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"
usage() {
  cat <<'TXT'
Usage: rebuild.sh --project SLUG --env NAME
  --dsn URI   connection
  --version   the release
Prints "run <id>": a deploy of the environment's latest release on a new
database (with demo data where the stage installs it) and an empty
filestore; the database and filestore it replaces are kept aside until the
rebuilt environment passes its health check, then dropped. Needs
env.manage and run.deploy on the environment. Not found (66): no such
environment; refused (65): production, or nothing deployed yet.
TXT
  exit_codes_help
}
project='' env=''
while [ $# -gt 0 ]; do
  case "$1" in
    --project) project=$(option_value "$@"); shift 2 ;;
    --env) env=$(option_value "$@"); shift 2 ;;
    --dsn) ODOOOPS_DSN=$(option_value "$@"); shift 2 ;;
    *) other_option "$1" ;;
  esac
done
if [ -z "$project" ] || [ -z "$env" ]; then usage >&2; die "--project and --env are required"; fi
pid=$(sql "SELECT p.id FROM ops.projects p WHERE p.slug = :'project'" -v project="$project")
[ -n "$pid" ] || die "no project $project" "$EX_NOINPUT"
run=$(sql "SELECT id FROM ops.rebuild_environment(:'pid', :'env')" -v pid="$pid" -v env="$env")
echo "run $run"
