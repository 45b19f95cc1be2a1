#!/usr/bin/env bash
# Requests a backup of an environment (a queued run of workflow backup),
# lists its backups, or asks for time-limited download links of one.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"
usage() {
  cat <<'TXT'
Usage: backup.sh --project SLUG --env NAME [--type TYPE]
       backup.sh --project SLUG --env NAME --list [--json]
       backup.sh download ID [--ttl DURATION] [--timeout SECONDS]
  --type TYPE   manual (default), daily, weekly, monthly, pre_deploy, pre_restore
  --list        list the environment's backups instead, one line each:
                id type status size_bytes created_at
  --json        with --list: one JSON array of objects: id run_id backup_type
                status size_bytes error created_at completed_at expires_at
  --dsn URI     connection
  --version     the release
Prints "backup <id> run <id> expires <time>". Not found (66): an unknown
project or environment; refused (65): e.g. the daily limit of manual backups.
download ID: asks a worker holding the backups' storage for links to backup
ID's dump and filestore archive, waits for them and prints
  dump <url>
  filestore <url>
  expires <time>
  --ttl DURATION     how long the links work (default 1 hour; 1 minute to 24
                     hours, in PostgreSQL's interval syntax: "30 minutes")
  --timeout SECONDS  how long to wait for a worker (default 60; then 75)
The links are the caller's alone; anyone holding one can download until it
expires. A worker that cannot sign them fails the request (exit 1).
TXT
  exit_codes_help
}
download() {
  local id='' ttl='1 hour' timeout=60 did row status waited=0
  while [ $# -gt 0 ]; do
    case "$1" in
      --ttl) ttl=$(option_value "$@"); shift 2 ;;
      --timeout) timeout=$(option_value "$@"); shift 2 ;;
      --dsn) ODOOOPS_DSN=$(option_value "$@"); shift 2 ;;
      -*) other_option "$1" ;;
      *) [ -z "$id" ] || die "one backup id"; id=$1; shift ;;
    esac
  done
  [[ $id =~ ^[0-9]{1,18}$ ]] || { usage >&2; die "download needs a backup id"; }
  [[ $timeout =~ ^[0-9]{1,6}$ ]] || die "--timeout: a number of seconds"
  did=$(sql "SELECT id FROM ops.request_backup_download(:'id', :'ttl')" -v id="$id" -v ttl="$ttl")
  while :; do
    row=$(sql "SELECT concat_ws(E'\\n', status, coalesce(url, ''), coalesce(filestore_url, ''),
                                coalesce(to_char(expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), ''),
                                coalesce(error, ''))
                 FROM ops.backup_downloads WHERE id = :'did'" -v did="$did")
    status=$(sed -n 1p <<<"$row")
    case $status in
      ready)
        echo "dump $(sed -n 2p <<<"$row")"
        [ -z "$(sed -n 3p <<<"$row")" ] || echo "filestore $(sed -n 3p <<<"$row")"
        echo "expires $(sed -n 4p <<<"$row")"
        exit "$EX_OK" ;;
      failed) die "download $did of backup $id: $(sed -n 5p <<<"$row")" "$EX_RUN_FAILED" ;;
    esac
    [ "$waited" -lt "$((timeout * 2))" ] || die "no worker signed download $did of backup $id within ${timeout}s" "$EX_TEMPFAIL"
    sleep 0.5
    waited=$((waited + 1))
  done
}
if [ "${1:-}" = download ]; then
  shift
  download "$@"
fi
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
