#!/usr/bin/env bash
# Requests a restore of a backup into an environment. Into production it
# waits for an approval by another member (see approve.sh).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"
usage() {
  cat <<'TXT'
Usage: restore.sh --backup ID --project SLUG --env NAME
  --backup ID   the backup (backup.sh --list)
  --env NAME    the target environment
  --dsn URI     connection
  --version     the release
Prints "restore <id> queued run <id>" or "restore <id> pending_approval approval <id>".
Not found (66): an unknown backup or environment; refused (65): an expired
or unfinished backup, a destroyed environment, ...
TXT
  exit_codes_help
}
backup='' project='' env=''
while [ $# -gt 0 ]; do
  case "$1" in
    --backup) backup=$(option_value "$@"); shift 2 ;;
    --project) project=$(option_value "$@"); shift 2 ;;
    --env) env=$(option_value "$@"); shift 2 ;;
    --dsn) ODOOOPS_DSN=$(option_value "$@"); shift 2 ;;
    *) other_option "$1" ;;
  esac
done
if [ -z "$backup" ] || [ -z "$project" ] || [ -z "$env" ]; then
  usage >&2
  die "--backup, --project and --env are required"
fi
[[ "$backup" =~ ^[0-9]{1,18}$ ]] || die "--backup must be a backup id"
env_id=$(sql "SELECT e.id FROM ops.environments e JOIN ops.projects p ON p.id = e.project_id
               WHERE p.slug = :'project' AND e.name = :'env'" -v project="$project" -v env="$env")
[ -n "$env_id" ] || die "no environment $project/$env" "$EX_NOINPUT"
sql "SELECT 'restore ' || id || ' ' || status ||
            CASE WHEN run_id IS NOT NULL THEN ' run ' || run_id ELSE ' approval ' || approval_id END
       FROM ops.restore_backup(:'backup', :'env_id')" -v backup="$backup" -v env_id="$env_id"
echo
