#!/usr/bin/env bash
# Real Odoo through the product, in one run: the time from a deploy being
# queued (a push accepted) to the environment answering /web/login on its
# own database, for
#   fresh      a new development environment, base installed by odoo-bin
#              (the worker with --template-databases=false)
#   template   a new development environment copied from the template
#              database that has base installed already (built once before,
#              timed separately)
#   push       a push that bumps one module, on a live development environment
#   refresh    a staging deploy on a neutralized copy of production's backup
#   restore    a production restore of that backup (approved by a second member)
# and checks that the template path installs exactly what a fresh install
# does (module, state, version, demo flag). Prints the Markdown table of
# BENCHMARKS.md ("Real Odoo").
#
# Needs PGHOST/PGPORT/PGUSER of a server with odooops preloaded, the worker
# built, and an Odoo source tree:  ODOO_SRC=/opt/odoo/17.0 bench/real_odoo_bench.sh
set -euo pipefail
# shellcheck source=tests/e2e/lib.sh
source "$(cd "$(dirname "$0")/.." && pwd)/tests/e2e/lib.sh"
# shellcheck source=tests/harness/odoo_modules.sh
source "$ROOT/tests/harness/odoo_modules.sh"
ODOO_SRC=${ODOO_SRC:?ODOO_SRC must name an Odoo source tree}
ODOO_FLAGS=(--odoo-src "$ODOO_SRC")
SERIES=$(odoo_series "$ODOO_SRC")
setup_control_plane
rm -rf "$WORK/repo"; make_odoo_repo "$WORK/repo" "$SERIES"; REPO=$WORK/repo
SHA=$(git -C "$REPO" rev-parse HEAD)
scalar "UPDATE ops.projects SET repo_url = '$REPO'" >/dev/null
P=e2e_${E2E_NAME}

now() { date +%s.%N; }
secs() { python3 -c 'import sys; print("%.1f" % (float(sys.argv[2]) - float(sys.argv[1])))' "$1" "$2"; }
add_env() {  # add_env NAME STAGE -> its port
  local port; port=$(free_port)
  scalar "INSERT INTO ops.environments (project_id, name, stage, branch_pattern, db_name, settings)
          VALUES (1, '$1', '$2', '$1/*', '${P}_$1', '{\"http_port\": $port}')" >/dev/null
  echo "$port"
}
answers() {  # answers PORT: waits for /web/login 200 (at most 60 s)
  for _ in $(seq 1 600); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$1/web/login")" = 200 ] && return 0
    sleep 0.1
  done
  fail "port $1 does not answer /web/login"
}
timed() {  # timed RUN_ID_COMMAND PORT -> seconds from queueing to /web/login 200
  local t0 r; t0=$(now)
  r=$(eval "$1")
  wait_status "$r" succeeded 600
  answers "$2"
  secs "$t0" "$(now)"
}
modules() { psql -X -A -t -d "$1" -c "SELECT string_agg(name || ' ' || state || ' ' || latest_version || ' ' || demo, ',' ORDER BY name) FROM ir_module_module WHERE state = 'installed'"; }
restart_worker() {
  for pid in "${WORKER_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  WORKER_PIDS=()
  start_worker "$@"
}

port_fresh=$(add_env fresh development)
start_worker fresh --template-databases=false --storage "file://$WORK/backups"
t_fresh=$(timed "queue fresh deploy" "$port_fresh")

restart_worker tpl --storage "file://$WORK/backups"
port_build=$(add_env build development)
t_build=$(timed "queue build deploy" "$port_build")
port_tpl=$(add_env tpl development)
t_tpl=$(timed "queue tpl deploy" "$port_tpl")
[ "$(modules "${P}_tpl")" = "$(modules "${P}_fresh")" ] \
  || fail "the template path differs from a fresh install: $(diff <(modules "${P}_tpl" | tr , '\n') <(modules "${P}_fresh" | tr , '\n'))"

sed -i "s/$SERIES.1.0.0/$SERIES.1.0.1/" "$REPO/oo_extra/__manifest__.py"
git -C "$REPO" -c user.email=t@example.com -c user.name=test commit -qam "Bump oo_extra"
SHA=$(git -C "$REPO" rev-parse HEAD)
t_push=$(timed "queue tpl deploy" "$port_tpl")

t_prod=$(timed "queue production deploy" "$PORT_PROD")
b=$(queue_backup production); wait_status "$b" succeeded 600
t_refresh=$(timed "queue staging deploy" "$PORT_STAGING")
backup=$(backup_of "$b")
t_restore=$(timed "queue_restore $backup production" "$PORT_PROD")

cat <<MD
| path (real Odoo $SERIES, through the queue, until /web/login answers) | seconds | vs fresh install |
|---|---|---|
| new development environment, fresh install of base + 2 modules (demo data) | $t_fresh | 1.00 |
| new development environment from the template database (target ≤ 6 s) | $t_tpl | $(python3 -c "print('%.2f' % ($t_fresh / $t_tpl))")× faster |
| same, the first time (builds the template) | $t_build | |
| push bumping one module, live development environment | $t_push | |
| first production deploy (template without demo data, built then) | $t_prod | |
| staging refresh from production's backup (neutralized copy) | $t_refresh | |
| production restore of that backup (approved) | $t_restore | |

The template path installed the same modules, states, versions and demo flags as the fresh install.
MD
