// Server settings (GUCs) under the reserved prefix "odooops.". Defined in
// _PG_init; read by the SQL functions and the background workers.
// docs/background-workers.md documents the worker settings.
#pragma once

namespace odooops::settings {

// run queue
extern int requeue_backoff_base_seconds;  // odooops.requeue_backoff_base
extern int requeue_backoff_max_seconds;   // odooops.requeue_backoff_max
extern int restart_lease_grace_seconds;   // odooops.restart_lease_grace

// projects
extern char* repo_url_schemes;  // odooops.repo_url_schemes

// artifacts
extern int artifact_ttl_seconds;    // odooops.artifact_ttl
extern int manual_backups_per_day;  // odooops.manual_backups_per_day

// background workers: lifecycle
extern char* database;              // odooops.database
extern bool scheduler_enabled;      // odooops.scheduler_enabled
extern bool dispatcher_enabled;     // odooops.dispatcher_enabled
extern int worker_restart_seconds;  // odooops.worker_restart_interval

// scheduler
extern int scheduler_naptime_ms;         // odooops.scheduler_naptime
extern int stale_check_interval_s;       // odooops.stale_check_interval
extern int claim_timeout_s;              // odooops.claim_timeout
extern int alert_interval_s;             // odooops.alert_interval
extern int backpressure_threshold;       // odooops.queue_backpressure_threshold
extern int agent_timeout_s;              // odooops.agent_heartbeat_timeout
extern int retention_interval_s;         // odooops.retention_interval
extern int caught_mail_ttl_s;            // odooops.caught_mail_ttl
extern int caught_mail_box_count;        // odooops.caught_mail_box_count
extern int caught_mail_box_kb;           // odooops.caught_mail_box_size
extern int partition_interval_s;         // odooops.partition_interval
extern int run_events_months_ahead;      // odooops.run_events_months_ahead
extern int run_events_retention_months;  // odooops.run_events_retention_months

// dispatcher
extern int dispatcher_concurrency;      // odooops.dispatcher_concurrency
extern int webhook_host_concurrency;    // odooops.webhook_host_concurrency
extern int dispatcher_batch_size;       // odooops.dispatcher_batch_size
extern int dispatcher_naptime_ms;       // odooops.dispatcher_naptime
extern int webhook_connect_timeout_ms;  // odooops.webhook_connect_timeout
extern int webhook_timeout_ms;          // odooops.webhook_timeout
extern int webhook_max_attempts;        // odooops.webhook_max_attempts
extern int webhook_retry_base_ms;       // odooops.webhook_retry_base
extern int webhook_retry_max_ms;        // odooops.webhook_retry_max
extern int webhook_response_max_bytes;  // odooops.webhook_response_max_bytes
extern int webhook_response_ttl_s;      // odooops.webhook_response_ttl
extern int webhook_retention_s;         // odooops.webhook_retention

void define();

}  // namespace odooops::settings
