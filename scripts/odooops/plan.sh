#!/usr/bin/env bash
# A deploy plan: the modules a deploy of a revision would install and update
# in an environment, decided on its database as the deploy decides
# (ops.queue_deploy_plan, docs/upgrades.md); or the plan of a deploy run.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"
usage() {
  cat <<'TXT'
Usage: plan.sh --project SLUG --env NAME (--sha SHA | --ref REF | --run ID) [--wait SECONDS]
       plan.sh --show RUN
  --sha SHA      the revision a deploy would run
  --ref REF      or a branch or tag of the repository
  --run ID       the plan of that queued deploy run (its revision), shown with it
  --wait S       wait up to S seconds for the plan and print it (default: print "run <id>")
  --show RUN     the newest plan of deploy run RUN (or plan run RUN), as JSON
  --dsn URI      connection
  --version      the release
A plan is a build run that reads the environment's database (read-only)
and lists: install, update, changed_without_bump, removed (no longer in
the revision, left installed). Needs run.build on the environment; --show
needs to be a project member. Not found (66): no such project,
environment or run.
TXT
  exit_codes_help
}
project='' env='' sha='' ref='' for_run='' wait='' show=''
while [ $# -gt 0 ]; do
  case "$1" in
    --project) project=$(option_value "$@"); shift 2 ;;
    --env) env=$(option_value "$@"); shift 2 ;;
    --sha) sha=$(option_value "$@"); shift 2 ;;
    --ref) ref=$(option_value "$@"); shift 2 ;;
    --run) for_run=$(option_value "$@"); shift 2 ;;
    --wait) wait=$(option_value "$@"); shift 2 ;;
    --show) show=$(option_value "$@"); shift 2 ;;
    --dsn) ODOOOPS_DSN=$(option_value "$@"); shift 2 ;;
    *) other_option "$1" ;;
  esac
done
for n in "$for_run" "$wait" "$show"; do
  [[ -z $n || $n =~ ^[0-9]{1,18}$ ]] || die "--run, --wait and --show take a number"
done
if [ -n "$show" ]; then
  out=$(sql "SELECT ops.deploy_plan(:'run')" -v run="$show")
  [ -n "$out" ] || die "run $show has no plan" "$EX_NOINPUT"
  echo "$out"
  exit "$EX_OK"
fi
if [ -z "$project" ] || [ -z "$env" ]; then usage >&2; die "--project and --env are required"; fi
pid=$(sql "SELECT p.id FROM ops.projects p WHERE p.slug = :'project'" -v project="$project")
[ -n "$pid" ] || die "no project $project" "$EX_NOINPUT"
run=$(sql "SELECT id FROM ops.queue_deploy_plan(:'pid', :'env', nullif(:'sha', ''), nullif(:'ref', ''),
                                                nullif(:'run', '')::bigint)" \
        -v pid="$pid" -v env="$env" -v sha="$sha" -v ref="$ref" -v run="$for_run")
if [ -z "$wait" ]; then echo "run $run"; exit "$EX_OK"; fi
deadline=$((SECONDS + wait))
while :; do
  status=$(sql "SELECT status FROM ops.runs WHERE id = :'run'" -v run="$run")
  case $status in
    succeeded) sql "SELECT ops.deploy_plan(:'run')" -v run="$run"; echo; exit "$EX_OK" ;;
    failed | cancelled) sql "SELECT ops.deploy_plan(:'run')" -v run="$run"; echo; exit "$EX_RUN_FAILED" ;;
  esac
  [ "$SECONDS" -lt "$deadline" ] || die "plan run $run is still $status after $wait s" "$EX_TEMPFAIL"
  sleep 1
done
