#!/usr/bin/env bash
# Every deploy step on real Odoo Community, through the product only (the
# control plane's SQL API and the real worker): run when ODOO_SRC names an
# Odoo source tree (tests/run_all.sh passes it; it is never downloaded).
# On a git repository with two small modules of its own:
#  - build finds the modules; the test workflow runs their tests on a
#    throw-away database;
#  - development deploy on a new database installs the repository's modules,
#    Odoo runs as an unprivileged per-environment user with a clean
#    environment, /web/login answers;
#  - a manifest version bump updates exactly that module; a module whose
#    version is "1.0" (stored by Odoo as <series>.1.0) is not updated again;
#    a change without a bump is detected and updated;
#  - production deploy; broken XML and a Python syntax error each fail the
#    deploy, name the failing file and line as the run's error, and leave
#    the previous release serving on the database as it was;
#  - backup, then staging refresh from it: Odoo's own neutralization ran
#    (database.is_neutralized, crons and mail servers off, the module's own
#    data/neutralize.sql), the copy has its own database.uuid and
#    database.secret, and a token signed on staging is refused by production;
#  - production restore: it waits for a second person's approval; approved,
#    it backs up what it replaces first, and that backup brings back a row
#    written after the restored backup;
#  - a failed first deploy leaves no half-installed database behind; a new
#    database copied from the template database (base installed once) has
#    exactly the modules, versions and demo flags of a fresh install;
#  - destroy of the development environment removes its database,
#    filestore, process and operating-system user.
# Real Odoo, not the stand-in: with ODOO_FLAGS set, lib.sh keeps ODOO_SRC.
ODOO_FLAGS=(--odoo-src "${ODOO_SRC:-}")
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=tests/harness/odoo_modules.sh
source "$ROOT/tests/harness/odoo_modules.sh"
ODOO_SRC=${ODOO_SRC:?ODOO_SRC must name an Odoo source tree}
[ -f "$ODOO_SRC/odoo/release.py" ] || fail "ODOO_SRC=$ODOO_SRC is not an Odoo source tree"
# shellcheck disable=SC2034 # read by start_worker (lib.sh)
ODOO_FLAGS=(--odoo-src "$ODOO_SRC")
SERIES=$(odoo_series "$ODOO_SRC")
setup_control_plane
# The first development deploy installs base with odoo-bin (a fresh
# install); every later new database starts from the template database.
start_worker fresh --kinds deploy --storage "file://$WORK/backups" --template-databases=false
PROD=e2e_real_odoo_prod; STAGING=e2e_real_odoo_staging; DEV=e2e_real_odoo_dev
T=240  # seconds a deploy on real Odoo may take on a slow machine

run_error() { scalar "SELECT error FROM ops.runs WHERE id = $1"; }
param() { on "$1" "SELECT value FROM ir_config_parameter WHERE key = '$2'"; }
installed() { on "$1" "SELECT string_agg(name || ' ' || latest_version, ',' ORDER BY name) FROM ir_module_module WHERE name LIKE 'oo\\_%' AND state = 'installed'"; }
login_page() { curl -s -o /dev/null -w '%{http_code}' --max-time 10 "http://127.0.0.1:$1/web/login"; }
deploy() {  # deploy ENV STATUS -> run id, after it reached STATUS
  local r; r=$(queue "$1" deploy); wait_status "$r" "$2" "$T"; echo "$r"
}

# The repository: oo_notes (version "1.0", a model, data, its own
# neutralize.sql) and oo_extra (depends on it, a full version).
rm -rf "$WORK/repo"; make_odoo_repo "$WORK/repo" "$SERIES"; REPO=$WORK/repo
SHA=$(git -C "$REPO" rev-parse HEAD)
scalar "UPDATE ops.projects SET repo_url = '$REPO'" >/dev/null

# ---------------------------------------------------------------- development
d=$(deploy dev succeeded)
[ "$(installed "$DEV")" = "oo_extra $SERIES.1.0.0,oo_notes $SERIES.1.0" ] || fail "dev deploy $d installed: $(installed "$DEV")"
[ "$(login_page "$PORT_DEV")" = 200 ] || fail "dev: /web/login answers $(login_page "$PORT_DEV")"
pid=$(cat "$STATE/envs/acme/dev/odoo.pid")
uid=$(ps -o uid= -p "$pid" | tr -d ' ')
[[ -n $uid && $uid != 0 && $uid != "$(id -u)" ]] || fail "dev: Odoo runs as uid '$uid', not a user of its own"
if tr '\0' '\n' <"/proc/$pid/environ" | has -E '^(ODOOOPS_|AWS_|PGPASSWORD=)'; then
  fail "dev: Odoo's environment holds the worker's variables"
fi
say "development: deploy $d installed oo_notes ($SERIES.1.0) and oo_extra on a new database; Odoo runs as uid $uid, /web/login 200"
# The runtime interface as a command (lib/runtime.sh, what the worker's
# shell command executes): odoo-bin shell on dev's database, as dev's own
# role and user, with the variables a step of dev gets.
rt_env=(ODOOOPS_RUNTIME=process ODOOOPS_STATE_DIR="$STATE" ODOOOPS_ENV_DIR="$STATE/envs/acme/dev"
        ODOOOPS_ENVIRONMENT=dev ODOOOPS_DB_NAME="$DEV" ODOOOPS_STAGE=development ODOOOPS_ENV_SETTINGS='{}'
        ODOOOPS_DB_HOST="${PGHOST:-}" ODOOOPS_DB_PORT="${PGPORT:-5432}" ODOOOPS_ODOO_USER=per-environment
        ODOO_BIN="$ODOO_SRC/odoo-bin" ODOOOPS_ODOO_PYTHON=/usr/bin/python3 ODOOOPS_ODOO_ADDONS="$ODOO_SRC/addons")
out=$(echo "print('shell: %s %s %d' % (env.cr.dbname, env.cr.execute('SELECT current_user') or env.cr.fetchone()[0], env['ir.module.module'].search_count([('name', '=', 'oo_notes'), ('state', '=', 'installed')])))" |
      env "${rt_env[@]}" "$ROOT/worker/steps/lib/runtime.sh" shell 2>&1) || true
[[ $out == *"shell: $DEV odoo_$DEV 1"* ]] || fail "runtime.sh shell on dev: $(tail -n 5 <<<"$out")"
say "runtime.sh shell: odoo-bin shell on $DEV as its own role"
kill -TERM "${WORKER_PIDS[@]}"; wait "${WORKER_PIDS[@]}" 2>/dev/null || true; WORKER_PIDS=()
start_worker ro --kinds build,test,deploy,backup,restore,destroy --storage "file://$WORK/backups"
rehost ro dev
b=$(queue dev build); wait_status "$b" succeeded "$T"
[ "$(scalar "SELECT string_agg(a->>'name', ',' ORDER BY a->>'name') FROM ops.runs, jsonb_array_elements(result->'addons') a WHERE id = $b")" = oo_extra,oo_notes ] \
  || fail "build $b found: $(result "$b" addons)"
t=$(queue dev test); wait_status "$t" succeeded "$T"
[[ $(result "$t" tests,failed) = 0 && $(result "$t" tests,errors) = 0 && $(result "$t" tests,exit_code) = 0 ]] || fail "test run $t: $(result "$t" tests)"
# Odoo's own log, parsed (lib/odoo_test_log.py): oo_notes' test counted as passed.
[[ $(result "$t" tests,modules,oo_notes,passed) -ge 1 && $(result "$t" tests,summary_seen) = true ]] \
  || fail "test run $t: Odoo's test log not parsed: $(result "$t" tests)"
log=$(scalar "SELECT location FROM ops.artifacts WHERE run_id = $t AND name = 'tests.log'")
grep -q 'odoo.addons.oo_notes.tests.test_note' "${log#file://}" || fail "test run $t: the log artifact does not show oo_notes' test running"
on postgres "SELECT datname FROM pg_database WHERE datname LIKE '%\_test\_$t'" | has . && fail "test run $t left its database"
say "development: build $b found both modules; test run $t ran oo_notes' test on a throw-away database (0 failures, log kept)"

# A bump of oo_extra updates exactly oo_extra; oo_notes ("1.0") is left alone.
sed -i "s/$SERIES.1.0.0/$SERIES.1.0.1/" "$REPO/oo_extra/__manifest__.py"
commit "Bump oo_extra"
d=$(deploy dev succeeded)
[ "$(result "$d" modules,updated)" = '["oo_extra"]' ] || fail "bump: deploy $d updated $(result "$d" modules,updated)"
[ "$(installed "$DEV")" = "oo_extra $SERIES.1.0.1,oo_notes $SERIES.1.0" ] || fail "bump: installed $(installed "$DEV")"
# A change without a version bump is detected (checksum) and updated.
sed -i 's/First/First note/' "$REPO/oo_notes/data/notes.xml"
commit "Rename the first note without a bump"
d=$(deploy dev succeeded)
[ "$(result "$d" modules,updated)" = '["oo_notes"]' ] || fail "no bump: deploy $d updated $(result "$d" modules,updated)"
[ "$(result "$d" modules,changed_without_bump)" = '["oo_notes"]' ] || fail "no bump: not reported: $(result "$d" modules)"
[ "$(on "$DEV" "SELECT count(*) FROM oo_note WHERE name = 'First note'")" = 1 ] || fail "no bump: the data change did not reach the database"
d=$(deploy dev succeeded)
[ "$(result "$d" modules,updated)" = '[]' ] || fail "unchanged: deploy $d updated $(result "$d" modules,updated)"
say "development: a bump updated exactly oo_extra, a change without a bump updated oo_notes, an unchanged redeploy updated nothing"

# ------------------------------------------------------------------ production
p=$(deploy production succeeded)
[ "$(login_page "$PORT_PROD")" = 200 ] || fail "production deploy $p: /web/login answers $(login_page "$PORT_PROD")"
[ "$(on "$PROD" "SELECT count(*) FROM ir_module_module WHERE name = 'base' AND demo")" = 0 ] || fail "production got demo data"
on "$PROD" "INSERT INTO oo_note (name) VALUES ('written in production')" >/dev/null
on "$PROD" "INSERT INTO ir_mail_server (name, smtp_host, smtp_port, smtp_encryption, smtp_authentication, active, sequence)
            VALUES ('Company SMTP', 'smtp.example.com', 587, 'starttls', 'login', true, 10)" >/dev/null
good_sha=$SHA
# Broken XML in an update: the deploy fails with the file and line, and
# production serves the previous release on its database as it was.
cp "$REPO/oo_extra/data/extra.xml" "$WORK/extra.xml"
printf '<odoo>\n  <record id="note_extra" model="oo.note">\n    <field name="name">Broken</field>\n</odoo>\n' >"$REPO/oo_extra/data/extra.xml"
sed -i "s/$SERIES.1.0.1/$SERIES.1.0.2/" "$REPO/oo_extra/__manifest__.py"
commit "Broken XML"
bad=$(deploy production failed)
err=$(run_error "$bad")
[[ $err == *extra.xml* ]] || fail "broken XML: the run's error does not name the file: $err"
[ "$(readlink -f "$STATE/envs/acme/production/current")" = "$STATE/envs/acme/production/releases/$good_sha" ] \
  || fail "broken XML: production does not run the previous release"
[ "$(login_page "$PORT_PROD")" = 200 ] || fail "broken XML: production does not serve after the rollback"
[ "$(installed "$PROD")" = "oo_extra $SERIES.1.0.1,oo_notes $SERIES.1.0" ] || fail "broken XML: the database was not rolled back: $(installed "$PROD")"
[ "$(on "$PROD" "SELECT count(*) FROM oo_note WHERE name = 'written in production'")" = 1 ] || fail "broken XML: a production row was lost"
say "production: broken XML failed deploy $bad with \"$err\"; the previous release serves its database"
cp "$WORK/extra.xml" "$REPO/oo_extra/data/extra.xml"
printf 'def broken(:\n    pass\n' >>"$REPO/oo_notes/models.py"
sed -i 's/"1.0"/"1.1"/' "$REPO/oo_notes/__manifest__.py"
commit "Python syntax error"
bad=$(deploy production failed)
err=$(run_error "$bad")
[[ $err == *SyntaxError* && $err == *models.py* ]] || fail "syntax error: the run's error is not the failing line: $err"
[ "$(readlink -f "$STATE/envs/acme/production/current")" = "$STATE/envs/acme/production/releases/$good_sha" ] \
  || fail "syntax error: production does not run the previous release"
[ "$(login_page "$PORT_PROD")" = 200 ] || fail "syntax error: production does not serve after the rollback"
[ "$(installed "$PROD")" = "oo_extra $SERIES.1.0.1,oo_notes $SERIES.1.0" ] || fail "syntax error: the database was not rolled back"
say "production: a Python syntax error failed deploy $bad with \"$err\"; the previous release serves"
git -C "$REPO" -c user.email=t@example.com -c user.name=test revert --no-edit HEAD HEAD~1 >/dev/null
SHA=$(git -C "$REPO" rev-parse HEAD)

# ------------------------------------------------- backup, staging refresh
b=$(queue_backup production); wait_status "$b" succeeded "$T"
s=$(deploy staging succeeded)
[ "$(result "$s" database_from_backup,neutralized)" = true ] || fail "staging deploy $s did not run on a neutralized copy: $(result "$s" database_from_backup)"
[ "$(param "$STAGING" database.is_neutralized)" = true ] || fail "staging: database.is_neutralized is '$(param "$STAGING" database.is_neutralized)'"
# (Odoo keeps its own database vacuum, base.autovacuum_job, running.)
[ "$(on "$STAGING" "SELECT count(*) FROM ir_cron c WHERE active AND NOT EXISTS (SELECT 1 FROM ir_model_data d
      WHERE d.model = 'ir.cron' AND d.res_id = c.id AND d.module = 'base' AND d.name = 'autovacuum_job')")" = 0 ] \
  || fail "staging: scheduled actions still active"
[ "$(on "$PROD" "SELECT count(*) FROM ir_cron WHERE active")" -gt 1 ] || fail "production's scheduled actions were turned off"
# (The one active server is the environment's mail catcher: docs/mail.md.)
[ "$(on "$STAGING" "SELECT string_agg(name || ' ' || smtp_host, ',') FROM ir_mail_server WHERE active")" = "odooops mail catcher 127.0.0.1" ] \
  || fail "staging: outgoing mail servers other than the catcher active: $(on "$STAGING" "SELECT string_agg(smtp_host, ',') FROM ir_mail_server WHERE active")"
[ "$(on "$PROD" "SELECT count(*) FROM ir_mail_server WHERE active AND smtp_host = 'smtp.example.com'")" = 1 ] \
  || fail "production's mail server was turned off"
[ "$(on "$STAGING" "SELECT count(*) FROM oo_note WHERE name = 'neutralized: written in production'")" = 1 ] \
  || fail "staging: oo_notes' own data/neutralize.sql did not run: $(on "$STAGING" "SELECT string_agg(name, ', ') FROM oo_note")"
for key in database.uuid database.secret; do
  [ "$(param "$STAGING" "$key")" != "$(param "$PROD" "$key")" ] || fail "staging shares production's $key"
done
[ "$(login_page "$PORT_STAGING")" = 200 ] || fail "staging: /web/login answers $(login_page "$PORT_STAGING")"
# A token signed with staging's database.secret (as Odoo signs its links)
# does not verify on production.
sign() {  # sign DB ENV: HMAC of a fixed message with the database's secret, by Odoo
  local role; role=$(on "$1" "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()")
  printf '%s\n' 'from odoo.tools.misc import hmac' "print('TOKEN', hmac(env(su=True), 'odooops-test', 'res.partner,1'))" |
    PGPASSFILE=$STATE/envs/acme/$2/odoo.pgpass /usr/bin/python3 "$ODOO_SRC/odoo-bin" shell --no-http -d "$1" \
      --db_user "$role" --db_host "$PGHOST" --db_port "$PGPORT" --addons-path "$ODOO_SRC/addons,$REPO" --log-level warn 2>/dev/null |
    sed -n 's/^TOKEN //p'
}
tok_staging=$(sign "$STAGING" staging); tok_prod=$(sign "$PROD" production)
[[ -n $tok_staging && -n $tok_prod ]] || fail "could not sign a token with Odoo"
[ "$tok_staging" != "$tok_prod" ] || fail "a token signed on staging verifies on production"
# A mail Odoo sends on staging (ir.mail_server.send_email, as every mail
# of Odoo goes) lands in staging's box in the control plane, and nowhere else.
printf '%s\n' "m = env['ir.mail_server'].build_email('odoo@example.com', ['customer@example.com'], 'Real Odoo staging mail', 'body')" \
  "env['ir.mail_server'].send_email(m)" "print('SENT')" |
  PGPASSFILE=$STATE/envs/acme/staging/odoo.pgpass /usr/bin/python3 "$ODOO_SRC/odoo-bin" shell --no-http -d "$STAGING" \
    --db_user "$(on "$STAGING" "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()")" \
    --db_host "$PGHOST" --db_port "$PGPORT" --addons-path "$ODOO_SRC/addons,$REPO" --log-level warn 2>"$WORK/send.err" |
  grep -q '^SENT' || { cat "$WORK/send.err" >&2; fail "Odoo could not send a mail on staging"; }
for _ in $(seq 1 300); do
  [ "$(scalar "SELECT count(*) FROM ops.caught_mails WHERE subject = 'Real Odoo staging mail'")" = 1 ] && break
  sleep 0.1
done
[ "$(scalar "SELECT string_agg(e.name, ',') FROM ops.caught_mails m JOIN ops.environments e ON e.id = m.environment_id
             WHERE m.subject = 'Real Odoo staging mail'")" = staging ] \
  || fail "the mail Odoo sent on staging is not (only) in staging's box: $(scalar "SELECT count(*) FROM ops.caught_mails")"
say "staging: deploy $s runs on a neutralized copy of backup run $b (Odoo's and oo_notes' neutralization, own uuid and secret; a staging token is refused by production; its mail lands in its box)"

# ------------------------------------------------------- production restore
# Refused without a second person: the request waits for an approval and
# nothing runs. Approved, the restore first backs up what it replaces, so a
# row written after the restored backup is not lost: restoring that
# pre-restore backup brings it back.
on "$PROD" "INSERT INTO oo_note (name) VALUES ('written after the backup')" >/dev/null
backup=$(backup_of "$b")
prod_id=$(scalar "SELECT id FROM ops.environments WHERE name = 'production'")
pending=$(scalar "SELECT id FROM ops.restore_backup($backup, $prod_id)")
[ "$(scalar "SELECT status FROM ops.restores WHERE id = $pending")" = pending_approval ] \
  || fail "a production restore did not wait for an approval: $(scalar "SELECT status FROM ops.restores WHERE id = $pending")"
sleep 2
[ "$(scalar "SELECT count(*) FROM ops.runs WHERE workflow = 'restore'")" = 0 ] || fail "a restore ran without its approval"
approve_restore "$pending"
r=$(scalar "SELECT run_id FROM ops.restores WHERE id = $pending"); wait_status "$r" succeeded "$T"
[ "$(on "$PROD" "SELECT count(*) FROM oo_note WHERE name = 'written after the backup'")" = 0 ] || fail "restore $r did not restore the backup"
[ "$(login_page "$PORT_PROD")" = 200 ] || fail "restore $r: production does not serve"
pre=$(result "$r" pre_restore_backup_id)
[ -n "$pre" ] || fail "restore $r kept no copy of the database it replaced: $(scalar "SELECT result FROM ops.runs WHERE id = $r")"
r2=$(queue_restore "$pre" production); wait_status "$r2" succeeded "$T"
[ "$(on "$PROD" "SELECT count(*) FROM oo_note WHERE name = 'written after the backup'")" = 1 ] \
  || fail "the pre-restore backup $pre does not hold the row written after the restored backup"
[ "$(param "$PROD" database.is_neutralized)" = "" ] || fail "a production restore neutralized production"
say "production: a restore waits for a second person; approved (run $r), it kept backup $pre of what it replaced, which brought back the row written after the backup (run $r2)"

# ----------------------------------------------------- a failed first deploy
scalar "INSERT INTO ops.environments (project_id, name, stage, branch_pattern, db_name, settings)
        VALUES (1, 'fresh', 'development', 'fresh/*', 'e2e_real_odoo_fresh', '{\"http_port\": $(free_port)}')" >/dev/null
printf 'def broken(:\n' >>"$REPO/oo_extra/__init__.py"
commit "Broken from the start"
f=$(deploy fresh failed)
[[ $(run_error "$f") == *SyntaxError* ]] || fail "failed first deploy $f: error $(run_error "$f")"
[ "$(on postgres "SELECT count(*) FROM pg_database WHERE datname = 'e2e_real_odoo_fresh'")" = 0 ] \
  || fail "failed first deploy $f left its half-installed database behind"
git -C "$REPO" -c user.email=t@example.com -c user.name=test revert --no-edit HEAD >/dev/null
SHA=$(git -C "$REPO" rev-parse HEAD)
f=$(deploy fresh succeeded)
[ "$(on e2e_real_odoo_fresh "SELECT count(*) FROM ir_module_module WHERE name = 'web' AND state = 'installed'")" = 1 ] \
  || fail "the next deploy $f did not install web"
# The template path gives what a fresh install gives (dev was one).
modules() { on "$1" "SELECT string_agg(name || ' ' || state || ' ' || latest_version || ' ' || demo, ',' ORDER BY name) FROM ir_module_module WHERE state = 'installed'"; }
[ "$(modules e2e_real_odoo_fresh)" = "$(modules "$DEV")" ] \
  || fail "the template path differs from a fresh install: $(diff <(modules e2e_real_odoo_fresh | tr , '\n') <(modules "$DEV" | tr , '\n'))"
[ "$(param e2e_real_odoo_fresh database.uuid)" != "$(param "$DEV" database.uuid)" ] || fail "two databases share database.uuid"
say "a failed first deploy removed its database; the next one ($f) started from the template database: same modules, versions and demo flags as the fresh install, its own database.uuid"

# --------------------------------------------------------------------- destroy
dev_user=$(ps -o user= -p "$(cat "$STATE/envs/acme/dev/odoo.pid")" | tr -d ' ')
x=$(scalar "SELECT id FROM ops.destroy_environment(1, 'dev', 'end-to-end test')"); wait_status "$x" succeeded "$T"
[ "$(on postgres "SELECT count(*) FROM pg_database WHERE datname = '$DEV'")" = 0 ] || fail "destroy: the database remains"
[ ! -e "$STATE/envs/acme/dev" ] || fail "destroy: the environment's directory (filestore) remains"
alive "$pid" && fail "destroy: the Odoo process $pid still runs"
id -u "$dev_user" >/dev/null 2>&1 && fail "destroy: the operating-system user $dev_user remains"
say "destroy: database, filestore, process and user $dev_user of dev are gone"
say "PASS"
