#!/usr/bin/env bash
# Queues the destruction of an environment (its instance and database).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
usage() {
  cat <<'TXT'
Usage: env_destroy.sh --project SLUG --env NAME [--force]
  --force     required to destroy a production environment
  --dsn URI   connection
Prints the destroy run id; the environment is marked destroyed when it succeeds.
A production environment is destroyed only once another member approves
(approve.sh; the approval id is printed), after a final backup.
Exit codes: 0 queued, 2 usage, 3 unknown environment, 4 permission denied, 5 refused.
TXT
}
project='' env='' force=''
while [ $# -gt 0 ]; do
  take_dsn "$@" && { shift 2; continue; }
  case "$1" in
    --project) project=${2:-}; shift 2 ;;
    --env) env=${2:-}; shift 2 ;;
    --force) force=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown option $1" ;;
  esac
done
[ -n "$project" ] && [ -n "$env" ] || { usage >&2; die "--project and --env are required"; }
info=$(sql "SELECT p.id || '|' || e.stage FROM ops.environments e JOIN ops.projects p ON p.id = e.project_id
             WHERE p.slug = :'project' AND e.name = :'env' AND e.status = 'active'" -v project="$project" -v env="$env")
[ -n "$info" ] || die "no active environment $project/$env" 3
pid=${info%%|*} stage=${info#*|}
[ "$stage" != production ] || [ -n "$force" ] || die "refusing to destroy a production environment without --force" 5
run=$(sql "SELECT id FROM ops.destroy_environment(:'pid', :'env', 'destroyed from the command line')" -v pid="$pid" -v env="$env")
echo "run $run"
approval=$(sql "SELECT id FROM ops.approvals WHERE subject = 'destroy' AND subject_id = :'run' AND status = 'pending'" -v run="$run")
[ -z "$approval" ] || echo "approval $approval (another member decides it: approve.sh --approval $approval)"
