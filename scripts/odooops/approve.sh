#!/usr/bin/env bash
# Decides a pending approval (four-eyes: not your own request).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
usage() {
  cat <<'TXT'
Usage: approve.sh --approval ID [--reject] [--reason TEXT]
       approve.sh --pending [--project SLUG]
  --approval ID   the approval to decide (approve unless --reject)
  --pending       list pending approvals
  --dsn URI       connection
Exit codes: 0 ok, 2 usage, 3 unknown approval, 4 not allowed (own request,
missing permission), 5 already decided or expired.
TXT
}
approval= decision=approved reason= pending= project=
while [ $# -gt 0 ]; do
  take_dsn "$@" && { shift 2; continue; }
  case "$1" in
    --approval) approval=${2:-}; shift 2 ;;
    --reject) decision=rejected; shift ;;
    --reason) reason=${2:-}; shift 2 ;;
    --pending) pending=1; shift ;;
    --project) project=${2:-}; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown option $1" ;;
  esac
done
if [ -n "$pending" ]; then
  sql "SELECT a.id || ' ' || a.subject || ' ' || a.subject_id || ' requested by ' || a.requested_by ||
              ' expires ' || to_char(a.expires_at, 'YYYY-MM-DD\"T\"HH24:MI:SS')
         FROM ops.approvals a JOIN ops.projects p ON p.id = a.project_id
        WHERE a.status = 'pending' AND (:'project' = '' OR p.slug = :'project') ORDER BY a.id" -v project="$project"
  echo
  exit 0
fi
[[ "$approval" =~ ^[0-9]+$ ]] || { usage >&2; die "--approval ID is required"; }
sql "SELECT 'approval ' || id || ' ' || status FROM ops.decide_approval(:'approval', :'decision', nullif(:'reason', ''))" \
    -v approval="$approval" -v decision="$decision" -v reason="$reason"
echo
