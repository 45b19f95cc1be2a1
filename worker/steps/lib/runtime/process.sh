# shellcheck shell=bash disable=SC2034
# The process runtime (docs/runtimes.md): Odoo as an odoo-bin process of the
# environment's own operating-system user, started from a release directory
# (<env>/releases/<sha>, `current` pointing at the one that serves), on the
# environment's port; behind the reverse proxy a redeploy starts the new
# process beside the serving one on the second pair of ports and switches
# the proxy to it. Sourced by lib/runtime.sh after lib/common.sh.
# shellcheck source=../template_db.sh
source "$STEPS_LIB/template_db.sh"
# shellcheck source=../restore.sh
source "$STEPS_LIB/restore.sh"
# shellcheck source=../rebuild.sh
source "$STEPS_LIB/rebuild.sh"
# shellcheck source=../test_results.sh
source "$STEPS_LIB/test_results.sh"

runtime_behind_proxy() { return 0; }
runtime_catches_mail() { return 0; }
runtime_neutralize() { odoo_neutralize "$@"; }
runtime_running() { odoo_running; }
runtime_deployed() { [ -e "$ENV_DIR/current" ]; }

# runtime_prepare: exports the checked-out revision into the environment's
# releases/<sha> directory (kept while it may serve), with the addons
# directories the addons step found; ODOOOPS_RELEASE_DIR names it.
runtime_prepare() {
  local sha release current old
  sha=${ODOOOPS_RESOLVED_SHA:?the checkout step must run first}
  release=$ENV_DIR/releases/$sha
  if [ ! -f "$release/.odooops-addons.json" ]; then
    rm -rf "$release.tmp"
    mkdir -p "$release.tmp"
    git -C src archive "$sha" 3>&- | tar -x -C "$release.tmp"
    # The submodules the checkout fetched, each at its recorded commit
    # ($displaypath: its path from the repository's top, nested ones too).
    if [ -f src/.gitmodules ]; then
      # shellcheck disable=SC2016 # expanded by git submodule foreach, per submodule
      RELEASE_TMP=$release.tmp git -C src submodule --quiet foreach --recursive \
        'mkdir -p "$RELEASE_TMP/$displaypath" && git archive HEAD | tar -x -C "$RELEASE_TMP/$displaypath"' 3>&-
    fi
    # The repository's addons directories, relative to the release; Odoo's
    # own are added when the release starts (lib/common.sh, addons_path).
    # (What the branch committed under that name, a symlink too, goes first.)
    rm -rf "$release.tmp/.odooops-addons.json" "$release.tmp/.odooops-venv"
    cp "$ODOOOPS_WORKSPACE/addons.json" "$release.tmp/.odooops-addons.json"
    rm -rf "$release"
    mv "$release.tmp" "$release"
  fi
  # The Python environment of the branch's requirements.txt (lib/venv.sh),
  # recorded with the release (a file of the worker's, never the branch's).
  venv_prepare "$release/.odooops-addons.json" "$ENV_DIR/venvs"
  rm -rf "$release/.odooops-venv"
  [ -z "$VENV" ] || basename "$VENV" >"$release/.odooops-venv"
  echo "release $sha ready in $release (addons path $(release_addons_path "$release"))"
  # Keep the five newest releases besides the one being deployed and the current one.
  current=$(readlink -e "$ENV_DIR/current" 2>/dev/null || true)
  ls -1dt "$ENV_DIR"/releases/*/ 2>/dev/null | tail -n +7 | while read -r old; do
    old=${old%/}
    [ "$old" = "$release" ] || [ "$old" = "$current" ] || rm -rf "$old"
  done
  venv_prune
  export_env ODOOOPS_RELEASE_DIR "$release"
}

# runtime_start: installs (new database) or updates (manifest version
# changed, as Odoo.sh does) the repository's modules with
# --stop-after-init, switches `current` to the new release and starts
# odoo-bin.
# Without the reverse proxy, the previous Odoo stops first and the new one
# starts on the environment's port. Behind the reverse proxy
# (docs/hostnames.md) the previous Odoo keeps serving: the update runs on
# the database it serves, and the new Odoo starts beside it on the
# environment's other port; runtime_switch moves the proxy to it once it
# passes the health check, then stops the old one.
# Production (or settings.rollback = true) first snapshots the database
# (CREATE DATABASE ... TEMPLATE, which needs the database without
# connections: the previous Odoo stops for it, also behind the proxy): if
# the update, the start or the health check fails, runtime_rollback
# restores the snapshot and the previous release, as Odoo.sh does. When
# 35-restore-backup replaced the database, the replaced one already is that
# snapshot.
runtime_start() {
  local release addons_path previous beside to_init to_update rollback snapshot flags demo args testing tested offset code silent serving ODOO_VENV=
  release=${ODOOOPS_RELEASE_DIR:?the release step must run first}
  addons_path=$(release_addons_path "$release")
  mkdir -p "$LOGDIR" "$DATA_DIR"

  previous=$(readlink -e "$ENV_DIR/current" 2>/dev/null || true)
  [ -n "$previous" ] && export_env ODOOOPS_PREVIOUS_RELEASE "$previous"
  beside=false
  if ! rebuild_requested && proxy_enabled && [ -n "${ODOOOPS_NEXT_HTTP_PORT:-}" ] && odoo_running; then
    beside=true
    echo "the serving Odoo $(cat "$PIDFILE") keeps serving until the new one passes its health check"
  else
    odoo_stop
    # A rebuild (lib/rebuild.sh) moves the database and filestore aside first.
    if rebuild_requested; then
      rebuild_keep_aside
    fi
  fi
  # A first deploy creates the database, as a copy of the template database
  # that has Odoo's base installed already (lib/template_db.sh): if the
  # deploy fails, there is nothing to go back to, and on-failure/10-rollback
  # removes what it created.
  if ! db_exists "$ODOOOPS_DB_NAME"; then
    export_env ODOOOPS_CREATED_DATABASE "$ODOOOPS_DB_NAME"
    if [ "${ODOOOPS_TEMPLATE_DATABASES:-true}" = true ]; then
      env_role_ensure
      odoo_os_user_prepare
      db_from_template "$ODOOOPS_DB_NAME" "$(demo_wanted)"
    fi
  fi
  env_db_prepare

  # After 35-restore-backup this plans against the restored copy: its
  # installed versions decide what is updated.
  read -r to_init to_update < <(modules_plan)
  rollback=$(json_get "$ODOOOPS_ENV_SETTINGS" rollback)
  if [ -n "${ODOOOPS_DB_SNAPSHOT:-}" ]; then
    echo "the database as it was before this deploy is kept as $ODOOOPS_DB_SNAPSHOT"
  elif [ -n "$previous" ] && [ "$to_update" != "-" ] && { [ "$ODOOOPS_STAGE" = production ] || [ "$rollback" = true ]; } \
     && db_exists "$ODOOOPS_DB_NAME"; then
    if [ "$beside" = true ]; then
      echo "the snapshot needs $ODOOOPS_DB_NAME without connections: the serving Odoo stops for it"
      odoo_stop
      beside=false
    fi
    snapshot="${ODOOOPS_DB_NAME:0:40}_pre_${ODOOOPS_RUN_ID}"
    q -d postgres -c "DROP DATABASE IF EXISTS \"$snapshot\""
    create_env_database "$snapshot" "$ODOOOPS_DB_NAME"
    echo "database snapshot $snapshot taken before updating $to_update"
    export_env ODOOOPS_DB_SNAPSHOT "$snapshot"
  fi
  mapfile -t flags < <(odoo_flags "$addons_path")
  mapfile -t demo < <(demo_flags)
  if [ "$to_init" != "-" ] || [ "$to_update" != "-" ]; then
    args=()
    [ "$to_init" != "-" ] && args+=(-i "$to_init")
    [ "$to_update" != "-" ] && args+=(-u "$to_update")
    # Staging runs on a copy of production (neutralized): the modules it
    # installs or updates are tested there, during the update, as on
    # Odoo.sh. A failing test fails the deploy, which puts the staging
    # database back (on-failure/10-rollback). Production never runs tests
    # (odoo_run refuses --test-enable on its database).
    testing=()
    if [ "$ODOOOPS_STAGE" = staging ]; then
      tested=$(printf '%s\n' "$to_init" "$to_update" | tr ',' '\n' | grep -vx -- '-' | grep . | paste -sd, -)
      testing=(--test-enable --test-tags "$(printf '%s' "$tested" | sed 's/\([^,]*\)/\/\1/g')")
    fi
    echo "odoo-bin ${args[*]} ${testing[*]} --stop-after-init"
    offset=$(stat -c %s "$LOGDIR/odoo.log" 2>/dev/null || echo 0)
    code=0
    ODOO_VENV=$(release_venv "$release")
    odoo_run "${flags[@]}" "${args[@]}" "${testing[@]}" --stop-after-init "${demo[@]}" || code=$?
    if [ ${#testing[@]} -gt 0 ]; then
      verdict=$(tests_record "$LOGDIR/odoo.log" "$offset" "$tested" "${testing[2]}" "$code")
      [ -z "$verdict" ] || die "tests failed on the staging copy: $verdict"
      tests_passed_line "$LOGDIR/odoo.log" "$offset"
    fi
    if [ "$code" != 0 ]; then
      tail -n 20 "$LOGDIR/odoo.log" >&2 || true
      die "module installation/update failed: $(odoo_failure "$LOGDIR/odoo.log" "$offset")"
    fi
    record_addon_checksums
  else
    echo "no module to install or update"
  fi
  silent=$(cat "$ODOOOPS_WORKSPACE/changed-without-bump")
  [ -z "$silent" ] || warn "changed without a version bump, updated: $silent"
  modules_meta "$to_init" "$to_update" "$silent"

  ln -sfn "$release" "$ENV_DIR/current.new" && mv -T "$ENV_DIR/current.new" "$ENV_DIR/current"
  if [ "$beside" = true ]; then
    # The ports the serving Odoo does not use: the environment's own pair or
    # the second pair the worker reserved (they alternate between redeploys).
    read -r serving _ <"$ENV_DIR/odoo.port" 2>/dev/null || serving=$ODOOOPS_HTTP_PORT
    if [ "$serving" = "$ODOOOPS_HTTP_PORT" ]; then
      odoo_start "$ODOOOPS_NEXT_HTTP_PORT" "${ODOOOPS_NEXT_WEBSOCKET_PORT:-}" "$NEXT_PIDFILE"
    else
      odoo_start "$ODOOOPS_HTTP_PORT" "${ODOOOPS_WEBSOCKET_PORT:-}" "$NEXT_PIDFILE"
    fi
  else
    odoo_start
  fi
}

# runtime_health: the health check (lib/common.sh health_probe: this
# environment's Odoo on its database) of the Odoo runtime_start started
# (the new one beside the serving one, if any), until it passes.
runtime_health() {
  local pidfile=$PIDFILE pid port ws
  pidfile=$PIDFILE
  [ -f "$NEXT_PIDFILE" ] && pidfile=$NEXT_PIDFILE
  pid=$(cat "$pidfile" 2>/dev/null || true)
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || { tail -n 20 "$LOGDIR/odoo.stdout" "$LOGDIR/odoo.log" >&2 2>/dev/null || true; die "Odoo is not running for ${ODOOOPS_ENVIRONMENT}"; }
  read -r port ws <"${pidfile%.pid}.port" 2>/dev/null || port=$ODOOOPS_HTTP_PORT
  # `|| exit`: the run's error is the health check's own line, not the ERR trap's.
  HEALTH_PID=$pid health_check "http://127.0.0.1:$port" || return 1
}

# runtime_switch: behind the reverse proxy, a new Odoo started beside the
# serving one takes over: the proxy routes to it, and the old one stops
# after --proxy-drain seconds, time for the requests it still answers.
# Records the environment's URL in the run's result.
runtime_switch() {
  local old pid port ws url
  if [ -f "$NEXT_PIDFILE" ]; then
    pid=$(cat "$NEXT_PIDFILE")
    read -r port ws <"$ENV_DIR/odoo.next.port" 2>/dev/null || port=$ODOOOPS_HTTP_PORT
    old=$(cat "$PIDFILE" 2>/dev/null || true)
    proxy_route "$port" "${ws:-}"
    mv "$NEXT_PIDFILE" "$PIDFILE" && mv "$ENV_DIR/odoo.next.port" "$ENV_DIR/odoo.port"
    if [ -n "$old" ] && [ "$old" != "$pid" ]; then
      echo "the previous Odoo $old finishes its requests (${ODOOOPS_PROXY_DRAIN:-2} s), then stops"
      sleep "${ODOOOPS_PROXY_DRAIN:-2}"
      odoo_stop_pid "$old"
    fi
  fi
  url=$(env_url)
  echo "environment ${ODOOOPS_ENVIRONMENT} serves $url"
  meta_fields url="$url" pid:="$(cat "$PIDFILE")" runtime=process release="$(basename "$(readlink -e "$ENV_DIR/current")")"
}

# runtime_rollback: after a failed deploy step. If the failed deploy had
# already stopped the previous release, puts it back: the database snapshot
# taken before the update (or the database a restored backup replaced, with
# its filestore) replaces the half-updated database, `current` points to the
# previous release again, and that release is started and health-checked --
# Odoo.sh's "go back to the previous revision and roll the database back".
# The failed update's log stays in logs/odoo.log.
runtime_rollback() {
  # A new Odoo started beside the serving one (behind the reverse proxy)
  # goes: the proxy never routed to it.
  if [ -f "$NEXT_PIDFILE" ]; then
    odoo_stop_pid "$(cat "$NEXT_PIDFILE")"
    rm -f "$NEXT_PIDFILE" "$ENV_DIR/odoo.next.port"
  fi
  local previous snapshot created
  previous=${ODOOOPS_PREVIOUS_RELEASE:-}
  snapshot=${ODOOOPS_DB_SNAPSHOT:-}
  created=${ODOOOPS_CREATED_DATABASE:-}
  if [ -z "$previous" ] && { [ -z "$snapshot" ] || ! db_exists "$snapshot"; }; then
    # A failed first deploy: nothing to go back to. What it created goes, so
    # that the next deploy starts from scratch instead of "succeeding" on a
    # half-installed database; Odoo's log stays in logs/odoo.log.
    echo "nothing to roll back (no previous release was replaced; failed at ${ODOOOPS_FAILED_STEP})"
    if [ -n "$created" ] && [ "$created" = "$ODOOOPS_DB_NAME" ]; then
      odoo_stop
      rm -f "$ENV_DIR/current"
      q -d postgres -c "DROP DATABASE IF EXISTS \"$created\" WITH (FORCE)" >/dev/null
      rm -rf "$FILESTORE"
      warn "first deploy failed: removed the database $created and the filestore it had created (Odoo's log: $LOGDIR/odoo.log)"
    fi
    return 0
  fi
  # Behind the proxy the previous Odoo was never stopped (no snapshot was
  # taken): it still serves, on the release it runs.
  if proxy_enabled && odoo_running && [ -n "$previous" ] && [ -z "$snapshot" ]; then
    ln -sfn "$previous" "$ENV_DIR/current.new" && mv -T "$ENV_DIR/current.new" "$ENV_DIR/current"
    meta_fields rolled_back_to="$(basename "$previous")"
    warn "deploy failed (${ODOOOPS_FAILURE}); ${ODOOOPS_ENVIRONMENT} kept serving the previous release $(basename "$previous") throughout"
    return 0
  fi
  echo "rolling back${previous:+ to $(basename "$previous")} after: ${ODOOOPS_FAILURE}"
  odoo_stop
  put_back_kept
  if [ -z "$previous" ]; then
    warn "deploy failed; no previous release to start again in ${ODOOOPS_ENVIRONMENT}"
    return 0
  fi
  ln -sfn "$previous" "$ENV_DIR/current.new" && mv -T "$ENV_DIR/current.new" "$ENV_DIR/current"
  odoo_start
  HEALTH_PID=$(cat "$PIDFILE") health_check "http://127.0.0.1:$ODOOOPS_HTTP_PORT"
  meta_fields rolled_back_to="$(basename "$previous")"
  warn "deploy failed; ${ODOOOPS_ENVIRONMENT} runs the previous release $(basename "$previous") again"
}

runtime_stop() { odoo_stop; }

# runtime_serve_release: `current` points at the prepared release
# (ODOOOPS_RELEASE_DIR; the previous one is exported as
# ODOOOPS_PREVIOUS_RELEASE) and Odoo starts on the database in place.
runtime_serve_release() {
  local release=${ODOOOPS_RELEASE_DIR:?the release step must run first} previous
  previous=$(readlink -e "$ENV_DIR/current" 2>/dev/null || true)
  [ -z "$previous" ] || [ "$previous" = "$release" ] || export_env ODOOOPS_PREVIOUS_RELEASE "$previous"
  odoo_stop
  ln -sfn "$release" "$ENV_DIR/current.new" && mv -T "$ENV_DIR/current.new" "$ENV_DIR/current"
  echo "release $(basename "$release") is current"
  odoo_start
  HEALTH_PID=$(cat "$PIDFILE") health_check "http://127.0.0.1:$ODOOOPS_HTTP_PORT"
}
# runtime_serve_previous: the release that served before is current again.
runtime_serve_previous() {
  odoo_stop
  local previous=${ODOOOPS_PREVIOUS_RELEASE:-}
  [ -n "$previous" ] && [ -d "$previous" ] || return 0
  ln -sfn "$previous" "$ENV_DIR/current.new" && mv -T "$ENV_DIR/current.new" "$ENV_DIR/current"
  echo "release $(basename "$previous") is current again"
}

# runtime_start_copy DB BOX PORT: the deployed release (BOX/current) on the
# database DB, with BOX as its environment directory (the step has pointed
# ENV_DIR, LOGDIR, DATA_DIR, ODOO_CONF and ODOO_PGPASS there): not the
# environment's pid file, so the proxy never routes to it; started as
# production, since the copy is neutralized already (no mail catcher).
runtime_start_copy() {
  local db=$1 box=$2 port=$3
  ODOOOPS_DB_NAME=$db ODOOOPS_STAGE=production odoo_start "$port" "" "$box/server.pid"
  HEALTH_PID=$(cat "$box/server.pid") ODOOOPS_DB_NAME=$db health_check "http://127.0.0.1:$port"
}
runtime_stop_copy() { if [ -s "$1/server.pid" ]; then odoo_stop_pid "$(cat "$1/server.pid")"; fi; }

# runtime_start_again: the deployed release starts again on the database
# the environment has, and is health-checked.
runtime_start_again() {
  odoo_stop
  odoo_start
  HEALTH_PID=$(cat "$PIDFILE") health_check "http://127.0.0.1:$ODOOOPS_HTTP_PORT"
}

# runtime_destroy: the environment's processes stop (its releases go with
# its directory, env_remove).
runtime_destroy() { odoo_stop; }

# runtime_logs [--follow] [--grep RE]: the environment's Odoo server log
# (<env>/logs/odoo.log, the file every odoo-bin of the environment writes):
# its last 200 lines, then, with --follow, what it writes next.
runtime_logs() {
  runtime_log_args "$@"
  local log=$LOGDIR/odoo.log
  [ -f "$log" ] || die "${ODOOOPS_ENVIRONMENT:-the environment} has no Odoo log yet ($log)"
  if [ "$LOG_FOLLOW" = true ]; then
    tail -n 200 -F "$log" 2>/dev/null | runtime_log_grep
  else
    tail -n 200 "$log" | runtime_log_grep
  fi
}

# runtime_shell: odoo-bin shell on the environment's database, with the
# deployed release's addons, its odoo.conf, its database role and its
# operating-system user, as the server runs (no HTTP server).
runtime_shell() {
  local release addons flags
  release=$(readlink -e "$ENV_DIR/current") || die "no release deployed in ${ODOOOPS_ENVIRONMENT:-$ENV_DIR}"
  addons=$(release_addons_path "$release")
  [ -f "$ODOO_CONF" ] || die "${ODOOOPS_ENVIRONMENT:-the environment} has no odoo.conf yet (deploy it first)"
  # The shell's own log lines go to the terminal, not the server's log file.
  mapfile -t flags < <(odoo_flags "$addons" | odoo_copy_flags)
  local ODOO_VENV; ODOO_VENV=$(release_venv "$release")
  odoo_command
  exec "${ODOO_CMD[@]}" shell -c "$ODOO_CONF" --database "$ODOOOPS_DB_NAME" "${flags[@]}" --logfile= --no-http 3>&-
}

runtime_psql() { env_psql "$@"; }
