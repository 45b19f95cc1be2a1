#!/usr/bin/env bash
# Shell, psql and the Odoo log of an environment, and following a run's log.
# People connect with their own login (odooops_api): `odooops shell`,
# `odooops psql` and `odooops odoo-logs` open a session as them and run it
# through the real worker binary in session mode with the worker's
# configuration; the session runs in the environment's runtime (the Odoo
# stand-in's shell, psql as the environment's own role, its server log)
# and the audit trail says who opened what, which worker ran it and how it
# ended. Refused: a developer on production, a member naming another
# project's environment (as a missing one), a used token, a worker
# configuration the caller cannot read. `odooops logs --follow` with a
# fallback interval of 30 s shows a new event within seconds (woken by the
# server's notification) and ends with the run.
source "$(dirname "$0")/lib.sh"
setup_control_plane
start_worker ss --kinds deploy
CLI=$ROOT/scripts/odooops/odooops
export ODOOOPS_WORKER_BIN=$WORKER_BIN
DEV_DB=e2e_sessions_dev
unset ODOOOPS_DSN

# People: a developer and an owner of acme, each with a login of their own.
for who in e2e_sess_dev e2e_sess_owner; do
  PGOPTIONS="-c client_min_messages=warning" psql -X -q -d postgres -c "DROP ROLE IF EXISTS $who" -c "CREATE ROLE $who LOGIN" \
    -c "GRANT odooops_api TO $who" -c "GRANT CONNECT ON DATABASE $CP_DB TO $who" >/dev/null
  EXTRA_CLEANUP+=("psql -X -q -d postgres -c 'DROP OWNED BY $who' -c 'DROP ROLE IF EXISTS $who' >/dev/null 2>&1")
done
cp_psql >/dev/null <<'SQL'
INSERT INTO ops.project_members (project_id, user_id, role)
VALUES (1, 'e2e_sess_dev', 'developer'), (1, 'e2e_sess_owner', 'owner');
INSERT INTO ops.projects (slug, name) VALUES ('othershop', 'Another project');
INSERT INTO ops.environments (project_id, name, stage, db_name)
SELECT id, 'production', 'production', 'e2e_sessions_other' FROM ops.projects WHERE slug = 'othershop';
SQL
AS_DEV=(--dsn "host=$PGHOST port=$PGPORT dbname=$CP_DB user=e2e_sess_dev")
AS_OWNER=(--dsn "host=$PGHOST port=$PGPORT dbname=$CP_DB user=e2e_sess_owner")
audit_rows() { scalar "SELECT count(*) FROM ops.audit_log WHERE action LIKE 'session.%'"; }

# ---- logs --follow wakes on the notification, not on its 30 s poll.
run=$(scalar "SELECT id FROM ops.queue_run(1, 'dev', '$SHA', 'main', '{}', 'test')")  # no worker serves test
"$CLI" logs --run "$run" --follow --interval 30 --dsn "dbname=$CP_DB" >"$WORK/follow.out" 2>&1 &
follower=$!
for _ in $(seq 1 100); do grep -q -- '-> queued' "$WORK/follow.out" && break; sleep 0.1; done
grep -q -- '-> queued' "$WORK/follow.out" || fail "the follower printed nothing: $(cat "$WORK/follow.out")"
sleep 1  # it waits now
t0=$(date +%s.%N)
scalar "SELECT ops.append_event($run, 'info', 'a line for the follower', '{}')" >/dev/null
for _ in $(seq 1 50); do grep -q 'a line for the follower' "$WORK/follow.out" && break; sleep 0.1; done
t1=$(date +%s.%N)
grep -q 'a line for the follower' "$WORK/follow.out" || fail "the follower did not show the new event within 5 s: $(cat "$WORK/follow.out")"
scalar "SELECT ops.cancel_run($run, 'end of the follow test')" >/dev/null
rc=0
for _ in $(seq 1 50); do kill -0 "$follower" 2>/dev/null || break; sleep 0.1; done
kill -0 "$follower" 2>/dev/null && fail "the follower did not end within 5 s of the cancel"
wait "$follower" || rc=$?
[ "$rc" = 1 ] || fail "logs --follow of a cancelled run exited $rc, not 1"
grep -q -- 'running -> cancelled\|queued -> cancelled' "$WORK/follow.out" || fail "the follower missed the cancel: $(cat "$WORK/follow.out")"
say "logs --follow showed a new event after $(python3 -c "print(round($t1 - $t0, 2))") s (fallback 30 s) and ended with the run"

# ---- Refusals before any worker runs: nothing is opened, nothing audited.
"$WORKER_BIN" "${ODOO_FLAGS[@]}" --dsn "host=$PGHOST port=$PGPORT dbname=$CP_DB user=odooops_e2e_worker" \
  --worker-id ss --state-dir "$STATE" "${STEPS_FLAGS[@]}" --print-config >"$WORK/worker.conf"
chmod 600 "$WORK/worker.conf"
W=(--worker-config "$WORK/worker.conf")
code=0; "$CLI" shell --project acme --env production "${W[@]}" "${AS_DEV[@]}" </dev/null >"$WORK/out" 2>&1 || code=$?
[ "$code" = 77 ] || fail "a developer's shell on production exited $code, not 77: $(cat "$WORK/out")"
grep -q 'permission denied: env.shell' "$WORK/out" || fail "the refusal does not name env.shell: $(cat "$WORK/out")"
code=0; "$CLI" psql --project acme --env production "${W[@]}" "${AS_DEV[@]}" -- -c 'SELECT 1' >"$WORK/out" 2>&1 || code=$?
[ "$code" = 77 ] || fail "a developer's psql on production exited $code, not 77: $(cat "$WORK/out")"
code=0; "$CLI" odoo-logs --project othershop --env production "${W[@]}" "${AS_DEV[@]}" >"$WORK/out" 2>&1 || code=$?
[ "$code" = 66 ] || fail "another project's environment answered $code, not 66: $(cat "$WORK/out")"
code=0; "$CLI" odoo-logs --project acme --env nowhere "${W[@]}" "${AS_DEV[@]}" >"$WORK/out" 2>&1 || code=$?
[ "$code" = 66 ] || fail "a missing environment answered $code, not 66"
code=0; "$CLI" odoo-logs --project acme --env dev --worker-config "$WORK/no-such.conf" "${AS_DEV[@]}" >"$WORK/out" 2>&1 || code=$?
[ "$code" = 77 ] || fail "an unreadable worker configuration answered $code, not 77"
[ "$(audit_rows)" = 0 ] || fail "refused sessions left audit rows"
say "refused: a developer's shell and psql on production (77), another project's environment (66, as a missing one), an unreadable worker configuration (77); nothing audited"

# ---- The worker's session mode: what the runtime's command gets. A steps
# directory whose lib/runtime.sh reports its arguments, variables, open
# descriptors and input (the worker runs the same for the real one).
mkdir -p "$WORK/report-steps/lib"
cat >"$WORK/report-steps/lib/runtime.sh" <<'SH'
#!/usr/bin/env bash
echo "args: $*"
echo "vars: $ODOOOPS_WORKFLOW $ODOOOPS_SESSION_KIND $ODOOOPS_SESSION_OPENED_BY $ODOOOPS_PROJECT/$ODOOOPS_ENVIRONMENT $ODOOOPS_STAGE $ODOOOPS_DB_NAME $ODOOOPS_WORKER_ID"
env | grep -E '^(ODOOOPS_DSN|ODOOOPS_SESSION_TOKEN|ODOOOPS_CONFIG|ODOOOPS_STORAGE|PGDATABASE|AWS_)=' | sed 's/^/leak: /'
# (listed by a child into a file: a command substitution would add its own pipe)
ls /proc/$$/fd >"$ODOOOPS_WORKSPACE/fds"
while read -r n; do [ "$n" -le 2 ] || [ "$n" = 255 ] || echo "fd: $n"; done <"$ODOOOPS_WORKSPACE/fds"
echo "stdin: $(cat)"
exit 7
SH
sed "s#^steps-dir = .*#steps-dir = \"$WORK/report-steps\"#" "$WORK/worker.conf" >"$WORK/report.conf"
grep -q "^steps-dir = \"$WORK/report-steps\"" "$WORK/report.conf" || fail "no steps-dir in the printed configuration"
code=0
echo "typed input" | "$CLI" odoo-logs --project acme dev --follow --grep 'a b' --worker-config "$WORK/report.conf" "${AS_DEV[@]}" \
  >"$WORK/report.out" 2>"$WORK/report.err" || code=$?
[ "$code" = 7 ] || fail "the session's exit status is $code, not the command's 7: $(cat "$WORK/report.out" "$WORK/report.err")"
[ "$(sed -n 1p "$WORK/report.out")" = "args: logs --follow --grep a b" ] || fail "runtime.sh got $(sed -n 1p "$WORK/report.out")"
[ "$(sed -n 2p "$WORK/report.out")" = "vars: session odoo_logs e2e_sess_dev acme/dev development e2e_sessions_dev ss" ] ||
  fail "the session's variables: $(sed -n 2p "$WORK/report.out")"
if grep -E '^(leak|fd):' "$WORK/report.out"; then fail "the session's command got more than it should"; fi
grep -qx 'stdin: typed input' "$WORK/report.out" || fail "the session's command did not read the terminal's input"
trail=$(scalar "SELECT string_agg(action || ' ' || actor || ' ' || coalesce(payload->>'kind', '') || ' '
                                  || coalesce(payload->>'worker_id', '-') || ' ' || coalesce(payload->>'exit_status', '-'), ',' ORDER BY id)
                  FROM ops.audit_log WHERE action LIKE 'session.%'")
[ "$trail" = "session.open e2e_sess_dev odoo_logs - -,session.start odooops_e2e_worker odoo_logs ss -,session.end odooops_e2e_worker odoo_logs ss 7" ] ||
  fail "the session's trail: $trail"
# A token opens one session: the worker refuses it a second time.
token=$(psql -X -qAt "${AS_DEV[1]}" -c "SELECT token FROM ops.open_session('acme', 'dev', 'psql')")
code=0; ODOOOPS_SESSION_TOKEN=$token "$WORKER_BIN" --config "$WORK/report.conf" session -- -c 'SELECT 1' </dev/null >"$WORK/out" 2>&1 || code=$?
[ "$code" = 7 ] || fail "the worker did not run a fresh token: $code $(cat "$WORK/out")"
grep -qx 'args: psql -c SELECT 1' "$WORK/out" || fail "psql's arguments: $(cat "$WORK/out")"
code=0; ODOOOPS_SESSION_TOKEN=$token "$WORKER_BIN" --config "$WORK/report.conf" session </dev/null >/dev/null 2>"$WORK/err" || code=$?
[ "$code" = 65 ] || fail "a used token: the worker exited $code, not 65 ($(cat "$WORK/err"))"
grep -q 'already redeemed' "$WORK/err" || fail "a used token: $(cat "$WORK/err")"
[ "$(scalar "SELECT count(*) FROM ops.audit_log WHERE action = 'session.start'")" = 2 ] || fail "a refused token was audited as started"
say "session mode: runtime.sh <verb> with the kind's arguments, the environment's variables, the terminal's input and nothing of the worker's; its exit status in the trail; a used token refused (65)"

# ---- Sessions in the development environment's runtime.
AUDITED_BEFORE=$(scalar "SELECT max(id) FROM ops.audit_log")
if [ ! -f "$ROOT/worker/steps/lib/runtime.sh" ]; then
  say "SKIPPED the sessions themselves: worker/steps/lib/runtime.sh (the runtime interface) is not in this tree"
  exit 0
fi
d=$(queue dev deploy); wait_status "$d" succeeded 90
echo 'print("partners:", env.sql("SELECT count(*) FROM pg_class WHERE relname = '"'"'res_partner'"'"'"), env.db_name)' |
  "$CLI" shell --project acme dev "${W[@]}" "${AS_DEV[@]}" >"$WORK/shell.out" 2>"$WORK/shell.err" ||
  fail "the developer's shell on dev failed: $(cat "$WORK/shell.out" "$WORK/shell.err")"
grep -q "^partners: 1 $DEV_DB\$" "$WORK/shell.out" || fail "the shell did not run on $DEV_DB: $(cat "$WORK/shell.out" "$WORK/shell.err")"
trail=$(scalar "SELECT string_agg(action || ' ' || actor || ' ' || coalesce(payload->>'kind', '') || ' '
                                  || coalesce(payload->>'worker_id', '-') || ' ' || coalesce(payload->>'exit_status', '-'), ',' ORDER BY id)
                  FROM ops.audit_log WHERE action LIKE 'session.%' AND id > $AUDITED_BEFORE")
[ "$trail" = "session.open e2e_sess_dev shell - -,session.start odooops_e2e_worker shell ss -,session.end odooops_e2e_worker shell ss 0" ] ||
  fail "the shell session's trail: $trail"
say "shell session audited: $trail"

out=$("$CLI" psql --project acme --env dev "${W[@]}" "${AS_DEV[@]}" -- -X -A -t -c 'SELECT current_user, current_database()' 2>"$WORK/psql.err") ||
  fail "psql on dev failed: $(cat "$WORK/psql.err")"
[ "$out" = "odoo_$DEV_DB|$DEV_DB" ] || fail "psql ran as $out, not the environment's own role on its database"
code=0; "$CLI" psql --project acme --env dev "${W[@]}" "${AS_DEV[@]}" -- -X -c 'SELECT 1/0' >/dev/null 2>&1 || code=$?
[ "$code" != 0 ] || fail "a failing psql session exited 0"
[ "$(scalar "SELECT payload->>'exit_status' FROM ops.audit_log WHERE action = 'session.end' ORDER BY id DESC LIMIT 1")" = "$code" ] ||
  fail "the trail does not hold psql's exit status $code"
say "psql runs as the environment's own role; its exit status ($code on an error) is the session's and in the trail"

"$CLI" odoo-logs --project acme --env dev --grep 'starting|installing' "${W[@]}" "${AS_OWNER[@]}" >"$WORK/odoo.log" 2>"$WORK/logs.err" ||
  fail "odoo-logs failed: $(cat "$WORK/logs.err")"
grep -q "odoo-standin $DEV_DB: Odoo stand-in .* starting" "$WORK/odoo.log" || fail "odoo-logs did not show the server's log: $(head -5 "$WORK/odoo.log")"
if grep -v -E 'starting|installing' "$WORK/odoo.log" | has .; then fail "--grep let other lines through"; fi
say "odoo-logs shows the environment's server log, filtered"
