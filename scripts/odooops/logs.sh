#!/usr/bin/env bash
# Prints a run's events; --follow keeps printing new ones until it finishes.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
usage() {
  cat <<'TXT'
Usage: logs.sh --run ID [--follow] [--interval SECONDS]
  --follow     print new events as they arrive until the run has finished
               (reads new events every --interval seconds, default 1)
  --dsn URI    connection
One line per event: time level [step/stream] message (transitions as from -> to).
Exit codes: 0 (with --follow: the run succeeded), 1 the run failed or was
cancelled, 2 usage, 3 no such run.
TXT
}
run= follow= interval=1
while [ $# -gt 0 ]; do
  take_dsn "$@" && { shift 2; continue; }
  case "$1" in
    --run) run=${2:-}; shift 2 ;;
    --follow|-f) follow=1; shift ;;
    --interval) interval=${2:-}; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown option $1" ;;
  esac
done
[[ "$run" =~ ^[0-9]+$ ]] || { usage >&2; die "--run ID is required"; }
[ -n "$(sql "SELECT 1 FROM ops.runs WHERE id = :'run'" -v run="$run")" ] || die "no run $run" 3
last=0
print_new() {
  local lines
  lines=$(sql "SELECT e.id || E'\t' || to_char(e.created_at, 'HH24:MI:SS.MS') || ' ' || rpad(e.level, 7) ||
                      coalesce(' [' || concat_ws('/', e.step, e.stream) || ']', '') || ' ' ||
                      CASE WHEN e.kind = 'transition' THEN coalesce(e.from_status, '') || ' -> ' || e.to_status ||
                                                          ' (' || e.message || ')'
                           ELSE e.message END
                 FROM ops.run_events e WHERE e.run_id = :'run' AND e.id > :'last' ORDER BY e.id" \
          -v run="$run" -v last="$last")
  [ -n "$lines" ] || return 0
  printf '%s\n' "$lines" | cut -f2-
  last=$(printf '%s\n' "$lines" | tail -n 1 | cut -f1)
}
print_new
[ -n "$follow" ] || exit 0
while :; do
  status=$(sql "SELECT status FROM ops.runs WHERE id = :'run'" -v run="$run")
  case "$status" in
    succeeded|failed|cancelled)
      print_new
      [ "$status" = succeeded ] && exit 0 || exit 1 ;;
  esac
  sleep "$interval"
  print_new
done
