#!/usr/bin/env bash
# Restore tests of production (workflow restore_test): the latest backup is
# restored into a throwaway database, neutralized, started with the deployed
# release and health-checked, the outcome recorded in the run's result, and
# the throwaway database dropped; production's database, filestore and Odoo
# are not touched. A backup whose copy cannot be served (the stand-in's
# failure marker) fails the restore test and opens an alert, and the
# throwaway database goes all the same. Storage: file://.
# The Odoo is the stand-in (tests/harness/odoo_standin.py), not Odoo.
source "$(dirname "$0")/lib.sh"
setup_control_plane
start_worker rtw --storage "file://$WORK/backups"
PROD=e2e_restore_test_prod
PROD_DIR=$STATE/envs/acme/production

d=$(queue production deploy)
wait_status "$d" succeeded 120
mkdir -p "$PROD_DIR/data/filestore/$PROD/3f"
echo "production attachment $(date +%s%N)" >"$PROD_DIR/data/filestore/$PROD/3f/3f2a9c0e5d1b"
b=$(queue_backup production)
wait_status "$b" succeeded 120
bid=$(backup_of "$b")
say "production deployed, backup $bid taken"

# What must stay as it is.
prod_state() {
  printf '%s|%s|%s|%s\n' "$(data_fingerprint "$PROD")" "$(cat "$PROD_DIR/odoo.pid")" \
    "$(find "$PROD_DIR/data/filestore" -type f -exec sha256sum {} + | sort | sha256sum)" \
    "$(psql -X -A -t -d "$PROD" -c "SELECT count(*) FROM ir_cron WHERE active")"
}
prod_ok() {
  [ "$(prod_state)" = "$before" ] || fail "production changed during restore test $1: $(prod_state) (was $before)"
  alive "$(cat "$PROD_DIR/odoo.pid")" || fail "production's Odoo stopped during restore test $1"
  health "$PORT_PROD" | has '"pass"' || fail "production does not serve after restore test $1"
  curl -fsS "http://127.0.0.1:$PORT_PROD/standin/info" | has "\"database\": \"$PROD\"" || fail "production serves another database"
}
leftovers() { psql -X -A -t -d postgres -c "SELECT string_agg(datname, ' ') FROM pg_database WHERE datname LIKE '${PROD}\\_%'"; }
before=$(prod_state)

# Only production, only through ops.queue_restore_test.
err=$(scalar "SELECT ops.queue_restore_test(1, 'staging')" 2>&1) && fail "a restore test of staging was queued"
[[ $err == *"restore tests are for production"* ]] || fail "refusal of staging: $err"

# 1. A restore test that passes, recorded in the run's result.
t=$(scalar "SELECT id FROM ops.queue_restore_test(1, 'production')")
wait_status "$t" succeeded 180
[ "$(result "$t" restore_test,healthy)" = true ] || fail "restore test $t is not recorded healthy: $(result "$t" restore_test)"
[ "$(result "$t" restore_test,backup_id)" = "$bid" ] || fail "restore test $t tested backup $(result "$t" restore_test,backup_id), not $bid"
[ "$(result "$t" restore_test,database)" = "${PROD}_restore_$t" ] || fail "throwaway database $(result "$t" restore_test,database)"
[[ $(result "$t" restore_test,seconds) =~ ^[0-9]+$ ]] || fail "restore test $t records no duration"
[ "$(result "$t" neutralized)" = true ] || fail "the copy of restore test $t is not recorded neutralized"
[ -z "$(leftovers)" ] || fail "databases left behind by restore test $t: $(leftovers)"
scalar "SELECT ops.evaluate_alerts()" >/dev/null
[ "$(scalar "SELECT count(*) FROM ops.alerts WHERE kind = 'restore_test_failed' AND status = 'open'")" = 0 ] \
  || fail "an alert is open after a passing restore test"
prod_ok "$t"
say "restore test $t of backup $bid passed and is recorded; the throwaway database is gone, production untouched"

# 2. A backup whose copy cannot be served: the restore test fails, an alert
# opens, and the throwaway database is dropped all the same.
psql -X -q -d "$PROD" -c "INSERT INTO ir_config_parameter (key, value) VALUES ('standin.fail_start', 'true')"
b2=$(queue_backup production)
wait_status "$b2" succeeded 120
bad=$(backup_of "$b2")
psql -X -q -d "$PROD" -c "DELETE FROM ir_config_parameter WHERE key = 'standin.fail_start'"
before=$(prod_state)
t2=$(scalar "SELECT id FROM ops.queue_restore_test(1, 'production')")
wait_status "$t2" failed 180
scalar "SELECT error FROM ops.runs WHERE id = $t2" | has "restore_test/20-check" \
  || fail "restore test $t2 failed elsewhere: $(scalar "SELECT error FROM ops.runs WHERE id = $t2")"
[ "$(result "$t2" restore_test,healthy)" = false ] || fail "restore test $t2 is not recorded unhealthy: $(result "$t2" restore_test)"
[ "$(result "$t2" restore_test,backup_id)" = "$bad" ] || fail "restore test $t2 tested backup $(result "$t2" restore_test,backup_id), not $bad"
[ -z "$(leftovers)" ] || fail "databases left behind by the failed restore test $t2: $(leftovers)"
scalar "SELECT ops.evaluate_alerts()" >/dev/null
alert=$(scalar "SELECT severity || ' ' || (details ->> 'run_id') FROM ops.alerts
                 WHERE kind = 'restore_test_failed' AND status = 'open'
                   AND environment_id = (SELECT id FROM ops.environments WHERE name = 'production')")
[ "$alert" = "critical $t2" ] || fail "no alert for the failed restore test $t2: '$alert'"
prod_ok "$t2"
say "restore test $t2 of backup $bad failed its health check: alert raised, throwaway database gone, production untouched"
say "OK"
