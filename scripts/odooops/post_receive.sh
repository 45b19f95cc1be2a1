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
# The hook is a symbolic link: lib.sh is beside the file it points to.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$(readlink -f "$0")")/lib.sh"
usage() {
  cat <<'TXT'
Usage: post_receive.sh [--project SLUG]   (git's "<old> <new> <ref>" lines on stdin)
  --project SLUG  the project, else `git config odooops.project` of the repository
  --dsn URI       connection, else `git config odooops.dsn`, else as every tool
  --version       the release
Prints what was queued: {"project", "queued": [...], "created_environments", "ignored"}.
TXT
  exit_codes_help
}
project=''
while [ $# -gt 0 ]; do
  case "$1" in
    --project) project=$(option_value "$@"); shift 2 ;;
    --dsn) ODOOOPS_DSN=$(option_value "$@"); shift 2 ;;
    *) other_option "$1" ;;
  esac
done
[ -n "$project" ] || project=$(git config --get odooops.project 2>/dev/null || true)
[ -n "$project" ] || die "no project: pass --project or set git config odooops.project"
[ -n "$ODOOOPS_DSN" ] || ODOOOPS_DSN=$(git config --get odooops.dsn 2>/dev/null || true)
[ ! -t 0 ] || die "reads git's \"<old> <new> <ref>\" lines on stdin, not from a terminal"
# One "<old> <new> <ref>" line per ref; the server bounds them (1 MiB).
lines=$(head -c 1048577)
answer=$(sql "SELECT ops.ingest_post_receive(:'project', :'lines')" -v project="$project" -v lines="$lines")
echo "odooops: $answer"
