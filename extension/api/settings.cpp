#include "settings.h"

#include <climits>
#include <cstdio>
#include <string>
#include <vector>

#include "../core/repo_url.h"

extern "C" {
#include "postgres.h"

#include "utils/guc.h"
}

namespace odooops::settings {

int requeue_backoff_base_seconds = 10;
int requeue_backoff_max_seconds = 600;
int restart_lease_grace_seconds = 60;

char* repo_url_schemes = nullptr;

int artifact_ttl_seconds = 30 * 86400;
int manual_backups_per_day = 5;

char* database = nullptr;
bool scheduler_enabled = true;
bool dispatcher_enabled = true;
int worker_restart_seconds = 5;

int scheduler_naptime_ms = 10000;
int stale_check_interval_s = 15;
int claim_timeout_s = 300;
int alert_interval_s = 15;
int backpressure_threshold = 50;
int agent_timeout_s = 120;
int retention_interval_s = 300;
int caught_mail_ttl_s = 7 * 86400;
int caught_mail_box_count = 1000;
int caught_mail_box_kb = 100 * 1024;
int partition_interval_s = 3600;
int run_events_months_ahead = 2;
int run_events_retention_months = 13;

int dispatcher_concurrency = 256;
int webhook_host_concurrency = 128;
int dispatcher_batch_size = 256;
int dispatcher_naptime_ms = 10000;
int webhook_connect_timeout_ms = 5000;
int webhook_timeout_ms = 10000;
int webhook_max_attempts = 12;
int webhook_retry_base_ms = 10000;
int webhook_retry_max_ms = 3600 * 1000;
int webhook_response_max_bytes = 1024;
int webhook_response_ttl_s = 7 * 86400;
int webhook_retention_s = 30 * 86400;

namespace {

void define_int(const char* name, const char* short_desc, const char* long_desc, int* var, int boot,
                int min, int max, GucContext context, int flags) {
  DefineCustomIntVariable(name, short_desc, long_desc, var, boot, min, max, context, flags, nullptr,
                          nullptr, nullptr);
}

// Refuses an allow-list with an unknown scheme before it takes effect. The
// C++ objects are gone before PostgreSQL is called (GUC_check_errdetail).
bool check_repo_url_schemes(char** newval, void**, GucSource) {
  char detail[256] = "";
  bool ok = false;
  try {
    std::vector<std::string> schemes;
    std::string error;
    ok = parse_repo_url_schemes(*newval ? *newval : "", schemes, error);
    if (!ok) snprintf(detail, sizeof detail, "%s", error.c_str());
  } catch (...) {
    snprintf(detail, sizeof detail, "out of memory");
  }
  if (!ok) GUC_check_errdetail("%s", detail);
  return ok;
}

}  // namespace

void define() {
  define_int("odooops.requeue_backoff_base",
             "Delay before a run whose lease expired may be claimed again.",
             "Doubles with every expired attempt, up to odooops.requeue_backoff_max.",
             &requeue_backoff_base_seconds, 10, 0, 86400, PGC_SUSET, GUC_UNIT_S);
  define_int("odooops.requeue_backoff_max",
             "Longest delay before a requeued run may be claimed again.", nullptr,
             &requeue_backoff_max_seconds, 600, 0, 7 * 86400, PGC_SUSET, GUC_UNIT_S);
  define_int("odooops.restart_lease_grace",
             "Time the holders of leases that expired while the server was down get to renew "
             "them after it starts or is promoted.",
             "Such a lease is not requeued before the server has accepted writes this long.",
             &restart_lease_grace_seconds, 60, 0, 86400, PGC_SUSET, GUC_UNIT_S);

  DefineCustomStringVariable(
      "odooops.repo_url_schemes",
      "Git transports a project's repo_url may use (https, http, ssh, git, file).",
      "Comma-separated. file covers file:// URLs and local paths on the worker's host; allow it "
      "only where every project may read every repository the workers can reach.",
      &repo_url_schemes, "https,ssh", PGC_SUSET, 0, check_repo_url_schemes, nullptr, nullptr);

  define_int("odooops.artifact_ttl",
             "How long a recorded artifact is kept before it expires and its object is deleted.",
             "ops.record_artifact sets expires_at to now() plus this unless the caller gives one; "
             "0 keeps artifacts until someone sets expires_at.",
             &artifact_ttl_seconds, 30 * 86400, 0, 3650 * 86400, PGC_SUSET, GUC_UNIT_S);

  define_int("odooops.manual_backups_per_day",
             "Manual backups an environment may take in 24 hours.",
             "An environment's settings.manual_backups_per_day may lower it, never raise it; "
             "0 allows none.",
             &manual_backups_per_day, 5, 0, 1000, PGC_SUSET, 0);

  DefineCustomStringVariable(
      "odooops.database", "Database in which the odooops background workers run.",
      "The extension must be created there; the workers wait while it is not. "
      "Changing it (reload) restarts the workers in the new database.",
      &database, "postgres", PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
  DefineCustomBoolVariable(
      "odooops.scheduler_enabled",
      "Starts the scheduler background worker (schedules, retention, stale runs, alerts).", nullptr,
      &scheduler_enabled, true, PGC_POSTMASTER, 0, nullptr, nullptr, nullptr);
  DefineCustomBoolVariable("odooops.dispatcher_enabled",
                           "Starts the webhook dispatcher background worker.", nullptr,
                           &dispatcher_enabled, true, PGC_POSTMASTER, 0, nullptr, nullptr, nullptr);
  define_int("odooops.worker_restart_interval",
             "Delay before the postmaster restarts a background worker that exited.", nullptr,
             &worker_restart_seconds, 5, 1, 3600, PGC_POSTMASTER, GUC_UNIT_S);

  define_int("odooops.scheduler_naptime", "Longest sleep of the scheduler between checks.",
             "It also wakes at the next schedule slot and when schedules change.",
             &scheduler_naptime_ms, 10000, 100, 3600 * 1000, PGC_SIGHUP, GUC_UNIT_MS);
  define_int("odooops.stale_check_interval", "How often the scheduler looks for stale runs.",
             nullptr, &stale_check_interval_s, 15, 1, 86400, PGC_SIGHUP, GUC_UNIT_S);
  define_int("odooops.claim_timeout",
             "A run claimed but not started for this long is treated as stale.", nullptr,
             &claim_timeout_s, 300, 1, 86400, PGC_SIGHUP, GUC_UNIT_S);
  define_int("odooops.alert_interval", "How often the scheduler evaluates alerts.", nullptr,
             &alert_interval_s, 15, 1, 86400, PGC_SIGHUP, GUC_UNIT_S);
  define_int("odooops.queue_backpressure_threshold",
             "Queued runs above which a queue_backpressure alert opens.", nullptr,
             &backpressure_threshold, 50, 0, 100000000, PGC_SIGHUP, 0);
  define_int("odooops.agent_heartbeat_timeout",
             "A worker silent for this long is marked offline and alerted on.", nullptr,
             &agent_timeout_s, 120, 1, 7 * 86400, PGC_SIGHUP, GUC_UNIT_S);
  define_int("odooops.retention_interval",
             "How often backup retention, artifact expiry and webhook history TTLs run.", nullptr,
             &retention_interval_s, 300, 1, 7 * 86400, PGC_SIGHUP, GUC_UNIT_S);
  define_int("odooops.caught_mail_ttl", "How long a mail caught outside production is kept.",
             "The scheduler's retention task deletes older caught mails.", &caught_mail_ttl_s,
             7 * 86400, 1, 3650 * 86400, PGC_SIGHUP, GUC_UNIT_S);
  define_int("odooops.caught_mail_box_count", "Caught mails kept per environment, the newest.",
             "The retention task deletes the older ones (0: none is kept).", &caught_mail_box_count,
             1000, 0, 1000000, PGC_SIGHUP, 0);
  define_int("odooops.caught_mail_box_size", "Size of the caught mails kept per environment.",
             "The retention task deletes the oldest caught mails beyond it.", &caught_mail_box_kb,
             100 * 1024, 0, INT_MAX, PGC_SIGHUP, GUC_UNIT_KB);
  define_int("odooops.partition_interval", "How often run_events partitions are maintained.",
             nullptr, &partition_interval_s, 3600, 1, 7 * 86400, PGC_SIGHUP, GUC_UNIT_S);
  define_int("odooops.run_events_months_ahead",
             "Monthly run_events partitions created ahead of time.", nullptr,
             &run_events_months_ahead, 2, 0, 60, PGC_SIGHUP, 0);
  define_int("odooops.run_events_retention_months",
             "run_events months kept before their partition is dropped (0: keep forever).", nullptr,
             &run_events_retention_months, 13, 0, 1200, PGC_SIGHUP, 0);

  define_int("odooops.dispatcher_concurrency", "Webhook requests in flight at once.",
             "Capped below the process's open-file limit.", &dispatcher_concurrency, 256, 1, 10000,
             PGC_SIGHUP, 0);
  define_int("odooops.webhook_host_concurrency",
             "Webhook requests in flight at once to one host (host:port of the URL).",
             "A receiver that hangs holds at most this many of the dispatcher's requests; the "
             "others keep being served. 0: no limit per host.",
             &webhook_host_concurrency, 128, 0, 10000, PGC_SIGHUP, 0);
  define_int("odooops.dispatcher_batch_size", "Deliveries claimed per transaction.", nullptr,
             &dispatcher_batch_size, 256, 1, 10000, PGC_SIGHUP, 0);
  define_int("odooops.dispatcher_naptime",
             "Longest sleep of an idle dispatcher (it wakes on commit of new deliveries).", nullptr,
             &dispatcher_naptime_ms, 10000, 10, 3600 * 1000, PGC_SIGHUP, GUC_UNIT_MS);
  define_int("odooops.webhook_connect_timeout", "Connect timeout of a webhook request.", nullptr,
             &webhook_connect_timeout_ms, 5000, 10, 600 * 1000, PGC_SIGHUP, GUC_UNIT_MS);
  define_int("odooops.webhook_timeout", "Total timeout of a webhook request.", nullptr,
             &webhook_timeout_ms, 10000, 10, 600 * 1000, PGC_SIGHUP, GUC_UNIT_MS);
  define_int("odooops.webhook_max_attempts",
             "Attempts before a delivery goes dead (a subscription may override it).", nullptr,
             &webhook_max_attempts, 12, 1, 100, PGC_SIGHUP, 0);
  define_int(
      "odooops.webhook_retry_base", "First retry delay of a failed delivery.",
      "Doubles per attempt up to odooops.webhook_retry_max, with jitter (half fixed, half random).",
      &webhook_retry_base_ms, 10000, 1, 86400 * 1000, PGC_SIGHUP, GUC_UNIT_MS);
  define_int("odooops.webhook_retry_max", "Longest retry delay of a failed delivery.", nullptr,
             &webhook_retry_max_ms, 3600 * 1000, 1, 7 * 86400 * 1000 / 7, PGC_SIGHUP, GUC_UNIT_MS);
  define_int("odooops.webhook_response_max_bytes", "Bytes of a response body kept per attempt.",
             nullptr, &webhook_response_max_bytes, 1024, 0, 65536, PGC_SIGHUP, GUC_UNIT_BYTE);
  define_int("odooops.webhook_response_ttl", "How long response bodies are kept.", nullptr,
             &webhook_response_ttl_s, 7 * 86400, 1, 3650 * 86400 / 10, PGC_SIGHUP, GUC_UNIT_S);
  define_int("odooops.webhook_retention", "How long delivered deliveries are kept.", nullptr,
             &webhook_retention_s, 30 * 86400, 1, 3650 * 86400 / 10, PGC_SIGHUP, GUC_UNIT_S);

#if PG_VERSION_NUM >= 150000
  MarkGUCPrefixReserved("odooops");
#else
  EmitWarningsOnPlaceholders("odooops");
#endif
}

}  // namespace odooops::settings
