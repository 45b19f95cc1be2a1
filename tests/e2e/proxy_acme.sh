#!/usr/bin/env bash
# HTTPS from an ACME CA (--proxy-tls acme): a real Caddy, configured as an
# operator does for Let's Encrypt but pointed at Pebble, the ACME server
# Let's Encrypt publishes for tests (run here on loopback; it cannot reach
# this machine's ports to validate, so it accepts every challenge). The
# environment's hostname gets a certificate issued by that CA over the
# ACME protocol, HTTPS serves it with the whole chain, plain HTTP
# redirects to HTTPS, and the run records the https URL.
source "$(dirname "$0")/lib.sh"
source "$ROOT/tests/harness/proxy_lib.sh"
command -v caddy >/dev/null || fail "caddy is not installed (tests/harness/deps.sh)"
command -v pebble >/dev/null || fail "pebble is not installed (tests/harness/deps.sh)"
setup_control_plane

# The ACME CA: its HTTPS listener's certificate from a throwaway local CA,
# which Caddy is told to trust for talking to it (acme_ca_root).
ACME=$WORK/acme
mkdir -p "$ACME"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=odooops e2e local CA" \
  -keyout "$ACME/ca.key" -out "$ACME/ca.pem" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout "$ACME/key.pem" -out "$ACME/req.pem" 2>/dev/null
openssl x509 -req -in "$ACME/req.pem" -CA "$ACME/ca.pem" -CAkey "$ACME/ca.key" -CAcreateserial -days 2 \
  -extfile <(printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n') -out "$ACME/cert.pem" 2>/dev/null
ACME_PORT=$(free_port); ACME_ADMIN=$(free_port)
cat >"$ACME/pebble.json" <<JSON
{"pebble": {"listenAddress": "127.0.0.1:$ACME_PORT", "managementListenAddress": "127.0.0.1:$ACME_ADMIN",
  "certificate": "$ACME/cert.pem", "privateKey": "$ACME/key.pem",
  "httpPort": $(free_port), "tlsPort": $(free_port), "ocspResponderURL": "", "externalAccountBindingRequired": false}}
JSON
PEBBLE_VA_ALWAYS_VALID=1 PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=0 pebble -config "$ACME/pebble.json" >"$WORK/pebble.log" 2>&1 &
EXTRA_CLEANUP+=("kill $! 2>/dev/null")
for _ in $(seq 1 100); do curl -sf --cacert "$ACME/ca.pem" -o /dev/null "https://127.0.0.1:$ACME_PORT/dir" && break; sleep 0.1; done
curl -sf --cacert "$ACME/ca.pem" -o /dev/null "https://127.0.0.1:$ACME_PORT/dir" || fail "pebble did not start: $(tail -n 5 "$WORK/pebble.log")"

TLS_PORT=$(free_port)
PROXY_OPTIONS="https_port $TLS_PORT
acme_ca https://127.0.0.1:$ACME_PORT/dir
acme_ca_root $ACME/ca.pem
email ops@odoo.test
ocsp_stapling off
skip_install_trust"
start_proxy
start_worker w1 --kinds deploy --public-domain odoo.test --proxy-config "$PROXY/Caddyfile" \
  --proxy-sites "$PROXY/sites" --proxy-tls acme
H=staging.acme.odoo.test

staging=$(queue staging deploy); wait_status "$staging" succeeded 90
[ "$(result "$staging" url)" = "https://$H" ] || fail "staging recorded url $(result "$staging" url)"

# The chain ends at the CA's root of this run (Pebble makes a new one each start).
curl -sf --cacert "$ACME/ca.pem" "https://127.0.0.1:$ACME_ADMIN/roots/0" >"$ACME/root.pem" || fail "no root from pebble"
https_get() { curl -sS --max-time 10 --cacert "$ACME/root.pem" --resolve "$H:$TLS_PORT:127.0.0.1" "$@" "https://$H:$TLS_PORT/standin/info"; }
for _ in $(seq 1 120); do https_get -o /dev/null 2>/dev/null && break; sleep 0.5; done
https_get | has '"database": "e2e_proxy_acme_staging"' \
  || fail "no HTTPS with the ACME certificate: $(https_get 2>&1 | tail -n 2); caddy: $(grep -i 'error\|obtain' "$WORK/caddy.log" | tail -n 3)"
issuer=$(openssl s_client -connect "127.0.0.1:$TLS_PORT" -servername "$H" </dev/null 2>/dev/null | openssl x509 -noout -issuer -ext subjectAltName)
grep -qi pebble <<<"$issuer" || fail "the certificate was not issued by the ACME CA: $issuer"
grep -q "DNS:$H" <<<"$issuer" || fail "the certificate does not name $H: $issuer"
say "https://$H: a certificate for $H issued over ACME, chain verified to the CA's root"

redirect=$(curl -sS -o /dev/null -w '%{http_code} %{redirect_url}' --resolve "$H:$PROXY_PORT:127.0.0.1" "http://$H:$PROXY_PORT/web/login")
[[ $redirect == 308\ https://$H* ]] || fail "plain HTTP does not redirect to HTTPS: $redirect"
say "http://$H redirects to HTTPS"
say "PASS"
