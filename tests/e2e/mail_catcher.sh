#!/usr/bin/env bash
# Mail never leaves an environment that is not production, and its people
# can read it: a development environment (new database) and a staging copy
# of production (restored, neutralized) each send through their own mail
# catcher; each message lands in that environment's box in the control
# plane and in no other; production's mail server is left alone and it gets
# no catcher; another environment's login is refused by a catcher; the
# odooops mail tool lists, shows and deletes; a destroyed environment's
# catcher stops. Real worker (odooops_worker role), real SMTP (Debian's
# aiosmtpd); the Odoo is the stand-in, which sends with smtplib through its
# active ir_mail_server first by sequence, as Odoo picks it.
source "$(dirname "$0")/lib.sh"
setup_control_plane
start_worker mc --kinds deploy,backup,restore,destroy --storage "file://$WORK/backups"
PROD=e2e_mail_catcher_prod; STAGING=e2e_mail_catcher_staging; DEV=e2e_mail_catcher_dev
CLI=$ROOT/scripts/odooops/odooops
export ODOOOPS_DSN="dbname=$CP_DB"
env_id() { scalar "SELECT id FROM ops.environments WHERE project_id = 1 AND name = '$1'"; }
box() { scalar "SELECT count(*) FROM ops.caught_mails WHERE environment_id = $(env_id "$1")"; }
# send PORT SUBJECT: the environment's Odoo sends one mail.
send() {
  curl -fsS --max-time 20 -H 'Content-Type: application/json' "http://127.0.0.1:$1/standin/send_mail" \
    -d "{\"to\": [\"customer@example.com\"], \"subject\": \"$2\", \"body\": \"sent by the test\"}"
}
# wait_box ENV N: the environment's box holds N messages within 30 s.
wait_box() {
  for _ in $(seq 1 300); do [ "$(box "$1")" = "$2" ] && return 0; sleep 0.1; done
  fail "the box of $1 holds $(box "$1") message(s), expected $2"
}

d=$(queue production deploy); wait_status "$d" succeeded 90
prod_servers() { on "$PROD" "SELECT string_agg(name || ' ' || smtp_host || ' ' || active, ',' ORDER BY id) FROM ir_mail_server"; }
PROD_SERVERS=$(prod_servers)
[ "$PROD_SERVERS" = "Company SMTP smtp.example.com true" ] || fail "production's mail servers changed by its deploy: $PROD_SERVERS"
[ ! -e "$STATE/mail/$(env_id production)" ] || fail "production got a mail catcher"
bk=$(queue_backup production); wait_status "$bk" succeeded 60
s=$(queue staging deploy); wait_status "$s" succeeded 120
[ "$(result "$s" database_from_backup,purpose)" = refresh ] || fail "staging deploy $s did not refresh from production"
dv=$(queue dev deploy); wait_status "$dv" succeeded 90
say "production, a staging copy of it and a new development database deployed"

active() { on "$1" "SELECT string_agg(name || ' ' || smtp_host || ':' || smtp_port, ',') FROM ir_mail_server WHERE active"; }
for env in staging dev; do
  db=$([ $env = staging ] && echo "$STAGING" || echo "$DEV")
  port=$(cat "$STATE/mail/$(env_id $env)/catcher.port" 2>/dev/null) || fail "$env has no mail catcher"
  [ "$(active "$db")" = "odooops mail catcher 127.0.0.1:$port" ] || fail "$env sends through $(active "$db"), not its catcher on $port"
done
[ "$(cat "$STATE/mail/$(env_id staging)/catcher.port")" != "$(cat "$STATE/mail/$(env_id dev)/catcher.port")" ] \
  || fail "staging and dev share a catcher port"
# Production's Odoo kept its own server and never had a catcher.
[ "$(prod_servers)" = "$PROD_SERVERS" ] || fail "production's mail servers changed: $(prod_servers)"
[ ! -e "$STATE/mail/$(env_id production)" ] || fail "production got a mail catcher"
say "staging and dev send to their own catchers; production's server untouched"

send "$PORT_STAGING" "Staging order 1" >/dev/null || fail "staging could not send"
wait_box staging 1
sleep 2  # a message delivered to a wrong box would have arrived by now
[ "$(box dev)" = 0 ] || fail "staging's mail reached dev's box"
[ "$(box production)" = 0 ] || fail "staging's mail reached production's box"
send "$PORT_DEV" "Dev test mail" >/dev/null || fail "dev could not send"
wait_box dev 1
[ "$(box staging)" = 1 ] || fail "dev's mail reached staging's box"
[ "$(scalar "SELECT subject || ' ' || array_to_string(rcpt_to, ',') FROM ops.caught_mails WHERE environment_id = $(env_id staging)")" \
  = "Staging order 1 customer@example.com" ] || fail "staging's box: $(scalar "SELECT subject FROM ops.caught_mails")"
say "each mail landed in its own environment's box only"

# Dev's login on staging's catcher is refused: no environment writes into
# another's box.
dev_user=$(on "$DEV" "SELECT smtp_user FROM ir_mail_server WHERE active")
dev_pass=$(on "$DEV" "SELECT smtp_pass FROM ir_mail_server WHERE active")
staging_port=$(cat "$STATE/mail/$(env_id staging)/catcher.port")
/usr/bin/python3 - "$staging_port" "$dev_user" "$dev_pass" <<'PY' || fail "staging's catcher accepted dev's login"
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=10)
try:
    s.login(sys.argv[2], sys.argv[3])
except smtplib.SMTPAuthenticationError:
    sys.exit(0)
sys.exit(1)
PY
/usr/bin/python3 - "$staging_port" <<'PY' || fail "staging's catcher took mail without a login"
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=10)
try:
    s.sendmail("x@example.com", ["y@example.com"], b"Subject: sneaked in\r\n\r\n.")
except smtplib.SMTPSenderRefused:
    sys.exit(0)
sys.exit(1)
PY
[ "$(box staging)" = 1 ] || fail "staging's box holds $(box staging) messages after refused logins"
say "a catcher refuses another environment's login and anonymous senders"

# The command-line tool.
list=$("$CLI" mail --project acme --env staging) || fail "mail --list failed"
id=$(scalar "SELECT id FROM ops.caught_mails WHERE environment_id = $(env_id staging)")
[[ $list == "$id "*" odoo@example.com -> customer@example.com: Staging order 1" ]] || fail "mail --list printed: $list"
shown=$("$CLI" mail --show "$id") || fail "mail --show failed"
grep -q '^Subject: Staging order 1' <<<"$shown" || fail "mail --show printed: $shown"
grep -q 'sent by the test' <<<"$shown" || fail "mail --show lacks the body: $shown"
[ "$("$CLI" mail --project acme --env staging --list --json | python3 -c 'import json, sys; print(json.load(sys.stdin)[0]["subject"])')" \
  = "Staging order 1" ] || fail "mail --list --json"
rc=0; "$CLI" mail --show 999999 2>/dev/null || rc=$?
[ "$rc" = 66 ] || fail "mail --show of a missing message exited $rc, expected 66"
rc=0; "$CLI" mail --project acme --env nowhere 2>/dev/null || rc=$?
[ "$rc" = 66 ] || fail "mail of an unknown environment exited $rc, expected 66"
[ "$("$CLI" mail --project acme --env dev --delete "$id")" = "deleted 0" ] || fail "staging's message deleted through dev"
[ "$("$CLI" mail --project acme --env staging --delete "$id")" = "deleted 1" ] || fail "mail --delete"
[ "$(box staging)" = 0 ] || fail "staging's box not empty after --delete"
[ "$("$CLI" mail --project acme --env dev --delete-all)" = "deleted 1" ] || fail "mail --delete-all"
say "odooops mail lists, shows and deletes"

# A destroyed environment's catcher stops and its spool goes.
pid=$(cat "$STATE/mail/$(env_id dev)/catcher.pid")
x=$(scalar "SELECT id FROM ops.destroy_environment(1, 'dev', 'end-to-end test')"); wait_status "$x" succeeded 60
alive "$pid" && fail "dev's catcher $pid still runs after the destroy"
[ ! -e "$STATE/mail/$(env_id dev)" ] || fail "dev's mail spool left behind"
say "the destroyed environment's catcher stopped"
say "PASS"
