# shellcheck shell=bash disable=SC2034
# The reverse proxy of the end-to-end tests, sourced after tests/e2e/lib.sh:
# a real Caddy on loopback, run as an operator runs it (its Caddyfile
# imports the directory the worker writes; a hostname it does not know gets
# a 404), requests through it, and a probe that requests a page every 50 ms
# (a redeploy must fail none of them).

# start_proxy: Caddy on free ports, its site files in $PROXY/sites; the
# lines of PROXY_OPTIONS are added to its global options (without an ACME
# CA among them, automatic HTTPS is off).
start_proxy() {
  PROXY=$WORK/proxy
  mkdir -p "$PROXY/sites" "$PROXY/home"
  PROXY_PORT=$(free_port)
  local admin_port line globals=""
  admin_port=$(free_port)
  while read -r line; do [ -z "$line" ] || globals+=$'\t'"$line"$'\n'; done <<<"${PROXY_OPTIONS:-}"
  [[ $globals == *acme_ca* ]] || globals+=$'\tauto_https off\n'
  cat >"$PROXY/Caddyfile" <<CADDY
{
	admin 127.0.0.1:$admin_port
	http_port $PROXY_PORT
$globals}
http:// {
	respond "no environment here" 404
}
import $PROXY/sites/*.caddy
CADDY
  HOME=$PROXY/home XDG_DATA_HOME=$PROXY/home XDG_CONFIG_HOME=$PROXY/home \
    caddy run --config "$PROXY/Caddyfile" --adapter caddyfile >"$WORK/caddy.log" 2>&1 &
  EXTRA_CLEANUP+=("kill $! 2>/dev/null")
  for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$PROXY_PORT/" && return 0; sleep 0.1; done
  fail "caddy did not start: $(tail -n 5 "$WORK/caddy.log")"
}

# via HOST PATH [curl flags...]: a request through the proxy.
via() {
  local host=$1 path=$2; shift 2
  curl -sS --max-time 10 --resolve "$host:$PROXY_PORT:127.0.0.1" "$@" "http://$host:$PROXY_PORT$path"
}
# code_via HOST PATH [curl flags...]: the status code of that request.
code_via() { via "$1" "$2" -o /dev/null -w '%{http_code}' "${@:3}" || true; }

# probe_start HOST: requests through the proxy every 50 ms until probe_stop,
# which sets failed and total.
probe_start() {
  PROBE_DIR=$(mktemp -d "$WORK/probe.XXXXXX")
  ( while [ ! -f "$PROBE_DIR/stop" ]; do
      code_via "$1" /web/login >>"$PROBE_DIR/codes"
      echo >>"$PROBE_DIR/codes"
      sleep 0.05
    done ) &
  PROBE_PID=$!
}
probe_stop() {
  touch "$PROBE_DIR/stop"; wait "$PROBE_PID"
  failed=$(grep -vc '^200$' "$PROBE_DIR/codes" || true)
  total=$(wc -l <"$PROBE_DIR/codes")
}
# probe_codes: the codes the probe saw, counted.
probe_codes() { sort "$PROBE_DIR/codes" | uniq -c | tr '\n' ' '; }
