# shellcheck shell=bash
# The mail catcher of an environment that is not production (sourced after
# common.sh). One catcher per environment, on a loopback port the system
# chooses, run by the worker's user in its own session; its spool, secret
# and port are in the worker's state directory, <state>/mail/<environment
# id>/, out of reach of the environment's Odoo user. The worker hands what
# it catches to the control plane (ops.caught_mails). docs/mail.md.

# Builds and tests have an environment too; a run without one has no box.
MAIL_DIR=$ODOOOPS_STATE_DIR/mail/${ODOOOPS_ENVIRONMENT_ID:-none}
MAIL_PIDFILE=$MAIL_DIR/catcher.pid
MAIL_CATCHER_USER=odooops-${ODOOOPS_ENVIRONMENT_ID:-none}

mail_catcher_running() { [ -s "$MAIL_PIDFILE" ] && [ -s "$MAIL_DIR/catcher.port" ] && kill -0 "$(cat "$MAIL_PIDFILE")" 2>/dev/null; }

# mail_catcher_ensure: starts the environment's catcher unless it runs.
# Its login is the environment's, its password a random secret made once.
mail_catcher_ensure() {
  [ "$ODOOOPS_STAGE" != production ] || die "production never gets a mail catcher"
  mail_catcher_running && return 0
  (umask 077; mkdir -p "$MAIL_DIR")
  chmod 700 "$MAIL_DIR"
  printf '%s' "$MAIL_CATCHER_USER" >"$MAIL_DIR/catcher.user"
  if [ ! -s "$MAIL_DIR/catcher.secret" ]; then
    (umask 077; head -c 48 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' >"$MAIL_DIR/catcher.secret")
  fi
  rm -f "$MAIL_DIR/catcher.port"
  setsid "$STEPS_LIB/mail_catcher.py" "$MAIL_DIR" >>"$MAIL_DIR/catcher.log" 2>&1 </dev/null 3>&- &
  local pid=$!
  # The worker ends a step's process group when the step exits: wait until
  # the catcher listens, in its own session.
  for _ in $(seq 1 200); do
    if [ -s "$MAIL_DIR/catcher.port" ] && [ "$(ps -o sid= -p "$pid" 2>/dev/null | tr -d ' ')" = "$pid" ]; then
      echo "$pid" >"$MAIL_PIDFILE"
      echo "mail catcher of ${ODOOOPS_ENVIRONMENT} started on 127.0.0.1:$(cat "$MAIL_DIR/catcher.port")"
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  tail -n 5 "$MAIL_DIR/catcher.log" >&2 || true
  kill "$pid" 2>/dev/null || true
  die "the mail catcher of ${ODOOOPS_ENVIRONMENT} did not start (is python3-aiosmtpd installed?)"
}

mail_catcher_port() { cat "$MAIL_DIR/catcher.port"; }

# mail_catcher_point DB: the environment's catcher runs, and DB's Odoo
# sends all its mail there (lib/mail_catcher.sql).
mail_catcher_point() {
  local db=$1
  mail_catcher_ensure
  in_env_db psql -X -q -v ON_ERROR_STOP=1 -d "$db" -v port="$(mail_catcher_port)" -v user="$MAIL_CATCHER_USER" \
    -v secret_file="$MAIL_DIR/catcher.secret" -f "$STEPS_LIB/mail_catcher.sql" 2>&1 | sed 's/^psql:[^ ]* NOTICE:  //'
  return "${PIPESTATUS[0]}"
}

# mail_catcher_remove: the environment is destroyed: its catcher stops and
# its spool goes (what it had caught is in the control plane already, or
# belongs to an environment that no longer takes mail).
mail_catcher_remove() {
  [ -d "$MAIL_DIR" ] || return 0
  if mail_catcher_running; then kill -TERM "$(cat "$MAIL_PIDFILE")" 2>/dev/null || true; fi
  rm -rf "$MAIL_DIR"
  echo "removed the mail catcher of ${ODOOOPS_ENVIRONMENT} and its spool"
}
