#!/usr/bin/env bash
# Lists recent runs.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"
usage() {
  cat <<'TXT'
Usage: runs.sh [--project SLUG] [--env NAME] [--status STATUS] [--limit N] [--json]
  --limit N   the N latest runs (default 20)
  --json      one JSON array of objects: id project environment workflow status
              attempt git_ref git_sha error requested_by created_at started_at finished_at
  --dsn URI   connection
  --version   the release
One line per run: id workflow status project/environment attempt git_ref git_sha created_at.
TXT
  exit_codes_help
}
project='' env='' status='' limit=20 json=''
while [ $# -gt 0 ]; do
  case "$1" in
    --project) project=$(option_value "$@"); shift 2 ;;
    --env) env=$(option_value "$@"); shift 2 ;;
    --status) status=$(option_value "$@"); shift 2 ;;
    --limit) limit=$(option_value "$@"); shift 2 ;;
    --json) json=1; shift ;;
    --dsn) ODOOOPS_DSN=$(option_value "$@"); shift 2 ;;
    *) other_option "$1" ;;
  esac
done
[[ "$limit" =~ ^[0-9]{1,9}$ ]] || die "--limit must be a number"
rows="SELECT r.id, p.slug AS project, e.name AS environment, r.workflow, r.status, r.attempt,
             r.git_ref, r.git_sha, r.error, r.requested_by, r.created_at, r.started_at, r.finished_at
        FROM ops.runs r JOIN ops.environments e ON e.id = r.environment_id JOIN ops.projects p ON p.id = r.project_id
       WHERE (:'project' = '' OR p.slug = :'project') AND (:'env' = '' OR e.name = :'env')
         AND (:'status' = '' OR r.status = :'status')
       ORDER BY r.id DESC LIMIT :'limit'"
vars=(-v project="$project" -v env="$env" -v status="$status" -v limit="$limit")
if [ -n "$json" ]; then
  sql_json "$rows" "id DESC" "${vars[@]}"
  exit 0
fi
sql "SELECT concat_ws(' ', id, workflow, status, project || '/' || environment, attempt,
                      coalesce(git_ref, '-'), coalesce(left(git_sha, 12), '-'),
                      to_char(created_at, 'YYYY-MM-DD\"T\"HH24:MI:SS'))
       FROM ($rows) r ORDER BY id DESC" "${vars[@]}"
echo
