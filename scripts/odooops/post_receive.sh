#!/usr/bin/env bash
# The post-receive hook of a bare repository: hands the refs a push changed
# to ops.ingest_post_receive, which queues deploy runs (and creates or tears
# down branch environments) as a webhook from a git host would.
#
# Install it as the repository's hook:
#   ln -s /usr/local/libexec/odooops/post_receive.sh /srv/git/shop.git/hooks/post-receive
#   git -C /srv/git/shop.git config odooops.project shop
#   git -C /srv/git/shop.git config odooops.dsn 'postgresql://db.example/odooops'   # optional
# The database login is the one the pushing user connects as (peer
# authentication, ~/.pgpass, PGSERVICE...): it is the authentication, and
# each change is authorized like the run it queues (docs/git-hosts.md).
set -euo pipefail
here=$(dirname "$(readlink -f "$0")")
# shellcheck disable=SC1091
source "$here/lib.sh"
usage() {
  cat <<'TXT'
Usage: post_receive.sh [--dsn URI] [--project SLUG]   (reads "<old> <new> <ref>" lines on stdin)
  --project SLUG  the project, else `git config odooops.project`
  --dsn URI       connection, else `git config odooops.dsn`, $ODOOOPS_DSN, the PG* variables
Prints what was queued. Exit codes: 0 ok, 2 usage, 3 unknown project, 4 permission denied, 5 invalid input.
TXT
}
project=
while [ $# -gt 0 ]; do
  take_dsn "$@" && { shift 2; continue; }
  case "$1" in
    --project) project=${2:-}; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown option $1" ;;
  esac
done
[ -n "$project" ] || project=$(git config --get odooops.project 2>/dev/null || true)
[ -n "$project" ] || die "no project: pass --project or set git config odooops.project"
if [ -z "$ODOOOPS_DSN" ]; then
  ODOOOPS_DSN=$(git config --get odooops.dsn 2>/dev/null || true)
fi
# git gives one "<old> <new> <ref>" line per ref; the function bounds them.
lines=$(head -c 1048577)
answer=$(sql "SELECT ops.ingest_post_receive(:'project', :'lines')" -v project="$project" -v lines="$lines")
echo "odooops: $answer"
