#!/usr/bin/env bash
# Waits until a run (or the latest run of an environment) has finished.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
usage() {
  cat <<'TXT'
Usage: env_wait_ready.sh (--run ID | --project SLUG --env NAME) [--timeout SECONDS]
  --run ID            the run to wait for
  --project, --env    or the latest run of this environment
  --timeout SECONDS   give up after this long (default 600)
  --dsn URI           connection
Prints the final status. Exit codes: 0 succeeded, 1 failed or cancelled,
2 usage, 3 no such run, 6 timed out.
TXT
}
run= project= env= timeout=600
while [ $# -gt 0 ]; do
  take_dsn "$@" && { shift 2; continue; }
  case "$1" in
    --run) run=${2:-}; shift 2 ;;
    --project) project=${2:-}; shift 2 ;;
    --env) env=${2:-}; shift 2 ;;
    --timeout) timeout=${2:-}; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown option $1" ;;
  esac
done
[[ "$timeout" =~ ^[0-9]+$ ]] || die "--timeout must be a number of seconds"
if [ -z "$run" ]; then
  [ -n "$project" ] && [ -n "$env" ] || { usage >&2; die "--run or --project and --env are required"; }
  run=$(sql "SELECT r.id FROM ops.runs r JOIN ops.environments e ON e.id = r.environment_id
              JOIN ops.projects p ON p.id = e.project_id
             WHERE p.slug = :'project' AND e.name = :'env' ORDER BY r.id DESC LIMIT 1" -v project="$project" -v env="$env")
  [ -n "$run" ] || die "no run for $project/$env" 3
fi
[[ "$run" =~ ^[0-9]+$ ]] || die "--run must be a run id"
deadline=$(( $(date +%s) + timeout ))
while :; do
  status=$(sql "SELECT status FROM ops.runs WHERE id = :'run'" -v run="$run")
  [ -n "$status" ] || die "no run $run" 3
  case "$status" in
    succeeded) echo "run $run succeeded"; exit 0 ;;
    failed|cancelled)
      error=$(sql "SELECT coalesce(error, '') FROM ops.runs WHERE id = :'run'" -v run="$run")
      echo "run $run $status${error:+: $error}"; exit 1 ;;
  esac
  [ "$(date +%s)" -lt "$deadline" ] || { echo "run $run still $status after ${timeout}s" >&2; exit 6; }
  sleep 1
done
