#!/usr/bin/env bash
# Lists recent runs.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
usage() {
  cat <<'TXT'
Usage: runs.sh [--project SLUG] [--env NAME] [--status STATUS] [--limit N]
  --dsn URI   connection
One line per run: id workflow status environment attempt git_ref git_sha created_at.
Exit codes: 0 ok, 2 usage.
TXT
}
project= env= status= limit=20
while [ $# -gt 0 ]; do
  take_dsn "$@" && { shift 2; continue; }
  case "$1" in
    --project) project=${2:-}; shift 2 ;;
    --env) env=${2:-}; shift 2 ;;
    --status) status=${2:-}; shift 2 ;;
    --limit) limit=${2:-}; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown option $1" ;;
  esac
done
[[ "$limit" =~ ^[0-9]+$ ]] || die "--limit must be a number"
sql "SELECT concat_ws(' ', r.id, r.workflow, r.status, p.slug || '/' || e.name, r.attempt,
                      coalesce(r.git_ref, '-'), coalesce(left(r.git_sha, 12), '-'),
                      to_char(r.created_at, 'YYYY-MM-DD\"T\"HH24:MI:SS'))
       FROM ops.runs r JOIN ops.environments e ON e.id = r.environment_id JOIN ops.projects p ON p.id = r.project_id
      WHERE (:'project' = '' OR p.slug = :'project') AND (:'env' = '' OR e.name = :'env')
        AND (:'status' = '' OR r.status = :'status')
      ORDER BY r.id DESC LIMIT :'limit'" -v project="$project" -v env="$env" -v status="$status" -v limit="$limit"
echo
