#!/usr/bin/env bash
# Major-version upgrades with the operator's upgrade hook (docs/upgrades.md):
# a test on a copy of production's latest backup (ops.queue_upgrade_test),
# or production's own upgrade, after an approval (ops.request_upgrade).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"
usage() {
  cat <<'TXT'
Usage: upgrade.sh --project SLUG --env NAME (--test | --production) [--sha SHA | --ref REF]
  --test         run the upgrade hook on a copy of the environment's latest backup;
                 production is not touched (needs upgrade.test)
  --production   upgrade the production environment itself, once another member
                 approved it (odooops approve); a pre-deploy backup first, put back
                 on failure (needs upgrade.run)
  --sha SHA, --ref REF   the code the upgraded database runs (default: the
                 project's production branch)
  --dsn URI      connection
  --version      the release
Prints "run <id>" (and "approval <id>" for --production). Refused (65): not
production, no backup yet; not found (66): no such project or environment.
TXT
  exit_codes_help
}
project='' env='' sha='' ref='' mode=''
while [ $# -gt 0 ]; do
  case "$1" in
    --project) project=$(option_value "$@"); shift 2 ;;
    --env) env=$(option_value "$@"); shift 2 ;;
    --sha) sha=$(option_value "$@"); shift 2 ;;
    --ref) ref=$(option_value "$@"); shift 2 ;;
    --test) mode='test'; shift ;;
    --production) mode=production; shift ;;
    --dsn) ODOOOPS_DSN=$(option_value "$@"); shift 2 ;;
    *) other_option "$1" ;;
  esac
done
if [ -z "$project" ] || [ -z "$env" ] || [ -z "$mode" ]; then
  usage >&2; die "--project, --env and --test or --production are required"
fi
pid=$(sql "SELECT p.id FROM ops.projects p WHERE p.slug = :'project'" -v project="$project")
[ -n "$pid" ] || die "no project $project" "$EX_NOINPUT"
if [ "$mode" = test ]; then
  run=$(sql "SELECT id FROM ops.queue_upgrade_test(:'pid', :'env', nullif(:'sha', ''), nullif(:'ref', ''))" \
          -v pid="$pid" -v env="$env" -v sha="$sha" -v ref="$ref")
  echo "run $run"
else
  out=$(sql "SELECT r.id || ' ' || a.id FROM ops.request_upgrade(:'pid', :'env', nullif(:'sha', ''), nullif(:'ref', '')) r
               JOIN ops.approvals a ON a.subject = 'deploy' AND a.subject_id = r.id" \
          -v pid="$pid" -v env="$env" -v sha="$sha" -v ref="$ref")
  echo "run ${out%% *}"
  echo "approval ${out##* }"
fi
