#!/usr/bin/env bash
# Decides a pending approval (four-eyes: not your own request), or lists
# the pending ones.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"
usage() {
  cat <<'TXT'
Usage: approve.sh --approval ID [--reject] [--reason TEXT]
       approve.sh --pending [--project SLUG] [--json]
  --approval ID   the approval to decide (approve unless --reject)
  --pending       list pending approvals, one line each:
                  id subject subject_id requested by USER expires TIME
                  and for a deploy its plan: plan STATUS install: A,B update: C
                  (once the plan ran), plan STATUS: ERROR, or plan none
  --json          with --pending: one JSON array of objects: id project environment
                  subject subject_id status requested_by reason created_at expires_at
                  plan (a deploy's ops.deploy_plan, else null)
  --dsn URI       connection
  --version       the release
Prints "approval <id> <status>". Not found (66): an unknown approval; not
allowed (77): your own request, a missing permission; refused (65): already
decided or expired.
TXT
  exit_codes_help
}
approval='' decision=approved reason='' pending='' project='' json=''
while [ $# -gt 0 ]; do
  case "$1" in
    --approval) approval=$(option_value "$@"); shift 2 ;;
    --reject) decision=rejected; shift ;;
    --reason) reason=$(option_value "$@"); shift 2 ;;
    --pending) pending=1; shift ;;
    --project) project=$(option_value "$@"); shift 2 ;;
    --json) json=1; shift ;;
    --dsn) ODOOOPS_DSN=$(option_value "$@"); shift 2 ;;
    *) other_option "$1" ;;
  esac
done
[ -z "$json" ] || [ -n "$pending" ] || die "--json goes with --pending"
if [ -n "$pending" ]; then
  rows="SELECT a.id, p.slug AS project, e.name AS environment, a.subject, a.subject_id, a.status,
               a.requested_by, a.reason, a.created_at, a.expires_at,
               CASE WHEN a.subject = 'deploy' THEN ops.deploy_plan(a.subject_id) END AS plan
          FROM ops.approvals a JOIN ops.projects p ON p.id = a.project_id
          JOIN ops.environments e ON e.id = a.environment_id
         WHERE a.status = 'pending' AND (:'project' = '' OR p.slug = :'project')"
  if [ -n "$json" ]; then
    sql_json "$rows" "id" -v project="$project"
  else
    sql "SELECT id || ' ' || subject || ' ' || subject_id || ' requested by ' || requested_by ||
                ' expires ' || to_char(expires_at, 'YYYY-MM-DD\"T\"HH24:MI:SS') ||
                CASE WHEN subject <> 'deploy' THEN ''
                     WHEN plan IS NULL THEN ' plan none'
                     WHEN plan ->> 'status' = 'succeeded' THEN
                       ' plan succeeded install: ' || coalesce(nullif(array_to_string(ARRAY(
                         SELECT jsonb_array_elements_text(plan #> '{plan,install}')), ','), ''), '-') ||
                       ' update: ' || coalesce(nullif(array_to_string(ARRAY(
                         SELECT jsonb_array_elements_text(plan #> '{plan,update}')), ','), ''), '-')
                     ELSE ' plan ' || (plan ->> 'status') || coalesce(': ' || split_part(plan ->> 'error', E'\n', 1), '')
                END
           FROM ($rows) r ORDER BY id" -v project="$project"
    echo
  fi
  exit 0
fi
if ! [[ "$approval" =~ ^[0-9]{1,18}$ ]]; then usage >&2; die "--approval ID is required"; fi
sql "SELECT 'approval ' || id || ' ' || status FROM ops.decide_approval(:'approval', :'decision', nullif(:'reason', ''))" \
    -v approval="$approval" -v decision="$decision" -v reason="$reason"
echo
