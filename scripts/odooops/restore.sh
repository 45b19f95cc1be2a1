#!/usr/bin/env bash
# Requests a restore of a backup into an environment. Into production it
# waits for an approval by another member (see approve.sh).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
usage() {
  cat <<'TXT'
Usage: restore.sh --backup ID --project SLUG --env NAME
  --backup ID   the backup (backup.sh --list)
  --env NAME    the target environment
  --dsn URI     connection
Prints "restore <id> queued run <id>" or "restore <id> pending_approval approval <id>".
Exit codes: 0 ok, 2 usage, 3 unknown backup or environment, 4 permission
denied, 5 refused (expired backup, destroyed environment, ...).
TXT
}
backup= project= env=
while [ $# -gt 0 ]; do
  take_dsn "$@" && { shift 2; continue; }
  case "$1" in
    --backup) backup=${2:-}; shift 2 ;;
    --project) project=${2:-}; shift 2 ;;
    --env) env=${2:-}; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown option $1" ;;
  esac
done
[ -n "$backup" ] && [ -n "$project" ] && [ -n "$env" ] || { usage >&2; die "--backup, --project and --env are required"; }
[[ "$backup" =~ ^[0-9]+$ ]] || die "--backup must be a backup id"
env_id=$(sql "SELECT e.id FROM ops.environments e JOIN ops.projects p ON p.id = e.project_id
               WHERE p.slug = :'project' AND e.name = :'env'" -v project="$project" -v env="$env")
[ -n "$env_id" ] || die "no environment $project/$env" 3
sql "SELECT 'restore ' || id || ' ' || status ||
            CASE WHEN run_id IS NOT NULL THEN ' run ' || run_id ELSE ' approval ' || approval_id END
       FROM ops.restore_backup(:'backup', :'env_id')" -v backup="$backup" -v env_id="$env_id"
echo
