# shellcheck shell=bash disable=SC2034
# The docker runtime (docs/runtimes.md): Odoo as a container of an image
# built FROM the operator's base image ($ODOOOPS_ODOO_IMAGE) plus the
# repository under /mnt/extra-addons/<project>, through the Docker Engine
# API at $DOCKER_HOST (lib/docker_api.py; dockerd or podman's service). The
# container runs on the host network on the environment's port, with the
# filestore bind-mounted, and connects with the environment's own role.
# The name of the serving container is kept in <env>/container, the port
# it listens on in <env>/container.port. Behind the reverse proxy
# (docs/hostnames.md) a redeploy starts the new container beside the
# serving one, on the environment's other port, and switches the proxy to
# it once it passes the health check; without the proxy the environment's
# port is single, and a redeploy replaces the container.
# Sourced by lib/runtime.sh after lib/common.sh.
# shellcheck source=../restore.sh
source "$STEPS_LIB/restore.sh"
API=$STEPS_LIB/docker_api.py
CONTAINER_FILE=$ENV_DIR/container

runtime_behind_proxy() { return 0; }
# The containers cannot reach the host's loopback, where the mail catcher
# listens: a neutralized copy keeps the dummy server of neutralize.sql.
runtime_catches_mail() { return 1; }
# No odoo-bin on the host: lib/neutralize.sql alone neutralizes a copy.
runtime_neutralize() {
  warn "the docker runtime does not run odoo-bin neutralize: the modules' own data/neutralize.sql did not apply, only odooops's neutralization"
}
docker_container() { [ -s "$CONTAINER_FILE" ] && cat "$CONTAINER_FILE"; }
runtime_running() { local c; c=$(docker_container) && "$API" running "$c"; }
runtime_deployed() { [ -s "$CONTAINER_FILE" ]; }
# docker_port: the port the serving container listens on.
docker_port() {
  local p=""
  read -r p <"$CONTAINER_FILE.port" 2>/dev/null || true
  echo "${p:-$ODOOOPS_HTTP_PORT}"
}

# runtime_prepare: builds the image of the checked-out revision; pushes it
# when a registry is configured. Exports ODOOOPS_IMAGE and
# ODOOOPS_CONTAINER_ADDONS_PATH.
runtime_prepare() {
  local sha repo_name tag addons_path
  sha=${ODOOOPS_RESOLVED_SHA:?the checkout step must run first}
  repo_name=${ODOOOPS_REGISTRY:+${ODOOOPS_REGISTRY%/}/}odooops-$ODOOOPS_PROJECT
  tag=$repo_name:${sha:0:12}
  rm -rf image && mkdir -p image/src
  git -C src archive "$sha" 3>&- | tar -x -C image/src
  cat >image/Dockerfile <<DOCKERFILE
FROM $ODOOOPS_ODOO_IMAGE
COPY src /mnt/extra-addons/$ODOOOPS_PROJECT
LABEL org.odooops.project="$ODOOOPS_PROJECT" org.odooops.revision="$sha"
DOCKERFILE
  echo "building $tag from $ODOOOPS_ODOO_IMAGE via $DOCKER_HOST"
  "$API" build "$tag" image
  if [ -n "${ODOOOPS_REGISTRY:-}" ]; then
    "$API" push "$tag"
  fi
  addons_path=$(python3 -c 'import json,sys; print(",".join("/mnt/extra-addons/%s/%s" % (sys.argv[2], p) if p != "." else "/mnt/extra-addons/" + sys.argv[2] for p in json.load(open(sys.argv[1]))["addons_paths"]))' \
    "$ODOOOPS_WORKSPACE/addons.json" "$ODOOOPS_PROJECT")
  export_env ODOOOPS_IMAGE "$tag"
  export_env ODOOOPS_CONTAINER_ADDONS_PATH "$addons_path"
  meta_fields image="$tag" base_image="$ODOOOPS_ODOO_IMAGE" pushed?="$([ -n "${ODOOOPS_REGISTRY:-}" ] && echo true || echo false)"
  artifact image image location "$tag"
  # requirements.txt: the image's Python packages are the base image's.
  if [ "$(python3 -c 'import json, sys; print(sum(len(r["packages"]) for r in json.load(open(sys.argv[1])).get("requirements", [])))' "$ODOOOPS_WORKSPACE/addons.json")" != 0 ]; then
    warn "requirements.txt is NOT installed by the docker runtime: Odoo runs on the Python packages of $ODOOOPS_ODOO_IMAGE (docs/runtimes.md)"
    meta_fields python_env.status=not-installed python_env.reason="the docker runtime installs no requirements.txt"
  fi
}

# docker_base_cmd ADDONS_PATH: sets BASE_CMD, the odoo command of the
# environment's containers (its database, as the environment's role).
docker_base_cmd() {
  BASE_CMD=(odoo --database "$ODOOOPS_DB_NAME" --db_host "${ODOOOPS_DOCKER_DB_HOST:-127.0.0.1}" --db_port "$ODOOOPS_DB_PORT"
            --addons-path "$1" --data-dir /var/lib/odoo --db_user "$ENV_ROLE")
}

# docker_spec CMD...: the container JSON spec. The role's password reaches
# libpq in the container as PGPASSWORD (read from the secret file here, not
# on any command line).
docker_spec() {
  python3 - "$DATA_DIR" "$ODOOOPS_PROJECT" "$ODOOOPS_ENVIRONMENT" "$ROLE_SECRET" "$@" <<'PY'
import json, sys
data, project, env, secret, cmd = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:]
password = open(secret).read().strip()
print(json.dumps({"cmd": cmd, "network": "host", "binds": [data + ":/var/lib/odoo"],
                  "env": ["PGPASSWORD=" + password],
                  "labels": {"org.odooops.project": project, "org.odooops.environment": env}}))
PY
}

# runtime_start: installs/updates modules with a one-off container
# (--stop-after-init) while the previous container still serves, then
# starts a container of the new image: behind the proxy beside the serving
# one, on the port that one does not use (<env>/container.next; the switch
# follows the health check); else in its place (the old one goes first).
runtime_start() {
  # A rebuild (ops.rebuild_environment) replaces the database while the
  # container runtime installs beside the running container: not supported.
  [ "$(json_get "${ODOOOPS_RUN_METADATA:-}" rebuild)" != true ] ||
    die "rebuild is supported by the process runtime only: destroy the environment and push again"
  local tag addons_path name old to_init to_update demo args init code new cid port beside=false
  tag=${ODOOOPS_IMAGE:?the release step must run first}
  addons_path=${ODOOOPS_CONTAINER_ADDONS_PATH:?}
  mkdir -p "$DATA_DIR" "$LOGDIR"
  # The image's odoo user (uid 101 in odoo:17) writes the filestore; the
  # environment directory above it is the worker's alone (0700), so no other
  # user of the host reaches it.
  chmod 700 "$ENV_DIR"
  chmod 0777 "$DATA_DIR"
  docker_base_cmd "$addons_path"
  # The container connects with the environment's role only (it cannot
  # create databases: the database is made the role's first).
  env_db_prepare
  name=odooops-$ODOOOPS_PROJECT-$ODOOOPS_ENVIRONMENT
  old=$(docker_container || true)

  read -r to_init to_update < <(modules_plan)
  if [ "$to_init" != "-" ] || [ "$to_update" != "-" ]; then
    mapfile -t demo < <(demo_flags)
    args=()
    [ "$to_init" != "-" ] && args+=(-i "$to_init")
    [ "$to_update" != "-" ] && args+=(-u "$to_update")
    init=$name-init-$ODOOOPS_RUN_ID
    "$API" remove "$init"
    echo "module installation/update in container $init: ${args[*]}"
    "$API" run "$init" "$tag" "$(docker_spec "${BASE_CMD[@]}" "${args[@]}" --stop-after-init "${demo[@]}")" >/dev/null
    code=0; "$API" wait "$init" || code=$?
    "$API" logs "$init" 30 | sed 's/^/  init: /'
    "$API" remove "$init"
    [ "$code" = 0 ] || die "module installation/update failed in container $init (exit code $code)"
  else
    echo "no module to install or update"
  fi
  modules_meta "$to_init" "$to_update"

  port=$ODOOOPS_HTTP_PORT
  if [ -n "$old" ] && proxy_enabled && [ -n "${ODOOOPS_NEXT_HTTP_PORT:-}" ] && "$API" running "$old"; then
    beside=true
    [ "$(docker_port)" != "$ODOOOPS_HTTP_PORT" ] || port=$ODOOOPS_NEXT_HTTP_PORT
    echo "the serving container $old keeps serving until the new one passes its health check"
  elif [ -n "$old" ]; then
    echo "removing the previous container $old"
    "$API" remove "$old"
  fi
  new=$name-${ODOOOPS_RESOLVED_SHA:0:12}-r$ODOOOPS_RUN_ID
  "$API" remove "$new"
  cid=$("$API" run "$new" "$tag" "$(docker_spec "${BASE_CMD[@]}" --http-port "$port" --http-interface "${ODOOOPS_HTTP_INTERFACE:-127.0.0.1}")")
  if [ "$beside" = true ]; then
    echo "$new" >"$CONTAINER_FILE.next" && echo "$port" >"$CONTAINER_FILE.next.port"
  else
    echo "$new" >"$CONTAINER_FILE" && echo "$port" >"$CONTAINER_FILE.port"
    echo "$addons_path" >"$CONTAINER_FILE.addons"
    proxy_route "$port"
  fi
  echo "started container $new (${cid:0:12}) on port $port"
  export_env ODOOOPS_CONTAINER "$new"
}

# docker_health NAME PORT: the health check (health_probe: this
# environment's Odoo on its database, ODOOOPS_DB_NAME) of container NAME on
# PORT until it passes; on failure the container's last log lines explain
# why.
docker_health() {
  local name=$1 port=$2 seen="" rc i
  for i in $(seq 1 "${ODOOOPS_HEALTH_TRIES:-120}"); do
    rc=0; seen=$(health_probe "http://127.0.0.1:$port") || rc=$?
    if [ "$rc" = 0 ]; then
      echo "health check passed after $i attempt(s): $seen"
      return 0
    fi
    if [ "$rc" = 2 ]; then
      echo "health check failed: $seen" >&2
      return 1
    fi
    if ! "$API" running "$name"; then
      echo "container $name exited; its last log lines:" >&2
      "$API" logs "$name" 20 >&2
      return 1
    fi
    sleep 0.5
  done
  echo "the health check did not pass (last: ${seen:-none}); last log lines of $name:" >&2
  "$API" logs "$name" 20 >&2
  return 1
}

# runtime_health: the health check of the container runtime_start started
# (the one beside the serving one, if any), on its port.
runtime_health() {
  local name port
  if [ -s "$CONTAINER_FILE.next" ]; then
    name=$(cat "$CONTAINER_FILE.next")
    read -r port <"$CONTAINER_FILE.next.port"
  else
    name=$(docker_container || true)
    port=$(docker_port)
  fi
  [ -n "$name" ] || die "no container runs for ${ODOOOPS_ENVIRONMENT}"
  docker_health "$name" "$port"
}

# runtime_switch: a container started beside the serving one takes over:
# the proxy routes to it, and the old one goes after --proxy-drain seconds,
# time for the requests it still answers. (Without the proxy the new
# container already replaced the old one.) Records the URL.
runtime_switch() {
  local new old port url
  if [ -s "$CONTAINER_FILE.next" ]; then
    new=$(cat "$CONTAINER_FILE.next")
    read -r port <"$CONTAINER_FILE.next.port"
    old=$(docker_container || true)
    proxy_route "$port"
    mv "$CONTAINER_FILE.next" "$CONTAINER_FILE" && mv "$CONTAINER_FILE.next.port" "$CONTAINER_FILE.port"
    echo "${ODOOOPS_CONTAINER_ADDONS_PATH:?}" >"$CONTAINER_FILE.addons"
    if [ -n "$old" ] && [ "$old" != "$new" ]; then
      echo "the previous container $old finishes its requests (${ODOOOPS_PROXY_DRAIN:-2} s), then goes"
      sleep "${ODOOOPS_PROXY_DRAIN:-2}"
      "$API" remove "$old"
    fi
  fi
  url=$(env_url)
  echo "environment ${ODOOOPS_ENVIRONMENT} serves $url"
  meta_fields url="$url" runtime=docker container="$(docker_container)"
}

# runtime_rollback: after a failed deploy step. A container started beside
# the serving one goes (the proxy never routed to it). When
# 35-restore-backup had swapped in a backup and the previous container was
# not replaced (the module update failed, or it served beside), the
# database and filestore it replaced come back and the previous container
# is started again. Once a new container has replaced the old one, the
# kept database is left for inspection and named.
runtime_rollback() {
  local snapshot=${ODOOOPS_DB_SNAPSHOT:-} old beside=false
  if [ -s "$CONTAINER_FILE.next" ]; then
    beside=true
    echo "removing $(cat "$CONTAINER_FILE.next"), which the proxy never routed to"
    "$API" remove "$(cat "$CONTAINER_FILE.next")"
    rm -f "$CONTAINER_FILE.next" "$CONTAINER_FILE.next.port"
  fi
  if [ -z "$snapshot" ] || ! db_exists "$snapshot"; then
    if [ "$beside" = true ]; then
      meta_fields rolled_back_to="$(docker_container)"
      warn "deploy failed (${ODOOOPS_FAILURE}); ${ODOOOPS_ENVIRONMENT} kept serving the previous container $(docker_container) throughout"
    else
      echo "nothing to roll back (the database was not replaced; failed at ${ODOOOPS_FAILED_STEP})"
    fi
    return 0
  fi
  if [ -n "${ODOOOPS_CONTAINER:-}" ] && [ "$beside" = false ]; then
    warn "deploy failed after its container replaced the previous one; the database before the deploy is kept as $snapshot"
    return 0
  fi
  echo "rolling back after: ${ODOOOPS_FAILURE}"
  old=$(docker_container || true)
  # (the database goes back without connections: a container that served
  # beside the failed one stops for it)
  [ -z "$old" ] || ! "$API" running "$old" || "$API" stop "$old"
  put_back_kept
  if [ -z "$old" ]; then
    warn "deploy failed; no previous container to start again in ${ODOOOPS_ENVIRONMENT}"
    return 0
  fi
  "$API" start "$old"
  health_check "http://127.0.0.1:$(docker_port)" || { "$API" logs "$old" 20 >&2; return 1; }
  meta_fields rolled_back_to="$old"
  warn "deploy failed; ${ODOOOPS_ENVIRONMENT} runs the previous container $old again"
}

# runtime_start_copy DB BOX PORT: a container of the serving container's
# image on the database DB, its filestore in BOX/data, on PORT; labelled as
# the environment's (its destroy removes what a crash may leave), never
# routed by the proxy.
runtime_start_copy() {
  local db=$1 box=$2 port=$3 serving image name
  serving=$(docker_container) || die "no container deployed in ${ODOOOPS_ENVIRONMENT}"
  image=$("$API" image "$serving")
  name=odooops-$ODOOOPS_PROJECT-$ODOOOPS_ENVIRONMENT-copy-r$ODOOOPS_RUN_ID
  chmod 0777 "$box/data"
  ODOOOPS_DB_NAME=$db docker_base_cmd "$(cat "$CONTAINER_FILE.addons")"
  "$API" remove "$name"
  "$API" run "$name" "$image" "$(DATA_DIR=$box/data docker_spec "${BASE_CMD[@]}" --http-port "$port" --http-interface 127.0.0.1)" >/dev/null
  echo "$name" >"$box/container"
  echo "started container $name of image ${image#sha256:} on the copy $db, port $port"
  ODOOOPS_DB_NAME=$db docker_health "$name" "$port"
}
runtime_stop_copy() { if [ -s "$1/container" ]; then "$API" remove "$(cat "$1/container")"; fi; }

# runtime_serve_release: a container of the prepared image (ODOOOPS_IMAGE)
# serves on the database in place, on the environment's port, in place of
# the serving one, which is kept (stopped, <env>/container.previous) until
# the new one passes its health check.
runtime_serve_release() {
  local tag=${ODOOOPS_IMAGE:?the release step must run first} addons=${ODOOOPS_CONTAINER_ADDONS_PATH:?} old new
  old=$(docker_container || true)
  if [ -n "$old" ]; then
    "$API" stop "$old" || true
    cp "$CONTAINER_FILE" "$CONTAINER_FILE.previous"
    docker_port >"$CONTAINER_FILE.previous.port"
  fi
  mkdir -p "$DATA_DIR" && chmod 0777 "$DATA_DIR"
  docker_base_cmd "$addons"
  new=odooops-$ODOOOPS_PROJECT-$ODOOOPS_ENVIRONMENT-${ODOOOPS_RESOLVED_SHA:0:12}-r$ODOOOPS_RUN_ID
  "$API" remove "$new"
  "$API" run "$new" "$tag" "$(docker_spec "${BASE_CMD[@]}" --http-port "$ODOOOPS_HTTP_PORT" --http-interface "${ODOOOPS_HTTP_INTERFACE:-127.0.0.1}")" >/dev/null
  echo "$new" >"$CONTAINER_FILE" && echo "$ODOOOPS_HTTP_PORT" >"$CONTAINER_FILE.port" && echo "$addons" >"$CONTAINER_FILE.addons"
  echo "started container $new of $tag on port $ODOOOPS_HTTP_PORT"
  proxy_route "$ODOOOPS_HTTP_PORT"
  docker_health "$new" "$ODOOOPS_HTTP_PORT" || return 1
  if [ -n "$old" ]; then
    "$API" remove "$old"
    rm -f "$CONTAINER_FILE.previous" "$CONTAINER_FILE.previous.port"
    echo "removed the previous container $old"
  fi
}
# runtime_serve_previous: the container that served before is the
# environment's again (stopped: runtime_start_again starts it); the new one goes.
runtime_serve_previous() {
  local cur previous
  cur=$(docker_container || true)
  [ -s "$CONTAINER_FILE.previous" ] || { [ -z "$cur" ] || "$API" stop "$cur" || true; return 0; }
  previous=$(cat "$CONTAINER_FILE.previous")
  [ -z "$cur" ] || [ "$cur" = "$previous" ] || "$API" remove "$cur"
  mv "$CONTAINER_FILE.previous" "$CONTAINER_FILE" && mv "$CONTAINER_FILE.previous.port" "$CONTAINER_FILE.port"
  echo "container $previous is the environment's again"
}

# runtime_stop: the serving container stops; a container a deploy started
# beside it and never switched to (the worker stopped in between) goes.
runtime_stop() {
  local c
  c=$(docker_container || true)
  [ -z "$c" ] || "$API" stop "$c" || true
  if [ -s "$CONTAINER_FILE.next" ]; then
    "$API" remove "$(cat "$CONTAINER_FILE.next")" || true
    rm -f "$CONTAINER_FILE.next" "$CONTAINER_FILE.next.port"
  fi
}

# runtime_start_again: the stopped container starts again and is
# health-checked.
runtime_start_again() {
  local name; name=$(docker_container) || die "no container deployed in ${ODOOOPS_ENVIRONMENT}"
  "$API" start "$name"
  health_check "http://127.0.0.1:$(docker_port)" || { "$API" logs "$name" 20 >&2; return 1; }
}

# runtime_destroy: removes the environment's containers (its server and any
# one-off container left by a module update), then the images they ran
# unless another container still runs them (images are per project and
# revision, shared by its environments).
runtime_destroy() {
  local images=() name image code
  while read -r name image; do
    [ -n "$name" ] || continue
    "$API" remove "$name"
    echo "removed container $name"
    [[ " ${images[*]} " == *" $image "* ]] || images+=("$image")
  done < <("$API" containers "org.odooops.project=$ODOOOPS_PROJECT" "org.odooops.environment=$ODOOOPS_ENVIRONMENT")
  for image in "${images[@]}"; do
    code=0; "$API" remove-image "$image" || code=$?
    case $code in
      0) echo "removed image ${image#sha256:}" ;;
      3) echo "kept image ${image#sha256:}: another environment's container runs it" ;;
      *) return "$code" ;;
    esac
  done
  rm -f "$CONTAINER_FILE" "$CONTAINER_FILE".{addons,port,next,next.port,previous,previous.port}
}

# runtime_logs [--follow] [--grep RE]: the serving container's output (its
# Odoo server log): the last 200 lines, then, with --follow, what follows.
runtime_logs() {
  runtime_log_args "$@"
  local name; name=$(docker_container) || die "no container deployed in ${ODOOOPS_ENVIRONMENT:-$ENV_DIR}"
  if [ "$LOG_FOLLOW" = true ]; then
    "$API" follow "$name" 200 | runtime_log_grep
  else
    "$API" logs "$name" 200 | runtime_log_grep
  fi
}

# runtime_shell: `odoo shell` inside the serving container, on the
# environment's database as its role (the container's PGPASSWORD), through
# the docker command (or podman's, against the same $DOCKER_HOST).
runtime_shell() {
  local name cli tty=()
  name=$(docker_container) || die "no container deployed in ${ODOOOPS_ENVIRONMENT:-$ENV_DIR}"
  if command -v docker >/dev/null; then cli=(docker --host "${DOCKER_HOST:-unix:///var/run/docker.sock}")
  elif command -v podman >/dev/null; then cli=(podman --remote --url "${DOCKER_HOST:-unix:///run/podman/podman.sock}")
  else die "the docker runtime's shell needs the docker (or podman) command on this host"; fi
  docker_base_cmd "$(cat "$CONTAINER_FILE.addons" 2>/dev/null || echo /mnt/extra-addons)"
  [ -t 0 ] && tty=(-t)
  exec "${cli[@]}" exec -i "${tty[@]}" "$name" "${BASE_CMD[0]}" shell "${BASE_CMD[@]:1}" --no-http
}

runtime_psql() { env_psql "$@"; }
