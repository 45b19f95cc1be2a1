#!/usr/bin/env bash
# Hostnames and the reverse proxy: a real Caddy on loopback, configured by
# the worker (--public-domain, --proxy-config): two environments are served
# under <env>.<project>.<domain>, Odoo's websocket route reaches the
# websocket port of a multi-process environment, a development environment
# sits behind basic auth, a redeploy switches to the new Odoo with no
# failed request (also when it fails: the old one keeps serving), and a
# destroyed environment is no longer routed.
source "$(dirname "$0")/lib.sh"
command -v caddy >/dev/null || fail "caddy is not installed (tests/harness/deps.sh)"
setup_control_plane

# The proxy, as an operator runs it (tests/harness/proxy_lib.sh).
source "$ROOT/tests/harness/proxy_lib.sh"
start_proxy
[ "$(code_via staging.acme.odoo.test /web/health)" = 404 ] || fail "the proxy does not answer 404 for an unknown host"

# The development environment behind basic auth (a hash, never the password).
hash=$(caddy hash-password --plaintext 'e2e-secret')
scalar "UPDATE ops.environments SET settings = settings || jsonb_build_object('basic_auth',
          jsonb_build_object('user', 'tester', 'password_hash', '$hash')) WHERE name = 'dev'" >/dev/null
start_worker w1 --kinds deploy,destroy --public-domain odoo.test --proxy-config "$PROXY/Caddyfile" \
  --proxy-sites "$PROXY/sites" --proxy-tls off --proxy-drain 1

staging=$(queue staging deploy); wait_status "$staging" succeeded 90
dev=$(queue dev deploy); wait_status "$dev" succeeded 90
[ "$(result "$staging" url)" = http://staging.acme.odoo.test ] || fail "staging recorded url $(result "$staging" url)"
[ "$(result "$dev" url)" = http://dev.acme.odoo.test ] || fail "dev recorded url $(result "$dev" url)"
via staging.acme.odoo.test /standin/info | has '"database": "e2e_proxy_staging"' \
  || fail "staging.acme.odoo.test does not reach staging: $(via staging.acme.odoo.test /standin/info)"
via dev.acme.odoo.test /standin/info -u tester:e2e-secret | has '"database": "e2e_proxy_dev"' \
  || fail "dev.acme.odoo.test does not reach dev"
say "two hostnames, two environments: staging and dev reached through the proxy"

[ "$(code_via dev.acme.odoo.test /web/login)" = 401 ] || fail "dev answers without basic auth"
[ "$(code_via dev.acme.odoo.test /web/login -u tester:wrong)" = 401 ] || fail "dev accepts a wrong password"
[ "$(code_via staging.acme.odoo.test /web/login)" = 200 ] || fail "staging (no basic_auth setting) asks for a password"
say "dev is behind basic auth, staging is not"

# Staging runs multi-process (2 workers): /websocket goes to its websocket port.
ws=$(via staging.acme.odoo.test /websocket -i -N --max-time 5 -H 'Connection: Upgrade' -H 'Upgrade: websocket' \
       -H 'Sec-WebSocket-Version: 13' -H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==' 2>/dev/null || true)
head -n 1 <<<"$ws" | has ' 101' || fail "no websocket upgrade through the proxy: $ws"
grep -qi '^Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=' <<<"$ws" || fail "wrong websocket handshake: $ws"
say "websocket upgrade through the proxy: 101 from staging's websocket port"

# A redeploy that updates a module: the new Odoo starts beside the old one,
# is health-checked, and takes over; not one request fails meanwhile.
pid1=$(cat "$STATE/envs/acme/staging/odoo.pid")
sed -i 's/17.0.1.0.0/17.0.1.1.0/' "$REPO/addons/acme_stock/__manifest__.py"
commit "acme_stock 1.1"
probe_start staging.acme.odoo.test
redeploy=$(queue staging deploy); wait_status "$redeploy" succeeded 120
sleep 1
probe_stop
pid2=$(cat "$STATE/envs/acme/staging/odoo.pid")
[ "$pid1" != "$pid2" ] || fail "the redeploy did not replace Odoo process $pid1"
alive "$pid1" && fail "the old Odoo process $pid1 still runs after the switch"
[ "$total" -ge 20 ] || fail "the probe sent only $total requests"
[ "$failed" = 0 ] || fail "$failed of $total requests through the proxy failed during the redeploy: $(probe_codes)"
[ "$(result "$redeploy" modules,updated)" = '["acme_stock"]' ] || fail "the redeploy did not update acme_stock"
via staging.acme.odoo.test /standin/info | has "\"pid\": $pid2" || fail "the proxy does not route to the new Odoo $pid2"
say "redeploy $redeploy: $total requests through the proxy, 0 failed; $pid1 replaced by $pid2"

# A redeploy whose update fails: the old Odoo keeps serving throughout.
touch "$REPO/addons/acme_sale/FAIL_STANDIN_UPDATE"
sed -i 's/17.0.1.0.0/17.0.1.2.0/' "$REPO/addons/acme_sale/__manifest__.py"
commit "acme_sale 1.2, failing update"
probe_start staging.acme.odoo.test
broken=$(queue staging deploy); wait_status "$broken" failed 120
probe_stop
[ "$failed" = 0 ] || fail "$failed of $total requests failed during the failed redeploy"
[ "$(cat "$STATE/envs/acme/staging/odoo.pid")" = "$pid2" ] && alive "$pid2" || fail "the old Odoo $pid2 does not serve any more"
[ ! -f "$STATE/envs/acme/staging/odoo.next.pid" ] || fail "the failed deploy's Odoo is still recorded"
via staging.acme.odoo.test /standin/info | has "\"pid\": $pid2" || fail "the proxy does not route to $pid2 after the failed redeploy"
say "failed redeploy $broken: $total requests, 0 failed; $pid2 still serves"

# A destroyed environment is no longer routed; the other one still is.
d=$(scalar "SELECT id FROM ops.destroy_environment(1, 'dev', 'end-to-end test')"); wait_status "$d" succeeded 60
[ "$(code_via dev.acme.odoo.test /web/login -u tester:e2e-secret)" = 404 ] || fail "the destroyed dev is still routed"
[ "$(code_via staging.acme.odoo.test /web/login)" = 200 ] || fail "staging is no longer routed after dev's destroy"
[ -z "$(ls "$PROXY/sites")" ] || [ "$(ls "$PROXY/sites" | wc -l)" = 1 ] || fail "site files left: $(ls "$PROXY/sites")"
say "destroyed dev: 404 from the proxy; staging still served"
say "PASS"
