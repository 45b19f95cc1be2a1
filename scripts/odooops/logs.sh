#!/usr/bin/env bash
# Prints a run's events; --follow keeps printing new ones until it finishes.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"
usage() {
  cat <<'TXT'
Usage: logs.sh --run ID [--follow [--interval SECONDS] | --json]
  --follow     print new events as they arrive until the run has finished
               (reads new events every --interval seconds, default 1)
  --json       the events there are as one JSON array of objects: id created_at
               attempt kind level step stream message from_status to_status
               actor payload (not with --follow)
  --dsn URI    connection
  --version    the release
One line per event: time level [step/stream] message (transitions as from -> to).
With --follow the exit code is the run's: 0 succeeded, 1 failed or cancelled.
Not found (66): no such run.
TXT
  exit_codes_help
}
run='' follow='' interval=1 json=''
while [ $# -gt 0 ]; do
  case "$1" in
    --run) run=$(option_value "$@"); shift 2 ;;
    --follow | -f) follow=1; shift ;;
    --interval) interval=$(option_value "$@"); shift 2 ;;
    --json) json=1; shift ;;
    --dsn) ODOOOPS_DSN=$(option_value "$@"); shift 2 ;;
    *) other_option "$1" ;;
  esac
done
if ! [[ "$run" =~ ^[0-9]{1,18}$ ]]; then usage >&2; die "--run ID is required"; fi
[[ "$interval" =~ ^[0-9]{1,4}(\.[0-9]{1,3})?$ ]] || die "--interval must be a number of seconds"
[ -z "$json" ] || [ -z "$follow" ] || die "--json lists the events there are; it does not --follow"
found=$(sql "SELECT 1 FROM ops.runs WHERE id = :'run'" -v run="$run")
[ -n "$found" ] || die "no run $run" "$EX_NOINPUT"
if [ -n "$json" ]; then
  sql_json "SELECT e.id, e.created_at, e.attempt, e.kind, e.level, e.step, e.stream, e.message,
                   e.from_status, e.to_status, e.actor, e.payload
              FROM ops.run_events e WHERE e.run_id = :'run'" "id" -v run="$run"
  exit 0
fi
last=0
# Prints the events after $last and moves $last to the newest: one row, the
# newest id before a tab and then the lines, as a message may span lines.
print_new() {
  local out
  out=$(sql "SELECT max(e.id) || E'\t' ||
                    string_agg(to_char(e.created_at, 'HH24:MI:SS.MS') || ' ' || rpad(e.level, 7) ||
                               coalesce(' [' || concat_ws('/', e.step, e.stream) || ']', '') || ' ' ||
                               CASE WHEN e.kind = 'transition'
                                    THEN coalesce(e.from_status, '') || ' -> ' || e.to_status || ' (' || e.message || ')'
                                    ELSE e.message END, E'\n' ORDER BY e.id)
               FROM ops.run_events e WHERE e.run_id = :'run' AND e.id > :'last'" \
        -v run="$run" -v last="$last")
  [ -n "$out" ] || return 0
  printf '%s\n' "${out#*$'\t'}"
  last=${out%%$'\t'*}
}
print_new
[ -n "$follow" ] || exit 0
while :; do
  status=$(sql "SELECT status FROM ops.runs WHERE id = :'run'" -v run="$run")
  case "$status" in
    succeeded) print_new; exit 0 ;;
    failed | cancelled) print_new; exit "$EX_RUN_FAILED" ;;
  esac
  sleep "$interval"
  print_new
done
