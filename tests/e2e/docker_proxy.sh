#!/usr/bin/env bash
# The docker runtime behind the reverse proxy: production runs as a
# container (podman's Docker Engine API, the stand-in image), reached as
# production.acme.<domain> through a real Caddy. A redeploy starts the new
# container beside the serving one, on the environment's other port, and
# switches the proxy to it once it is healthy: a probe sees no failed
# request. A redeploy whose container does not start leaves the old one
# serving, again without a failed request; a destroyed environment is no
# longer routed.
source "$(dirname "$0")/lib.sh"
source "$ROOT/tests/harness/proxy_lib.sh"
command -v caddy >/dev/null || fail "caddy is not installed (tests/harness/deps.sh)"
use_podman
setup_control_plane
cp_psql -c "INSERT INTO ops.runtime_profiles (name, runtime, description) VALUES ('docker', 'docker', 'containers');
            UPDATE ops.environments SET runtime_profile = 'docker' WHERE name = 'production'" >/dev/null
start_proxy
start_worker dock --docker-host "$DOCKER_HOST" --odoo-image localhost/odoo-standin:17 --odoo-db-host 127.0.0.1 \
  --storage "file://$WORK/backups" --public-domain odoo.test --proxy-config "$PROXY/Caddyfile" \
  --proxy-sites "$PROXY/sites" --proxy-tls off --proxy-drain 1
H=production.acme.odoo.test
PROD=e2e_docker_proxy_prod
ENVD=$STATE/envs/acme/production

run=$(queue production deploy); wait_status "$run" succeeded 240
[ "$(result "$run" url)" = "http://$H" ] || fail "production recorded url $(result "$run" url)"
via "$H" /standin/info | has "\"database\": \"$PROD\"" || fail "$H does not reach production: $(via "$H" /standin/info)"
first=$(cat "$ENVD/container"); port1=$(cat "$ENVD/container.port")
say "deploy $run: container $first on port $port1, served as http://$H"

# A redeploy that updates a module: the new container starts beside the
# serving one and takes over; not one request fails meanwhile.
sed -i 's/17.0.1.0.0/17.0.1.1.0/' "$REPO/addons/acme_stock/__manifest__.py"
commit "acme_stock 1.1"
probe_start "$H"
run2=$(queue production deploy); wait_status "$run2" succeeded 240
sleep 1
probe_stop
second=$(cat "$ENVD/container"); port2=$(cat "$ENVD/container.port")
[ "$first" != "$second" ] || fail "the redeploy did not replace the container $first"
[ "$port1" != "$port2" ] || fail "the new container did not start beside the old one (both on port $port1)"
pm container exists "$first" && fail "the previous container $first still exists after the switch"
[ "$total" -ge 20 ] || fail "the probe sent only $total requests"
[ "$failed" = 0 ] || fail "$failed of $total requests through the proxy failed during the redeploy: $(probe_codes)"
[ "$(result "$run2" modules,updated)" = '["acme_stock"]' ] || fail "the redeploy did not update acme_stock"
scalar "SELECT message FROM ops.run_events WHERE run_id = $run2" | has "keeps serving until the new one passes" \
  || fail "redeploy $run2 did not start its container beside the serving one"
via "$H" /standin/info | has "\"database\": \"$PROD\"" || fail "$H does not reach the new container"
say "redeploy $run2: $total requests through the proxy, 0 failed; $first (port $port1) replaced by $second (port $port2)"

# A redeploy whose container cannot start (the stand-in refuses the
# database at start-up; the serving one started before the marker): the
# health check fails, the new container goes, the old one serves throughout.
psql -X -q -d "$PROD" -c "INSERT INTO ir_config_parameter (key, value) VALUES ('standin.fail_start', 'true')"
probe_start "$H"
broken=$(queue production deploy); wait_status "$broken" failed 240
probe_stop
psql -X -q -d "$PROD" -c "DELETE FROM ir_config_parameter WHERE key = 'standin.fail_start'"
[[ $(scalar "SELECT error FROM ops.runs WHERE id = $broken") == "step deploy/50-health"* ]] \
  || fail "broken redeploy $broken: $(scalar "SELECT error FROM ops.runs WHERE id = $broken")"
[ "$failed" = 0 ] || fail "$failed of $total requests failed during the failed redeploy: $(probe_codes)"
[ "$(cat "$ENVD/container")" = "$second" ] || fail "the serving container $second was replaced"
pm container exists "$second" || fail "the serving container $second is gone"
[ ! -e "$ENVD/container.next" ] || fail "the failed deploy's container is still recorded"
[ "$(pm ps -aq --filter label=org.odooops.environment=production | wc -l)" = 1 ] \
  || fail "containers left by the failed redeploy: $(pm ps -a --filter label=org.odooops.environment=production)"
[ "$(result "$broken" rolled_back_to)" = "$second" ] || fail "the failed redeploy did not record that $second kept serving"
[ "$(code_via "$H" /web/login)" = 200 ] || fail "$H does not answer after the failed redeploy"
say "failed redeploy $broken: $total requests, 0 failed; $second still serves"

# A deploy that stopped between starting its container beside the serving
# one and switching (the worker was killed): a stop of the environment
# (runtime.sh stop, as a restore stops it) takes that container too.
penv=(ODOOOPS_RUNTIME=docker ODOOOPS_STATE_DIR="$STATE" ODOOOPS_ENV_DIR="$ENVD"
      ODOOOPS_ENVIRONMENT=production ODOOOPS_ENVIRONMENT_ID=1 ODOOOPS_DB_NAME="$PROD"
      ODOOOPS_DB_HOST=127.0.0.1 ODOOOPS_DB_PORT="$PGPORT" DOCKER_HOST="$DOCKER_HOST")
stale=odooops-acme-production-stale
pm run -d --name "$stale" --label org.odooops.environment=production --entrypoint sleep localhost/odoo-standin:17 600 >/dev/null
echo "$stale" >"$ENVD/container.next" && echo 1 >"$ENVD/container.next.port"
env "${penv[@]}" "$ROOT/worker/steps/lib/runtime.sh" stop || fail "runtime.sh stop failed"
pm container exists "$stale" && fail "runtime.sh stop left the container $stale a deploy had started beside"
[ ! -e "$ENVD/container.next" ] || fail "runtime.sh stop left container.next"
env "${penv[@]}" "$ROOT/worker/steps/lib/runtime.sh" start-again >/dev/null || fail "runtime.sh start-again failed"
[ "$(code_via "$H" /web/login)" = 200 ] || fail "$H does not answer after start-again"
say "a stop takes the container a deploy left beside the serving one"

# Destroyed (after an approval and a final backup): no longer routed.
d=$(scalar "SELECT id FROM ops.destroy_environment(1, 'production', 'end-to-end test')")
approve_destroy "$d"
wait_status "$d" succeeded 180
[ "$(code_via "$H" /web/login)" = 404 ] || fail "the destroyed production is still routed"
[ -z "$(ls "$PROXY/sites")" ] || fail "site files left: $(ls "$PROXY/sites")"
say "destroyed production: 404 from the proxy"
say "PASS"
