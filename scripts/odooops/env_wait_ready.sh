#!/usr/bin/env bash
# Waits until a run (or the latest run of an environment) has finished.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"
usage() {
  cat <<'TXT'
Usage: env_wait_ready.sh (--run ID | --project SLUG --env NAME) [--timeout SECONDS]
  --run ID            the run to wait for
  --project, --env    or the latest run of this environment
  --timeout SECONDS   give up after this long (default 600)
  --dsn URI           connection
  --version           the release
Prints the final status; the exit code is the run's: 0 succeeded, 1 failed
or cancelled; 75 when it has not finished within --timeout. Not found (66):
no such run, or no run of the environment.
TXT
  exit_codes_help
}
run='' project='' env='' timeout=600
while [ $# -gt 0 ]; do
  case "$1" in
    --run) run=$(option_value "$@"); shift 2 ;;
    --project) project=$(option_value "$@"); shift 2 ;;
    --env) env=$(option_value "$@"); shift 2 ;;
    --timeout) timeout=$(option_value "$@"); shift 2 ;;
    --dsn) ODOOOPS_DSN=$(option_value "$@"); shift 2 ;;
    *) other_option "$1" ;;
  esac
done
[[ "$timeout" =~ ^[0-9]{1,9}$ ]] || die "--timeout must be a number of seconds"
if [ -z "$run" ]; then
  if [ -z "$project" ] || [ -z "$env" ]; then usage >&2; die "--run or --project and --env are required"; fi
  run=$(sql "SELECT r.id FROM ops.runs r JOIN ops.environments e ON e.id = r.environment_id
              JOIN ops.projects p ON p.id = e.project_id
             WHERE p.slug = :'project' AND e.name = :'env' ORDER BY r.id DESC LIMIT 1" -v project="$project" -v env="$env")
  [ -n "$run" ] || die "no run for $project/$env" "$EX_NOINPUT"
fi
[[ "$run" =~ ^[0-9]{1,18}$ ]] || die "--run must be a run id"
deadline=$(( $(date +%s) + timeout ))
while :; do
  status=$(sql "SELECT status FROM ops.runs WHERE id = :'run'" -v run="$run")
  [ -n "$status" ] || die "no run $run" "$EX_NOINPUT"
  case "$status" in
    succeeded) echo "run $run succeeded"; exit 0 ;;
    failed|cancelled)
      error=$(sql "SELECT coalesce(error, '') FROM ops.runs WHERE id = :'run'" -v run="$run")
      echo "run $run $status${error:+: $error}"
      exit "$EX_RUN_FAILED" ;;
  esac
  [ "$(date +%s)" -lt "$deadline" ] || { echo "run $run still $status after ${timeout}s" >&2; exit "$EX_TEMPFAIL"; }
  sleep 1
done
