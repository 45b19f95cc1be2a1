#!/usr/bin/env bash
# Requests a backup of an environment (a queued run of workflow backup).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
usage() {
  cat <<'TXT'
Usage: backup.sh --project SLUG --env NAME [--type TYPE] [--list]
  --type TYPE   manual (default), daily, weekly, monthly, pre_deploy, pre_restore
  --list        list the environment's backups instead
  --dsn URI     connection
Prints "backup <id> run <id> expires <time>".
Exit codes: 0 ok, 2 usage, 3 unknown environment, 4 permission denied,
5 refused (e.g. the daily limit of manual backups).
TXT
}
project= env= type=manual list=
while [ $# -gt 0 ]; do
  take_dsn "$@" && { shift 2; continue; }
  case "$1" in
    --project) project=${2:-}; shift 2 ;;
    --env) env=${2:-}; shift 2 ;;
    --type) type=${2:-}; shift 2 ;;
    --list) list=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown option $1" ;;
  esac
done
[ -n "$project" ] && [ -n "$env" ] || { usage >&2; die "--project and --env are required"; }
pid=$(sql "SELECT id FROM ops.projects WHERE slug = :'project'" -v project="$project")
[ -n "$pid" ] || die "no project \"$project\"" 3
if [ -n "$list" ]; then
  sql "SELECT b.id || ' ' || b.backup_type || ' ' || b.status || ' ' || coalesce(b.size_bytes::text, '-') || ' ' ||
              to_char(b.created_at, 'YYYY-MM-DD\"T\"HH24:MI:SS')
         FROM ops.backups b JOIN ops.environments e ON e.id = b.environment_id
        WHERE e.project_id = :'pid' AND e.name = :'env' ORDER BY b.id DESC" -v pid="$pid" -v env="$env"
  echo
  exit 0
fi
sql "SELECT 'backup ' || backup_id || ' run ' || run_id || ' expires ' || to_char(expires_at, 'YYYY-MM-DD\"T\"HH24:MI:SS')
       FROM ops.create_backup(:'pid', :'env', :'type')" -v pid="$pid" -v env="$env" -v type="$type"
echo
