#!/usr/bin/env bash
# Creates an environment of a project and, with --deploy, queues its first deploy.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"
usage() {
  cat <<'TXT'
Usage: env_create.sh --project SLUG --name NAME --stage STAGE [options]
  --project SLUG          the project (ops.projects.slug)
  --name NAME             environment name (lowercase, digits, . _ -)
  --stage STAGE           production | staging | development | preview
  --branch-pattern GLOB   branches that deploy here (e.g. main, feature/*)
  --db-name NAME          database of the environment: 2-63 lowercase letters, digits, _
                          (default: <project>_<name>, dashes and dots as _)
  --deploy SHA            queue a deploy of this commit once created
  --ref REF               git ref of that commit (default: the branch pattern)
  --dsn URI               connection (default: $ODOOOPS_DSN, PG* variables, .odooops/)
  --version               the release
Prints "environment <id>", and "run <id>" when a deploy was queued.
Not found (66): an unknown project; refused (65): invalid input, a name taken.
TXT
  exit_codes_help
}
project='' name='' stage='' pattern='' db='' sha='' ref=''
while [ $# -gt 0 ]; do
  case "$1" in
    --project) project=$(option_value "$@"); shift 2 ;;
    --name) name=$(option_value "$@"); shift 2 ;;
    --stage) stage=$(option_value "$@"); shift 2 ;;
    --branch-pattern) pattern=$(option_value "$@"); shift 2 ;;
    --db-name) db=$(option_value "$@"); shift 2 ;;
    --deploy) sha=$(option_value "$@"); shift 2 ;;
    --ref) ref=$(option_value "$@"); shift 2 ;;
    --dsn) ODOOOPS_DSN=$(option_value "$@"); shift 2 ;;
    *) other_option "$1" ;;
  esac
done
if [ -z "$project" ] || [ -z "$name" ] || [ -z "$stage" ]; then
  usage >&2
  die "--project, --name and --stage are required"
fi
pid=$(sql "SELECT id FROM ops.projects WHERE slug = :'project'" -v project="$project")
[ -n "$pid" ] || die "no project \"$project\"" "$EX_NOINPUT"
env_id=$(sql "INSERT INTO ops.environments (project_id, name, stage, branch_pattern, db_name)
              VALUES (:'pid', :'name', :'stage', nullif(:'pattern', ''),
                      coalesce(nullif(:'db', ''), translate(:'project' || '_' || :'name', '-.', '__')))
              RETURNING id" -v pid="$pid" -v name="$name" -v stage="$stage" -v pattern="$pattern" -v db="$db" -v project="$project")
echo "environment $env_id"
if [ -n "$sha" ]; then
  run=$(sql "SELECT id FROM ops.queue_run(:'pid', :'name', :'sha', coalesce(nullif(:'ref', ''), nullif(:'pattern', ''), 'main'))" \
        -v pid="$pid" -v name="$name" -v sha="$sha" -v ref="$ref" -v pattern="$pattern")
  echo "run $run"
fi
