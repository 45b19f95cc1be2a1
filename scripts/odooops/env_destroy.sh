#!/usr/bin/env bash
# Queues the destruction of an environment (its instance and database).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"
usage() {
  cat <<'TXT'
Usage: env_destroy.sh --project SLUG --env NAME [--force]
  --force     required to destroy a production environment
  --dsn URI   connection
  --version   the release
Prints "run <id>"; the environment is marked destroyed when it succeeds.
A production environment is destroyed only once another member approves
(approve.sh; the approval id is printed), after a final backup.
Not found (66): no such active environment; refused (65): production
without --force.
TXT
  exit_codes_help
}
project='' env='' force=''
while [ $# -gt 0 ]; do
  case "$1" in
    --project) project=$(option_value "$@"); shift 2 ;;
    --env) env=$(option_value "$@"); shift 2 ;;
    --force) force=1; shift ;;
    --dsn) ODOOOPS_DSN=$(option_value "$@"); shift 2 ;;
    *) other_option "$1" ;;
  esac
done
if [ -z "$project" ] || [ -z "$env" ]; then usage >&2; die "--project and --env are required"; fi
info=$(sql "SELECT p.id || '|' || e.stage FROM ops.environments e JOIN ops.projects p ON p.id = e.project_id
             WHERE p.slug = :'project' AND e.name = :'env' AND e.status = 'active'" -v project="$project" -v env="$env")
[ -n "$info" ] || die "no active environment $project/$env" "$EX_NOINPUT"
pid=${info%%|*} stage=${info#*|}
[ "$stage" != production ] || [ -n "$force" ] || die "refusing to destroy a production environment without --force" "$EX_DATAERR"
run=$(sql "SELECT id FROM ops.destroy_environment(:'pid', :'env', 'destroyed from the command line')" -v pid="$pid" -v env="$env")
echo "run $run"
approval=$(sql "SELECT id FROM ops.approvals WHERE subject = 'destroy' AND subject_id = :'run' AND status = 'pending'" -v run="$run")
[ -z "$approval" ] || echo "approval $approval (another member decides it: approve.sh --approval $approval)"
