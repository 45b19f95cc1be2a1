#!/usr/bin/env bash
# The webhook dispatcher against a real HTTP receiver on loopback
# (tests/harness/webhook_receiver.py), with the library preloaded:
#  1. formats: signed generic JSON, Slack, commit statuses of GitHub,
#     GitLab, Gitea and Bitbucket (each host's path, token header, states);
#  2. failing endpoints (500, timeout, dropped connection): retries follow
#     the exponential backoff with jitter, then the delivery is dead, and a
#     re-drive delivers it; a flaky endpoint succeeds on attempt 3;
#  3. chaos: a burst of 3,000 deliveries to a slow endpoint while the
#     dispatcher is killed with SIGKILL and the postmaster restarted
#     (immediate mode): every delivery arrives, signed, at least once;
#  4. the receiver is down for 20 s ("several minutes", scaled down with
#     odooops.webhook_retry_max = 2 s): everything arrives once it is back.
set -euo pipefail
cd "$(dirname "$0")/../.."
TEST_NAME=bgw_webhooks
DB=odooops_bgw_webhooks
source tests/harness/bgw_lib.sh

WORK=$(mktemp -d /tmp/odooops-bgw-webhooks.XXXXXX)
chmod 755 "$WORK"
RECV_PID=
start_receiver() {
  python3 tests/harness/webhook_receiver.py --port "${1:-0}" --secret s3cret --log "$WORK/received.log" \
    --port-file "$WORK/port" &
  RECV_PID=$!
  for _ in $(seq 50); do [ -s "$WORK/port" ] && break; sleep 0.1; done
  PORT=$(cat "$WORK/port")
}
stop_receiver() { [ -n "$RECV_PID" ] && kill "$RECV_PID" 2>/dev/null; wait "$RECV_PID" 2>/dev/null || true; RECV_PID=; }
cleanup() { stop_receiver; reset_cluster; [ -n "${KEEP_TEST_DIR:-}" ] || rm -rf "$WORK"; }
trap cleanup EXIT

start_receiver 0
note "receiver on 127.0.0.1:$PORT"

qp "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1
qp "CREATE DATABASE $DB"
q "CREATE EXTENSION odooops" >/dev/null
use_database dispatcher_concurrency=64 webhook_retry_base=400ms webhook_retry_max=2s \
  webhook_timeout=1s webhook_connect_timeout=500ms webhook_max_attempts=4 worker_restart_interval=1 \
  dispatcher_naptime=60s
wait_for "SELECT count(*) = 2 FROM pg_stat_activity WHERE backend_type LIKE 'odooops %' AND datname = current_database()" 20 \
  || fail "workers did not start in $DB"

q "INSERT INTO ops.projects (slug, name, repo_full_name) VALUES ('acme', 'Acme', 'acme/shop');
   INSERT INTO ops.environments (project_id, name, stage, db_name) VALUES (1, 'staging', 'staging', 'acme_st');"
URL=http://127.0.0.1:$PORT

# --- 1. formats -------------------------------------------------------------
q "INSERT INTO ops.webhook_subscriptions (name, url, format, event_types) VALUES
     ('json', '$URL/ok', 'json', '{run.queued,run.finished}'),
     ('slack', '$URL/ok', 'slack', '{run.finished}'),
     ('github', '$URL', 'github', '{run.queued,run.finished}'),
     ('gitlab', '$URL/gl', 'gitlab', '{run.queued,run.finished}'),
     ('gitea', '$URL/gt/', 'gitea', '{run.queued,run.finished}'),
     ('bitbucket', '$URL/bb', 'bitbucket', '{run.queued,run.finished}');
   INSERT INTO ops.webhook_secrets VALUES (1, 's3cret'), (3, 'gh-token'), (4, 'gl-token'), (5, 'gt-token'), (6, 'bb-token');
   INSERT INTO ops.project_git_hosts (project_id, host, repository) VALUES
     (1, 'gitlab', 'acme/sub/shop'), (1, 'gitea', 'acme/shop'), (1, 'bitbucket', 'acme/shop');" >/dev/null
sleep 1   # the idle dispatcher is now asleep for up to odooops.dispatcher_naptime = 60 s
t0=$(date +%s%N)
q "SELECT ops.queue_run(1, 'staging', 'a1b2c3d4', 'main', '{}', 'build')" >/dev/null
q "SELECT ops.cancel_run(1, 'test')" >/dev/null
wait_for "SELECT count(*) = 11 AND bool_and(status = 'delivered') FROM ops.webhook_deliveries" 15 \
  || { q "SELECT id, status, last_error FROM ops.webhook_deliveries"; fail "format deliveries not delivered"; }
wake_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[ "$wake_ms" -lt 3000 ] || fail "deliveries took $wake_ms ms: the commit did not wake the dispatcher"
note "woken on commit: 11 deliveries delivered $wake_ms ms after the commits (naptime 60 s)"
sleep 0.5
python3 - "$WORK/received.log" <<'PY' || fail "format checks"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
gh = [r for r in rows if r["path"].startswith("/repos/")]
assert len(gh) == 2, gh
assert all(r["path"] == "/repos/acme/shop/statuses/a1b2c3d4" and r["auth"] == "Bearer gh-token" for r in gh), gh
assert [r["state"] for r in gh] == ["pending", "error"], gh
def host(prefix, path, states, check):
    got = [r for r in rows if r["path"].startswith(prefix)]
    assert [r["path"] for r in got] == [path, path], got
    assert [r["state"] for r in got] == states, got
    assert all(check(r) for r in got), got
host("/gl/", "/gl/projects/acme%2Fsub%2Fshop/statuses/a1b2c3d4", ["pending", "canceled"],
     lambda r: r["private_token"] == "gl-token" and r["auth"] is None)
host("/gt/", "/gt/repos/acme/shop/statuses/a1b2c3d4", ["pending", "error"],
     lambda r: r["auth"] == "token gt-token")
host("/bb/", "/bb/repositories/acme/shop/commit/a1b2c3d4/statuses/build", ["INPROGRESS", "STOPPED"],
     lambda r: r["auth"] == "Bearer bb-token")
signed = [r for r in rows if r["sig_ok"] is True]
assert len(signed) == 2, rows
PY
note "formats OK: signed JSON x2, Slack x1, commit statuses x2 each for GitHub, GitLab, Gitea, Bitbucket with their tokens"

# SIGTERM stops the dispatcher promptly; the postmaster restarts it.
pid=$(worker_pid dispatcher)
t0=$(date +%s%N)
kill -TERM "$pid"
while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
stop_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[ "$stop_ms" -lt 2000 ] || fail "dispatcher took $stop_ms ms to stop on SIGTERM"
wait_for "SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'odooops dispatcher'" 10 || fail "dispatcher not restarted"
note "SIGTERM: dispatcher $pid stopped in $stop_ms ms and was restarted as $(worker_pid dispatcher)"

# --- 2. failing endpoints, backoff, dead, re-drive --------------------------
q "UPDATE ops.webhook_subscriptions SET active = false;
   INSERT INTO ops.webhook_subscriptions (name, url, event_types) VALUES
     ('e500', '$URL/status/500', '{run.queued}'), ('timeout', '$URL/timeout', '{run.queued}'),
     ('drop', '$URL/drop', '{run.queued}'), ('flaky', '$URL/flaky/2', '{run.queued}');
   INSERT INTO ops.webhook_secrets SELECT id, 's3cret' FROM ops.webhook_subscriptions WHERE name IN ('e500', 'flaky');" >/dev/null
q "SELECT ops.queue_run(1, 'staging', 'b1b2c3d4', 'main', '{}', 'build')" >/dev/null
wait_for "SELECT count(*) = 4 AND bool_and(d.status IN ('dead', 'delivered')) FROM ops.webhook_deliveries d
           JOIN ops.webhook_subscriptions s ON s.id = d.subscription_id WHERE s.name IN ('e500','timeout','drop','flaky')" 30 \
  || { q "SELECT s.name, d.status, d.attempts, d.last_error FROM ops.webhook_deliveries d JOIN ops.webhook_subscriptions s ON s.id = d.subscription_id"; fail "failing endpoints did not settle"; }
q "SELECT s.name || ': ' || d.status || ' after ' || d.attempts || ' attempts; ' || coalesce(d.last_error, 'ok')
     FROM ops.webhook_deliveries d JOIN ops.webhook_subscriptions s ON s.id = d.subscription_id
    WHERE s.name IN ('e500','timeout','drop','flaky') ORDER BY s.id" | sed "s/^/$TEST_NAME:   /"
bad=$(q "SELECT count(*) FROM ops.webhook_deliveries d JOIN ops.webhook_subscriptions s ON s.id = d.subscription_id
          WHERE (s.name IN ('e500','timeout','drop') AND (d.status <> 'dead' OR d.attempts <> 4))
             OR (s.name = 'flaky' AND (d.status <> 'delivered' OR d.attempts <> 3))")
[ "$bad" = 0 ] || fail "unexpected outcome for failing endpoints"
# Retry n waits backoff_delay(n) in [base*2^(n-1)/2, base*2^(n-1)] after the
# attempt was recorded: check the gaps between attempt starts of the 500s.
gaps=$(q "SELECT string_agg(round(gap)::text, ',' ORDER BY attempt) FROM (
            SELECT a.attempt, extract(epoch FROM a.started_at - lag(a.started_at) OVER (ORDER BY a.attempt)) * 1000 AS gap
              FROM ops.webhook_delivery_attempts a JOIN ops.webhook_deliveries d ON d.id = a.delivery_id
              JOIN ops.webhook_subscriptions s ON s.id = d.subscription_id WHERE s.name = 'e500') g WHERE gap IS NOT NULL")
note "500 endpoint: gaps between attempts ${gaps} ms (expected within 200-400+, 400-800+, 800-1600+)"
IFS=, read -r g1 g2 g3 <<<"$gaps"
[ "$g1" -ge 200 ] && [ "$g1" -le 700 ] && [ "$g2" -ge 400 ] && [ "$g2" -le 1100 ] && [ "$g3" -ge 800 ] && [ "$g3" -le 1900 ] \
  || fail "retry gaps $gaps do not follow the backoff"
timeouts=$(q "SELECT count(*) FROM ops.webhook_delivery_attempts a JOIN ops.webhook_deliveries d ON d.id = a.delivery_id
               JOIN ops.webhook_subscriptions s ON s.id = d.subscription_id
              WHERE s.name = 'timeout' AND a.error LIKE 'Timeout%' AND a.latency_ms BETWEEN 900 AND 1500")
[ "$timeouts" = 4 ] || fail "timeout attempts not recorded as timeouts ($timeouts)"
q "UPDATE ops.webhook_subscriptions SET url = '$URL/ok' WHERE name = 'e500'" >/dev/null
[ "$(q "SELECT ops.redrive_webhook_deliveries((SELECT id FROM ops.webhook_subscriptions WHERE name = 'e500'))")" = 1 ] \
  || fail "re-drive"
wait_for "SELECT status = 'delivered' FROM ops.webhook_deliveries d JOIN ops.webhook_subscriptions s ON s.id = d.subscription_id WHERE s.name = 'e500'" 10 \
  || fail "re-driven delivery not delivered"
note "failing endpoints OK: 500/timeout/drop dead after 4 attempts, flaky delivered on attempt 3, backoff gaps OK, re-drive delivered"

# --- 3. chaos: SIGKILL of the dispatcher and an immediate restart mid-burst --
q "UPDATE ops.webhook_subscriptions SET active = false;
   INSERT INTO ops.webhook_subscriptions (name, url, event_types) VALUES ('burst', '$URL/slow/50', '{run.queued}');
   INSERT INTO ops.webhook_secrets SELECT id, 's3cret' FROM ops.webhook_subscriptions WHERE name = 'burst';" >/dev/null
qp "ALTER SYSTEM SET odooops.dispatcher_concurrency = 16" && qp "SELECT pg_reload_conf()" >/dev/null
for _ in $(seq 50); do grep -q "concurrency 16 (setting 16" "$PGHOST/server.log" && break; sleep 0.1; done
grep -q "concurrency 16 (setting 16" "$PGHOST/server.log" || fail "SIGHUP did not reconfigure the dispatcher"
note "SIGHUP: dispatcher reconfigured to 16 requests in flight"
: >"$WORK/received.log"
q "SELECT count(*) FROM (SELECT ops.queue_run(1, 'staging', 'c0ffee00', 'main', '{}', 'build', 0, 'burst-' || i)
                          FROM generate_series(1, 3000) i) x" >/dev/null
sleep 2
pid=$(worker_pid dispatcher)
[ -n "$pid" ] || fail "no dispatcher"
so_far=$(q "SELECT count(*) FROM ops.webhook_deliveries d JOIN ops.webhook_subscriptions s ON s.id = d.subscription_id WHERE s.name = 'burst' AND d.status = 'delivered'")
kill -9 "$pid"
note "burst: SIGKILL to dispatcher $pid after 2 s ($so_far of 3000 delivered so far; the postmaster reinitialises)"
sleep 4
wait_for "SELECT count(*) > 0 FROM pg_stat_activity WHERE backend_type = 'odooops dispatcher'" 30 || fail "dispatcher not back after SIGKILL"
sleep 2
pg_restart immediate
note "burst: postmaster restarted (immediate) 8 s in"
wait_for "SELECT count(*) FILTER (WHERE status = 'delivered') = count(*) FROM ops.webhook_deliveries d
           JOIN ops.webhook_subscriptions s ON s.id = d.subscription_id WHERE s.name = 'burst'" 90 \
  || { q "SELECT status, count(*) FROM ops.webhook_deliveries GROUP BY 1"; fail "burst not fully delivered"; }
sleep 0.5
expected=$(q "SELECT string_agg(d.id::text, ',') FROM ops.webhook_deliveries d JOIN ops.webhook_subscriptions s ON s.id = d.subscription_id WHERE s.name = 'burst'")
python3 - "$WORK/received.log" "$expected" <<'PY' || fail "burst deliveries missing at the receiver"
import json, sys
want = set(sys.argv[2].split(","))
got, dup, bad = set(), 0, 0
for line in open(sys.argv[1]):
    r = json.loads(line)
    if not r["path"].startswith("/slow/"):
        continue
    if r["sig_ok"] is not True:
        bad += 1
    if r["delivery"] in got:
        dup += 1
    got.add(r["delivery"])
missing = want - got
print(f"bgw_webhooks: burst: {len(want)} deliveries, {len(want & got)} received with valid signatures, "
      f"{dup} duplicates (at-least-once), {bad} bad signatures, {len(missing)} missing")
sys.exit(1 if missing or bad else 0)
PY

# --- 4. the receiver is down for 20 s ----------------------------------------
q "UPDATE ops.webhook_subscriptions SET active = false;
   INSERT INTO ops.webhook_subscriptions (name, url, event_types, max_attempts) VALUES ('outage', '$URL/ok', '{run.queued}', 100);
   INSERT INTO ops.webhook_secrets SELECT id, 's3cret' FROM ops.webhook_subscriptions WHERE name = 'outage';" >/dev/null
stop_receiver
: >"$WORK/received.log"
q "SELECT count(*) FROM (SELECT ops.queue_run(1, 'staging', 'dead0000', 'main', '{}', 'build', 0, 'outage-' || i)
                          FROM generate_series(1, 300) i) x" >/dev/null
sleep 20
attempts=$(q "SELECT coalesce(max(attempts), 0) FROM ops.webhook_deliveries d JOIN ops.webhook_subscriptions s ON s.id = d.subscription_id WHERE s.name = 'outage'")
delivered=$(q "SELECT count(*) FROM ops.webhook_deliveries d JOIN ops.webhook_subscriptions s ON s.id = d.subscription_id WHERE s.name = 'outage' AND status = 'delivered'")
[ "$delivered" = 0 ] || fail "delivered while the receiver was down?"
start_receiver "$PORT"
wait_for "SELECT count(*) FILTER (WHERE status = 'delivered') = 300 FROM ops.webhook_deliveries d
           JOIN ops.webhook_subscriptions s ON s.id = d.subscription_id WHERE s.name = 'outage'" 30 \
  || fail "not everything delivered after the outage"
sleep 0.5
received=$(python3 -c "import json,sys; print(len({json.loads(l)['delivery'] for l in open(sys.argv[1]) if json.loads(l)['sig_ok']}))" "$WORK/received.log")
[ "$received" = 300 ] || fail "receiver saw $received distinct signed deliveries, expected 300"
note "outage OK: 300 deliveries retried up to $attempts times during 20 s down, all 300 received once back"

# --- 5. one receiver hangs: the others are served meanwhile --------------------
# 'hang' never answers (each request holds a slot until the 5 s timeout),
# 'healthy' answers after 50 ms; both get 100 deliveries at once, with 64
# requests in flight in all. The two URLs name the receiver by different
# hosts (localhost, 127.0.0.1), so the per-host limit tells them apart.
# Without a per-host limit the hanging host's requests take every slot and
# healthy deliveries wait a whole timeout for one to free; with at most 32
# per host none of them waits that long. (How far below the timeout they
# stay is for bench/webhook_bench.sh: a loaded test machine slows them.)
HANG_TIMEOUT_MS=5000
hanging_case() {  # hanging_case HOST_CAP -> "p99_ms max_ms" of the healthy deliveries
  qp "ALTER SYSTEM SET odooops.dispatcher_concurrency = 64" && qp "ALTER SYSTEM SET odooops.webhook_host_concurrency = $1" &&
    qp "ALTER SYSTEM SET odooops.webhook_timeout = '${HANG_TIMEOUT_MS}ms'" && qp "SELECT pg_reload_conf()" >/dev/null
  sleep 0.5
  q "UPDATE ops.webhook_subscriptions SET active = false;
     INSERT INTO ops.webhook_subscriptions (name, url, event_types, max_attempts) VALUES
       ('hang-$1', 'http://localhost:$PORT/timeout', '{run.queued}', 2), ('healthy-$1', '$URL/slow/50', '{run.queued}', 2);" >/dev/null
  q "SELECT count(*) FROM (SELECT ops.queue_run(1, 'staging', 'beef0000', 'main', '{}', 'build', 0, 'hang-$1-' || i)
                            FROM generate_series(1, 100) i) x" >/dev/null
  wait_for "SELECT count(*) FILTER (WHERE d.status = 'delivered') = 100 FROM ops.webhook_deliveries d
             JOIN ops.webhook_subscriptions s ON s.id = d.subscription_id WHERE s.name = 'healthy-$1'" 90 \
    || fail "the healthy receiver's deliveries were not all delivered (host limit $1)"
  # The hanging receiver's requests end (dead after two timeouts) before
  # the next case: they hold slots of the dispatcher meanwhile.
  wait_for "SELECT bool_and(d.status = 'dead') FROM ops.webhook_deliveries d
             JOIN ops.webhook_subscriptions s ON s.id = d.subscription_id WHERE s.name = 'hang-$1'" 120 \
    || fail "the hanging receiver's deliveries did not end (host limit $1)"
  q "SELECT round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)) || ' ' || round(max(ms))
       FROM (SELECT extract(epoch FROM d.delivered_at - d.created_at) * 1000 AS ms
               FROM ops.webhook_deliveries d JOIN ops.webhook_subscriptions s ON s.id = d.subscription_id
              WHERE s.name = 'healthy-$1') x"
}
read -r p99_limited max_limited <<<"$(hanging_case 32)"
read -r p99_unlimited max_unlimited <<<"$(hanging_case 0)"
[ "$max_unlimited" -ge "$HANG_TIMEOUT_MS" ] ||
  fail "without a per-host limit the healthy deliveries should have waited for the hanging receiver's timeout (max $max_unlimited ms)"
[ "$max_limited" -lt "$HANG_TIMEOUT_MS" ] ||
  fail "with 32 requests per host, healthy deliveries still waited up to $max_limited ms (p99 $p99_limited ms) behind a hanging receiver"
note "hanging receiver: healthy p99 $p99_limited ms (max $max_limited) with 32 requests per host; $p99_unlimited ms (max $max_unlimited) without a per-host limit"
note "OK"
