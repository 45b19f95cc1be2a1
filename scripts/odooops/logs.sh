#!/usr/bin/env bash
# Prints a run's events; --follow keeps printing new ones until it finishes.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"
usage() {
  cat <<'TXT'
Usage: logs.sh --run ID [--follow [--interval SECONDS] | --json]
  --follow     print new events as they arrive until the run has finished:
               woken by the server's notification of each new event
               (LISTEN odooops_run_events, through odooops-worker
               notifications), and reading anyway every --interval seconds
               (default 30; 1 when no odooops-worker is found to listen)
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
run='' follow='' interval='' json=''
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
[ -z "$interval" ] || [[ "$interval" =~ ^[0-9]{1,4}(\.[0-9]{1,3})?$ ]] || die "--interval must be a number of seconds"
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
# Following: the server notifies odooops_run_events with "<run>:<event id>"
# whenever events are appended (extension/sql/78_sessions.sql). psql cannot
# wait for a notification, so the worker binary listens and prints each
# payload; the listener starts before the first read, so no event falls
# between the two. Without it (no binary, no connection) the tool polls.
listening=''
if [ -n "$follow" ] && worker=$(worker_bin); then
  coproc LISTENER { ODOOOPS_DSN=$ODOOOPS_DSN exec "$worker" notifications odooops_run_events --run "$run" 2>/dev/null; }
  # shellcheck disable=SC2153 # set by coproc
  listener_pid=$LISTENER_PID
  # a descriptor of our own: bash drops the coproc's once it exits
  exec {listener_fd}<&"${LISTENER[0]}"
  trap 'kill "$listener_pid" 2>/dev/null || true' EXIT
  if read -r -t 10 line <&"$listener_fd" && [ "$line" = listening ]; then
    listening=1
  fi
fi
[ -n "$interval" ] || interval=$([ -n "$listening" ] && echo 30 || echo 1)
# wait_for_events: returns once an event of the run was notified, or after
# --interval seconds.
wait_for_events() {
  local line rc deadline=$((SECONDS + ${interval%.*} + 1))
  if [ -z "$listening" ]; then sleep "$interval"; return 0; fi
  while [ "$SECONDS" -lt "$deadline" ]; do
    rc=0
    read -r -t "$interval" line <&"$listener_fd" || rc=$?
    if [ "$rc" -ne 0 ]; then
      # timed out (status > 128), or the listener is gone: poll from now on
      [ "$rc" -gt 128 ] || listening=''
      return 0
    fi
    [[ "$line" != "$run:"* ]] || return 0
  done
}
print_new
[ -n "$follow" ] || exit 0
while :; do
  status=$(sql "SELECT status FROM ops.runs WHERE id = :'run'" -v run="$run")
  case "$status" in
    succeeded) print_new; exit 0 ;;
    failed | cancelled) print_new; exit "$EX_RUN_FAILED" ;;
  esac
  wait_for_events
  print_new
done
