# shellcheck shell=bash
# The reverse proxy in front of the environments (docs/hostnames.md): Caddy,
# run by the operator with a Caddyfile (--proxy-config) that imports the
# directory the worker writes (--proxy-sites), one site file per
# environment. Each environment is served as <env>.<project>.<domain>
# (--public-domain), a production environment also under the custom domains
# of its settings.domains; Odoo's websocket route (/websocket) goes to the
# environment's websocket port. Every change is applied with `caddy reload`,
# which swaps the configuration without dropping a connection.
# Without --proxy-config the helpers do nothing: environments are reached on
# their ports. Needs lib/common.sh.

# The proxy routes to the runtimes that say they can be routed to
# (lib/runtime.sh runtime_behind_proxy); steps that do not load a runtime
# never route.
proxy_enabled() { [ -n "${ODOOOPS_PROXY_CONFIG:-}" ] && declare -F runtime_behind_proxy >/dev/null && runtime_behind_proxy; }

# host_label TEXT: TEXT as one DNS label (lower case, letters, digits and
# inner hyphens, at most 63 characters).
host_label() {
  local l; l=$(printf '%s' "$1" | tr '[:upper:]' '[:lower:]' | tr -c 'a-z0-9-' '-' | sed 's/^-*//; s/-*$//')
  l=${l:0:63}; l=${l%%-}
  [ -n "$l" ] || die "\"$1\" makes no host name label"
  printf '%s\n' "$l"
}

# valid_hostname NAME: a DNS name of letters, digits and inner hyphens.
valid_hostname() {
  local name=$1 label
  [ ${#name} -ge 1 ] && [ ${#name} -le 253 ] || return 1
  IFS=. read -ra labels <<<"$name"
  [[ $name != .* && $name != *. && $name != *..* ]] || return 1
  for label in "${labels[@]}"; do
    [[ $label =~ ^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$ ]] || return 1
  done
}

# env_hostnames: the hostnames of this environment, one a line: the one the
# project template gives, then a production environment's custom domains
# (settings.domains, at most 20, each a host name).
env_hostnames() {
  printf '%s.%s.%s\n' "$(host_label "$ODOOOPS_ENVIRONMENT")" "$(host_label "$ODOOOPS_PROJECT")" "$ODOOOPS_PUBLIC_DOMAIN"
  python3 - "$ODOOOPS_ENV_SETTINGS" "$ODOOOPS_STAGE" <<'PY' || exit 1
import json, sys
domains = json.loads(sys.argv[1] or "{}").get("domains")
if domains is None:
    sys.exit(0)
if sys.argv[2] != "production":
    sys.exit("settings.domains: custom domains are for production environments; this one is %s" % sys.argv[2])
if not isinstance(domains, list) or len(domains) > 20 or not all(isinstance(d, str) and 0 < len(d) <= 253 for d in domains):
    sys.exit("settings.domains must be a list of at most 20 host names")
for d in domains:
    print(d.lower())
PY
}

# env_url: the URL the environment is reached at: through the proxy, its
# template hostname; else its port on --public-host.
env_url() {
  if proxy_enabled; then
    local scheme=https; [ "$ODOOOPS_PROXY_TLS" = off ] && scheme=http
    printf '%s://%s\n' "$scheme" "$(env_hostnames | head -n 1)"
  else
    printf 'http://%s:%s\n' "${ODOOOPS_PUBLIC_HOST:-127.0.0.1}" "$ODOOOPS_HTTP_PORT"
  fi
}

# The site file of this environment (ids: unique, and safe as a file name).
PROXY_SITE=${ODOOOPS_PROXY_SITES:-}/odooops-${ODOOOPS_PROJECT_ID:-0}-${ODOOOPS_ENVIRONMENT_ID:-0}.caddy

# basic_auth_lines: the basicauth block of a non-production environment
# whose settings.basic_auth is {"user": ..., "password_hash": ...} (the
# hash as `caddy hash-password` prints it: the password itself is never
# stored). Production is never behind basic auth.
basic_auth_lines() {
  python3 - "$ODOOOPS_ENV_SETTINGS" "$ODOOOPS_STAGE" <<'PY' || exit 1
import json, re, sys
auth = json.loads(sys.argv[1] or "{}").get("basic_auth")
if auth is None:
    sys.exit(0)
if sys.argv[2] == "production":
    sys.exit("settings.basic_auth: a production environment is public; basic auth is for the other stages")
if not isinstance(auth, dict) or set(auth) != {"user", "password_hash"}:
    sys.exit('settings.basic_auth must be {"user": "...", "password_hash": "..."} (caddy hash-password)')
user, pw = auth["user"], auth["password_hash"]
if not isinstance(user, str) or not re.fullmatch(r"[A-Za-z0-9._@-]{1,64}", user):
    sys.exit("settings.basic_auth.user: 1 to 64 letters, digits or ._@-")
if not isinstance(pw, str) or not re.fullmatch(r"[A-Za-z0-9+/=$.]{20,200}", pw):
    sys.exit("settings.basic_auth.password_hash: the output of caddy hash-password")
print("\tbasicauth {\n\t\t%s %s\n\t}" % (user, pw))
PY
}

# proxy_site HTTP_PORT [WEBSOCKET_PORT]: this environment's site, served by
# the Odoo on HTTP_PORT (its websocket server on WEBSOCKET_PORT when it
# runs one: a multi-process Odoo).
proxy_site() {
  local port=$1 ws=${2:-} addresses="" h auth
  local hosts; hosts=$(env_hostnames) || exit 1
  while read -r h; do
    valid_hostname "$h" || die "\"$h\" is not a host name (settings.domains or --public-domain)"
    case $ODOOOPS_PROXY_TLS in
      off) addresses+="http://$h " ;;
      *) addresses+="$h " ;;
    esac
  done <<<"$hosts"
  auth=$(basic_auth_lines) || exit 1
  printf '# %s/%s (%s), written by odooops: changes here are lost.\n' "$ODOOOPS_PROJECT" "$ODOOOPS_ENVIRONMENT" "$ODOOOPS_STAGE"
  printf '%s{\n' "$addresses"
  case $ODOOOPS_PROXY_TLS in
    acme | off) ;;
    *) printf '\ttls %s %s\n' "${ODOOOPS_PROXY_TLS%%,*}" "${ODOOOPS_PROXY_TLS#*,}" ;;
  esac
  [ -z "$auth" ] || printf '%s\n' "$auth"
  if [ -n "$ws" ] && [ "$(odoo_workers)" -gt 0 ]; then
    printf '\t@websocket path /websocket /websocket/*\n\thandle @websocket {\n\t\treverse_proxy 127.0.0.1:%s\n\t}\n' "$ws"
  fi
  printf '\thandle {\n\t\treverse_proxy 127.0.0.1:%s\n\t}\n}\n' "$port"
}

# proxy_reload: Caddy loads the configuration again (one reload at a time
# on this host); fails with Caddy's own message.
proxy_reload() {
  local out
  out=$( (flock 8; caddy reload --config "$ODOOOPS_PROXY_CONFIG" --adapter caddyfile 2>&1) 8>>"$ODOOOPS_PROXY_SITES/.reload.lock") \
    || { printf '%s\n' "$out" | tail -n 5 >&2; return 1; }
}

# proxy_route HTTP_PORT [WEBSOCKET_PORT]: the environment's hostnames go to
# the Odoo on HTTP_PORT from now on. A configuration Caddy refuses is
# taken back (the previous site stays), and the step fails.
proxy_route() {
  proxy_enabled || return 0
  mkdir -p "$ODOOOPS_PROXY_SITES"
  local site; site=$(proxy_site "$@") || exit 1
  [ ! -f "$PROXY_SITE" ] || cp -p "$PROXY_SITE" "$PROXY_SITE.previous"
  printf '%s\n' "$site" >"$PROXY_SITE.tmp" && chmod 644 "$PROXY_SITE.tmp" && mv "$PROXY_SITE.tmp" "$PROXY_SITE"
  if ! proxy_reload; then
    if [ -f "$PROXY_SITE.previous" ]; then mv "$PROXY_SITE.previous" "$PROXY_SITE"; else rm -f "$PROXY_SITE"; fi
    proxy_reload || true
    die "the reverse proxy refused the configuration of ${ODOOOPS_ENVIRONMENT} ($ODOOOPS_PROXY_CONFIG)"
  fi
  rm -f "$PROXY_SITE.previous"
  echo "reverse proxy: $(env_hostnames | paste -sd ' ') -> port $1${2:+ (websocket $2)}"
}

# proxy_unroute: the environment is no longer served by the proxy.
proxy_unroute() {
  proxy_enabled && [ -f "$PROXY_SITE" ] || return 0
  rm -f "$PROXY_SITE" "$PROXY_SITE.previous"
  proxy_reload || die "the reverse proxy did not reload without ${ODOOOPS_ENVIRONMENT} ($ODOOOPS_PROXY_CONFIG)"
  echo "reverse proxy: ${ODOOOPS_ENVIRONMENT} no longer routed"
}
