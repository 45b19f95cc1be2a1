#!/usr/bin/env bash
# Requests a backup of an environment (a queued run of workflow backup), or
# lists its backups.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"
usage() {
  cat <<'TXT'
Usage: backup.sh --project SLUG --env NAME [--type TYPE]
       backup.sh --project SLUG --env NAME --list [--json]
  --type TYPE   manual (default), daily, weekly, monthly, pre_deploy, pre_restore
  --list        list the environment's backups instead, one line each:
                id type status size_bytes created_at
  --json        with --list: one JSON array of objects: id run_id backup_type
                status size_bytes error created_at completed_at expires_at
  --dsn URI     connection
  --version     the release
Prints "backup <id> run <id> expires <time>". Not found (66): an unknown
project or environment; refused (65): e.g. the daily limit of manual backups.
TXT
  exit_codes_help
}
project='' env='' type=manual list='' json=''
while [ $# -gt 0 ]; do
  case "$1" in
    --project) project=$(option_value "$@"); shift 2 ;;
    --env) env=$(option_value "$@"); shift 2 ;;
    --type) type=$(option_value "$@"); shift 2 ;;
    --list) list=1; shift ;;
    --json) json=1; shift ;;
    --dsn) ODOOOPS_DSN=$(option_value "$@"); shift 2 ;;
    *) other_option "$1" ;;
  esac
done
if [ -z "$project" ] || [ -z "$env" ]; then usage >&2; die "--project and --env are required"; fi
[ -z "$json" ] || [ -n "$list" ] || die "--json goes with --list"
pid=$(sql "SELECT id FROM ops.projects WHERE slug = :'project'" -v project="$project")
[ -n "$pid" ] || die "no project \"$project\"" "$EX_NOINPUT"
if [ -n "$list" ]; then
  rows="SELECT b.id, b.run_id, b.backup_type, b.status, b.size_bytes, b.error,
               b.created_at, b.completed_at, b.expires_at
          FROM ops.backups b JOIN ops.environments e ON e.id = b.environment_id
         WHERE e.project_id = :'pid' AND e.name = :'env'"
  if [ -n "$json" ]; then
    sql_json "$rows" "id DESC" -v pid="$pid" -v env="$env"
  else
    sql "SELECT concat_ws(' ', id, backup_type, status, coalesce(size_bytes::text, '-'),
                          to_char(created_at, 'YYYY-MM-DD\"T\"HH24:MI:SS'))
           FROM ($rows) r ORDER BY id DESC" -v pid="$pid" -v env="$env"
    echo
  fi
  exit 0
fi
sql "SELECT 'backup ' || backup_id || ' run ' || run_id || ' expires ' || to_char(expires_at, 'YYYY-MM-DD\"T\"HH24:MI:SS')
       FROM ops.create_backup(:'pid', :'env', :'type')" -v pid="$pid" -v env="$env" -v type="$type"
echo
