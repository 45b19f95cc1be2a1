# shellcheck shell=bash
# The configuration file an environment's Odoo server starts with
# ($ENV_DIR/odoo.conf, `odoo-bin -c`), written before every start from the
# environment's stage, as a production Odoo is configured:
#   - it serves its own database only (db_name, dbfilter ^<db>$) and the
#     database manager is off (list_db = False), with a random master
#     password (admin_passwd) kept as a secret of the worker's;
#   - behind a proxy (proxy_mode), with the limits Odoo documents for
#     production (limit_time_*, limit_memory_*, limit_request);
#   - production runs multi-process: workers = 2 x CPUs + 1 (at most 17),
#     staging 2, development and preview 0 (threaded, as `odoo-bin` alone);
#     settings.odoo_workers (0 to 64) overrides; with workers, Odoo's
#     websocket server listens on the environment's second port
#     (ODOOOPS_WEBSOCKET_PORT, gevent_port);
#   - its log file in the environment's log directory.
# Command-line flags (odoo_flags) still name the database, addons path,
# data directory and credentials; the file holds what the server needs.
# Needs lib/common.sh.

ODOO_CONF=$ENV_DIR/odoo.conf

# odoo_workers: the number of HTTP worker processes of this environment.
odoo_workers() {
  local w; w=$(json_get "$ODOOOPS_ENV_SETTINGS" odoo_workers)
  if [ -n "$w" ]; then
    [[ $w =~ ^[0-9]{1,2}$ ]] && [ "$w" -le 64 ] || die "settings.odoo_workers must be a whole number from 0 to 64, not \"${w:0:20}\""
    echo "$w"
    return 0
  fi
  case $ODOOOPS_STAGE in
    production) local n=$((2 * $(nproc) + 1)); echo $((n > 17 ? 17 : n)) ;;
    staging) echo 2 ;;
    *) echo 0 ;;
  esac
}

# admin_password: the environment's master password, created on first use
# (only the worker reads the secret; the file Odoo reads is the
# environment user's).
admin_password() {
  local secret=$ODOOOPS_STATE_DIR/secrets/$ENV_ROLE.admin_passwd
  if [ ! -s "$secret" ]; then
    (umask 077; mkdir -p "$(dirname "$secret")"
     head -c 32 /dev/urandom | base64 | tr -d '/+=\n' >"$secret.tmp" && mv "$secret.tmp" "$secret")
  fi
  cat "$secret"
}

# odoo_config_write: writes $ODOO_CONF (0640, the environment user's group).
odoo_config_write() {
  local workers; workers=$(odoo_workers)
  local filter; filter=$(printf '%s' "$ODOOOPS_DB_NAME" | sed 's/[][\.*^$+?(){}|]/\\&/g')
  local tmp=$ODOO_CONF.tmp
  (umask 027; cat >"$tmp" <<CONF
; Written by odooops for ${ODOOOPS_PROJECT:-}/${ODOOOPS_ENVIRONMENT:-} (${ODOOOPS_STAGE}) at each start; changes here are lost.
[options]
db_name = $ODOOOPS_DB_NAME
dbfilter = ^$filter\$
list_db = False
admin_passwd = $(admin_password)
proxy_mode = True
workers = $workers
max_cron_threads = $([ "$workers" -gt 0 ] && echo 2 || echo 1)
limit_time_cpu = 600
limit_time_real = 1200
limit_time_real_cron = 1800
limit_memory_soft = 2147483648
limit_memory_hard = 2684354560
limit_request = 65536
logfile = $LOGDIR/odoo.log
CONF
  if [ "$workers" -gt 0 ]; then
    [ -n "${ODOOOPS_WEBSOCKET_PORT:-}" ] || die "a multi-process Odoo needs a websocket port, and the worker gave none"
    echo "gevent_port = $ODOOOPS_WEBSOCKET_PORT" >>"$tmp"
  fi)
  [ -z "$ODOO_OS_USER" ] || chown "root:$ODOO_OS_USER" "$tmp"
  chmod 640 "$tmp" && mv "$tmp" "$ODOO_CONF"
  echo "Odoo configuration: $workers worker(s)$([ "$workers" -gt 0 ] && echo ", websocket on port $ODOOOPS_WEBSOCKET_PORT"), database $ODOOOPS_DB_NAME only, database manager off"
}
