// The scheduler background worker: fires backup schedules (each slot once),
// requeues stale runs, expires approvals, evaluates alerts, applies backup
// retention, artifact and caught mail expiry, destroys expired development and preview
// environments, prunes webhook history and keeps run_events partitions.
// Every task is one SQL function (70_schedules.sql, 72_alerts.sql,
// 74_webhooks.sql) run in its own short transaction; the worker only
// decides when. It sleeps on its latch until the next schedule slot or
// task, at most odooops.scheduler_naptime, and is woken when schedules
// change. Nothing it does is left half-done by a crash: every task commits
// or rolls back as a whole, so a restart needs no recovery step.
#include <algorithm>
#include <string>

#include "../extension/api/settings.h"
#include "worker.h"

extern "C" {
#include "postgres.h"

#include "fmgr.h"
#include "storage/ipc.h"
}

namespace odooops::bgw {
namespace {

struct Task {
  const char* name;
  const int* interval_s;
  int64_t due_ms;  // monotonic; 0: at once
};

std::string stale_sql() {
  return "SELECT count(*)::bigint FROM ops.requeue_stale_runs(" +
         std::to_string(settings::claim_timeout_s) + ")";
}

std::string alerts_sql() {
  return "SELECT (opened + resolved)::bigint FROM ops.evaluate_alerts(" +
         std::to_string(settings::backpressure_threshold) + ", " +
         std::to_string(settings::agent_timeout_s) + ")";
}

std::string partitions_sql() {
  return "SELECT (ops.ensure_run_event_partitions(" +
         std::to_string(settings::run_events_months_ahead) +
         ") + ops.drop_old_run_event_partitions(" +
         std::to_string(settings::run_events_retention_months) + "))::bigint";
}

std::string prune_sql() {
  return "SELECT ops.prune_webhook_history(" + std::to_string(settings::webhook_response_ttl_s) +
         ", " + std::to_string(settings::webhook_retention_s) + ")::bigint";
}

std::string caught_mails_sql() {
  return "SELECT ops.expire_caught_mails(" + std::to_string(settings::caught_mail_ttl_s) + ", " +
         std::to_string(settings::caught_mail_box_count) + ", " +
         std::to_string(int64_t{settings::caught_mail_box_kb} * 1024) + ")::bigint";
}

void run_task(const char* name, const std::string& sql) {
  in_transaction(name, [&]() { query_int64(sql.c_str()); });
}

void scheduler_loop() {
  start_worker(Worker::Scheduler, "scheduler");
  Task stale{"requeue stale runs", &settings::stale_check_interval_s, 0};
  Task alerts{"evaluate alerts", &settings::alert_interval_s, 0};
  Task retention{"retention", &settings::retention_interval_s, 0};
  Task partitions{"run_events partitions", &settings::partition_interval_s, 0};
  Task* tasks[] = {&stale, &alerts, &retention, &partitions};

  while (!shutdown_requested()) {
    reload_if_requested();
    if (!extension_ready()) {
      sleep_ms(settings::scheduler_naptime_ms);
      continue;
    }
    // Schedules first: their slots are the time-critical part.
    std::optional<int64_t> next_slot_ms;
    in_transaction("fire backup schedules",
                   [&]() { query_int64("SELECT ops.fire_due_backup_schedules()::bigint"); });
    in_transaction("next schedule slot",
                   [&]() { next_slot_ms = query_int64("SELECT ops._next_schedule_due_ms()"); });

    int64_t now = now_ms();
    for (Task* t : tasks) {
      if (now < t->due_ms) continue;
      if (t == &stale) run_task(t->name, stale_sql());
      if (t == &alerts) {
        run_task("expire approvals", "SELECT ops.expire_approvals()::bigint");
        run_task(t->name, alerts_sql());
      }
      if (t == &retention) {
        run_task("expire backups", "SELECT ops.expire_backups()::bigint");
        run_task("expire artifacts", "SELECT ops.expire_artifacts()::bigint");
        run_task("expire environments", "SELECT ops.expire_environments()::bigint");
        run_task("prune webhook history", prune_sql());
        run_task("expire caught mails", caught_mails_sql());
      }
      if (t == &partitions) run_task(t->name, partitions_sql());
      now = now_ms();
      t->due_ms = now + int64_t{*t->interval_s} * 1000;
    }

    int64_t sleep = settings::scheduler_naptime_ms;
    if (next_slot_ms) sleep = std::min(sleep, *next_slot_ms + 5);
    for (Task* t : tasks) sleep = std::min(sleep, t->due_ms - now);
    sleep_ms(std::max<int64_t>(sleep, 0));
  }
}

}  // namespace
}  // namespace odooops::bgw

extern "C" {
PGDLLEXPORT void odooops_scheduler_main(Datum arg);

void odooops_scheduler_main(Datum) {
  odooops::bgw::run_main("scheduler", odooops::bgw::scheduler_loop);
}
}
