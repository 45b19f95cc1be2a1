#!/usr/bin/env bash
# The mail an environment that is not production sent, caught on its host
# instead of delivered: lists it, shows one message, deletes.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"
usage() {
  cat <<'TXT'
Usage: mail.sh --project SLUG --env NAME [--list] [--limit N] [--json]
       mail.sh --show ID [--json]
       mail.sh --project SLUG --env NAME --delete ID [--delete ID...] | --delete-all
  --list        the newest caught messages (the default), one line each:
                id caught_at size_bytes from -> recipients: subject
  --limit N     at most N of them (1-1000, default 50)
  --show ID     one message: its raw RFC 5322 text as it was sent
  --delete ID   deletes that message of the environment (repeatable)
  --delete-all  deletes every caught message of the environment
  --json        --list: one JSON array of objects: id caught_at mail_from
                rcpt_to subject size_bytes; --show: one object with these,
                environment and raw_base64
  --dsn URI     connection
  --version     the release
Deleting prints "deleted N". Not found (66): an unknown project, environment
or message; permission denied (77): e.g. deleting without mail.delete.
TXT
  exit_codes_help
}
project='' env='' mode=list limit=50 show='' json='' ids=()
while [ $# -gt 0 ]; do
  case "$1" in
    --project) project=$(option_value "$@"); shift 2 ;;
    --env) env=$(option_value "$@"); shift 2 ;;
    --list) mode=list; shift ;;
    --limit) limit=$(option_value "$@"); shift 2 ;;
    --show) mode=show; show=$(option_value "$@"); shift 2 ;;
    --delete) mode=delete; ids+=("$(option_value "$@")"); shift 2 ;;
    --delete-all) mode=delete-all; shift ;;
    --json) json=1; shift ;;
    --dsn) ODOOOPS_DSN=$(option_value "$@"); shift 2 ;;
    *) other_option "$1" ;;
  esac
done

if [ "$mode" = show ]; then
  [[ "$show" =~ ^[0-9]{1,18}$ ]] || die "--show needs a message id"
  if [ -n "$json" ]; then
    sql "SELECT row_to_json(r) FROM (
           SELECT id, environment, caught_at, mail_from, rcpt_to, subject, size_bytes,
                  translate(encode(raw, 'base64'), E'\n', '') AS raw_base64
             FROM ops.get_caught_mail(:'id')) r" -v id="$show"
    echo
  else
    sql "SELECT encode(raw, 'base64') FROM ops.get_caught_mail(:'id')" -v id="$show" | base64 -d
  fi
  exit 0
fi

if [ -z "$project" ] || [ -z "$env" ]; then usage >&2; die "--project and --env are required"; fi
pid=$(sql "SELECT id FROM ops.projects WHERE slug = :'project'" -v project="$project")
[ -n "$pid" ] || die "no project \"$project\"" "$EX_NOINPUT"
case $mode in
  list)
    [[ "$limit" =~ ^[0-9]{1,4}$ ]] || die "--limit must be a number"
    rows="SELECT id, caught_at, mail_from, rcpt_to, subject, size_bytes
            FROM ops.list_caught_mails(:'pid', :'env', :'limit')"
    if [ -n "$json" ]; then
      sql_json "$rows" "id DESC" -v pid="$pid" -v env="$env" -v limit="$limit"
    else
      sql "SELECT concat(id, ' ', to_char(caught_at, 'YYYY-MM-DD\"T\"HH24:MI:SS'), ' ', size_bytes, ' ',
                         mail_from, ' -> ', array_to_string(rcpt_to, ','), ': ', subject)
             FROM ($rows) r ORDER BY id DESC" -v pid="$pid" -v env="$env" -v limit="$limit"
      echo
    fi
    ;;
  delete | delete-all)
    [ -z "$json" ] || die "--json goes with --list or --show"
    list=NULL
    if [ "$mode" = delete ]; then
      for id in "${ids[@]}"; do [[ "$id" =~ ^[0-9]{1,18}$ ]] || die "--delete needs a message id, not \"$id\""; done
      list="{$(IFS=,; echo "${ids[*]}")}"
    fi
    if [ "$list" = NULL ]; then
      n=$(sql "SELECT ops.delete_caught_mails(:'pid', :'env', NULL)" -v pid="$pid" -v env="$env")
    else
      n=$(sql "SELECT ops.delete_caught_mails(:'pid', :'env', :'ids'::bigint[])" -v pid="$pid" -v env="$env" -v ids="$list")
    fi
    echo "deleted $n"
    ;;
esac
