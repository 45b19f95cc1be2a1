#!/usr/bin/env bash
# shellcheck shell=bash
# The one runtime interface (docs/runtimes.md): how an environment's Odoo is
# built, started, checked, switched to, stopped, destroyed, and reached for
# its logs, a shell or psql. This file is the one place that chooses the
# runtime: ODOOOPS_RUNTIME (set by the worker from the environment's runtime
# profile within what the worker allows, else the worker's --runtime) names
# an implementation, lib/runtime/<name>.sh, which defines every runtime_*
# function below. An unknown or empty name is an error; nothing falls back.
#
# Sourced by a step after lib/common.sh:
#   source "$STEPS_LIB/runtime.sh"
# Executed as a command, with the variables a step of the environment gets
# (ODOOOPS_RUNTIME, ODOOOPS_STATE_DIR, ODOOOPS_ENV_DIR, ODOOOPS_ENVIRONMENT_ID,
# ODOOOPS_DB_NAME, ODOO_BIN, ...):
#   runtime.sh shell                       odoo-bin shell on the environment's database
#   runtime.sh psql [PSQL ARGS]            psql on it as the environment's own role
#   runtime.sh logs [--follow] [--grep RE] the environment's Odoo server log
#   runtime.sh stop | start-again | health | running
#
# The verbs every implementation defines (inputs: the step's variables):
#   runtime_prepare       the release of the checked-out revision (a release
#                         directory, an image); exports ODOOOPS_RELEASE_DIR
#                         or ODOOOPS_IMAGE for the later steps
#   runtime_start         installs/updates the modules on the database and
#                         starts the new Odoo; beside the serving one when
#                         the runtime can (never stops it then)
#   runtime_health        the new Odoo answers for this environment's database
#   runtime_switch        traffic moves to the new Odoo (the only point it
#                         does), the old one drains and stops; records url
#   runtime_rollback      after a failed deploy step: the previous Odoo
#                         serves again (on-failure/10-rollback)
#   runtime_stop          the environment's Odoo is stopped (any of its)
#   runtime_running       status 0 when its Odoo runs
#   runtime_deployed      status 0 when something is deployed to start again
#   runtime_start_again   starts what is deployed again (after a restore or
#                         a refused destroy) and health-checks it
#   runtime_destroy       removes what the runtime holds for the environment
#                         (processes, containers, images); the database,
#                         role and directory go with env_remove
#   runtime_logs [--follow] [--grep RE]
#   runtime_shell         odoo-bin shell with the environment's own role
#   runtime_psql [ARGS]   psql as the environment's own role
#   runtime_behind_proxy  status 0 when the reverse proxy can route to it
#   runtime_catches_mail  status 0 when its Odoo reaches the mail catcher
#   runtime_neutralize DB RELEASE   Odoo's own neutralization of a copy
#   runtime_start_copy DB BOX PORT  the deployed Odoo on the database DB (a
#                         neutralized copy), its files in BOX, on PORT, never
#                         routed; health-checked (a restore test)
#   runtime_stop_copy BOX           stops and removes what that started
#   runtime_serve_release the prepared release serves on the database in
#                         place, as it is (no module update: an upgrade hook
#                         made it), health-checked; the previous one is kept
#   runtime_serve_previous          after a failure: what served before
#                         runtime_serve_release is deployed again (stopped;
#                         runtime_start_again starts it)

# The runtimes this tree implements: one file each in lib/runtime/.
RUNTIME_LIB=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/runtime
runtime_known() {
  local f names=()
  for f in "$RUNTIME_LIB"/*.sh; do
    [ -f "$f" ] && names+=("$(basename "$f" .sh)")
  done
  (IFS=,; printf '%s\n' "${names[*]}" | sed 's/,/, /g')
}

# runtime_recorded: the runtime the environment's Odoo was last started with
# ($ENV_DIR/runtime, written by deploy/40-start); empty when none was.
runtime_recorded() { if [ -s "$ENV_DIR/runtime" ]; then head -n 1 "$ENV_DIR/runtime"; fi; }
runtime_record() {
  mkdir -p "$ENV_DIR"
  printf '%s\n' "$RUNTIME" >"$ENV_DIR/runtime.tmp" && mv "$ENV_DIR/runtime.tmp" "$ENV_DIR/runtime"
}

# runtime_load NAME: sources the implementation NAME; dies on an unknown name.
runtime_load() {
  local name=$1
  [ -n "$name" ] || die "no runtime named (ODOOOPS_RUNTIME is empty); known runtimes: $(runtime_known)"
  if ! [[ $name =~ ^[a-z][a-z0-9_-]{0,31}$ ]] || [ ! -f "$RUNTIME_LIB/$name.sh" ]; then
    die "unknown runtime \"${name:0:40}\" (ODOOOPS_RUNTIME); known runtimes: $(runtime_known)"
  fi
  RUNTIME=$name
  # shellcheck source=/dev/null
  source "$RUNTIME_LIB/$name.sh"
}

# The run's runtime against the one the environment runs on. A deploy or
# restore (and a command) on another runtime than the environment's Odoo
# was started with is refused before it touches anything: a deploy does not
# move an environment between runtimes. A destroy removes what there is:
# with the runtime the environment runs on.
runtime_choose() {
  local wanted=${ODOOOPS_RUNTIME:-} recorded
  recorded=$(runtime_recorded)
  if [ -n "$recorded" ] && [ "$recorded" != "$wanted" ]; then
    case ${ODOOOPS_WORKFLOW:-} in
      destroy)
        echo "${ODOOOPS_ENVIRONMENT:-the environment} runs on the $recorded runtime (this run's is ${wanted:-none}): destroyed with the $recorded runtime"
        wanted=$recorded ;;
      build | test | backup) ;;
      *)
        # A failure hook after that refusal has nothing to undo.
        [ -z "${ODOOOPS_FAILED_STEP:-}" ] || exit 0
        die "${ODOOOPS_ENVIRONMENT:-the environment} runs on the $recorded runtime, and this ${ODOOOPS_WORKFLOW:-command} on the ${wanted:-(none)} runtime (its runtime profile changed since its last deploy): an environment does not move between runtimes; set the profile back, or destroy the environment and deploy it again" ;;
    esac
  fi
  runtime_load "$wanted"
}

# env_psql [ARGS]: psql on the environment's database as the environment's
# own role (its password file), never the worker's login.
env_psql() {
  [ -s "$ODOO_PGPASS" ] || die "${ODOOOPS_ENVIRONMENT:-the environment} has no database role yet (deploy it first)"
  PGPASSFILE=$ODOO_PGPASS PGHOST=${ODOOOPS_DB_HOST:-${PGHOST:-}} PGPORT=${ODOOOPS_DB_PORT:-${PGPORT:-5432}} \
    PGUSER=$ENV_ROLE PGDATABASE=$ODOOOPS_DB_NAME psql "$@"
}

# runtime_log_args [--follow] [--grep RE]: the arguments of runtime_logs,
# as LOG_FOLLOW (true, false) and LOG_GREP (an extended regular expression,
# empty for every line); runtime_log_grep filters stdin with LOG_GREP.
# shellcheck disable=SC2034 # read by the implementations' runtime_logs
runtime_log_args() {
  LOG_FOLLOW=false LOG_GREP=""
  while [ $# -gt 0 ]; do
    case $1 in
      --follow | -f) LOG_FOLLOW=true ;;
      --grep) [ $# -ge 2 ] || die "logs: --grep needs a regular expression"; LOG_GREP=$2; shift ;;
      --grep=*) LOG_GREP=${1#*=} ;;
      *) die "logs: unknown argument \"${1:0:40}\" (--follow, --grep RE)" ;;
    esac
    shift
  done
}
runtime_log_grep() {
  if [ -n "$LOG_GREP" ]; then grep --line-buffered -E -- "$LOG_GREP" || [ $? = 1 ]; else cat; fi
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  # Executed: runtime.sh VERB [ARGS]. stdout and stderr are the caller's
  # terminal or pipe: there is no command channel (fd 3) as in a step.
  usage() { printf 'usage: %s shell | psql [ARGS] | logs [--follow] [--grep RE] | stop | start-again | health | running\n' "$(basename "$0")" >&2; exit 64; }
  [ $# -ge 1 ] || usage
  verb=$1; shift
  # shellcheck source=common.sh
  source "$(dirname "$(readlink -f "$0")")/common.sh"
  trap - ERR
  # shellcheck disable=SC2317 # called by the helpers of common.sh
  meta() { :; }
  # shellcheck disable=SC2317
  export_env() { :; }
  # shellcheck disable=SC2317
  artifact() { :; }
  # shellcheck disable=SC2317
  warn() { local m=$*; printf 'warning: %s\n' "${m//[$'\n\r']/ }" >&2; }
  runtime_choose
  case $verb in
    shell) runtime_shell "$@" ;;
    psql) runtime_psql "$@" ;;
    logs) runtime_logs "$@" ;;
    stop) runtime_stop ;;
    start-again) runtime_start_again ;;
    health) runtime_health ;;
    running) runtime_running ;;
    -h | --help) usage ;;
    *) printf 'unknown verb "%s"\n' "${verb:0:40}" >&2; usage ;;
  esac
  exit $?
fi

runtime_choose
