// The agent loop: register, heartbeat, wait (LISTEN with a polling
// fallback), claim, execute, finish with the fencing token; drain on SIGTERM.
// Between runs, when no run is waiting, it deletes expired objects from
// storage (storage_cleanup.h), one per turn of the loop.
// Without a control plane it waits with backoff, for ever (a service), and
// a SIGTERM ends it at any point; with its disk full it claims nothing.
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <memory>
#include <string>

#include "backup_download.h"
#include "caught_mail.h"
#include "config.h"
#include "db.h"
#include "log.h"
#include "retry.h"
#include "storage_cleanup.h"

namespace odooops::worker {

class Agent {
 public:
  explicit Agent(Config cfg);
  // Runs until drained, --once or --exit-when-idle; returns the exit code
  // (sysexits.h: 0, EX_UNAVAILABLE, EX_CONFIG).
  int run();

 private:
  struct Claim {
    long long run_id = 0;
    int attempt = 0;
    std::string workflow;
  };

  // Connects and registers, waiting for the control plane as long as it
  // takes (or --startup-timeout); returns -1 once registered, else the
  // exit code.
  int start(const std::string& channel);
  void register_agent();
  void agent_heartbeat();
  // Whether the state directory has room; reports a change of health.
  bool disk_has_room();
  void report_health();
  // ops.report_agent_usage: the state directory's disk, and with
  // `filestores` the size of each environment's filestore (usage.h).
  void report_usage(bool filestores);
  bool claim(Claim& out);
  void execute(const Claim& claim);
  void set_status(const std::string& status);
  // The control plane failed a call of the loop: wait before the next.
  // Returns false when a signal ended the wait.
  bool back_off(const DbError& e);
  // Drain bookkeeping for a run; a non-empty answer stops it.
  std::string interrupt();

  Config cfg_;
  Db db_;
  StorageCleanup cleanup_;
  BackupDownloads downloads_;
  CaughtMailIngest mail_;
  std::chrono::steady_clock::time_point last_agent_heartbeat_{};
  std::chrono::steady_clock::time_point last_rescue_{};
  std::chrono::steady_clock::time_point last_usage_report_{};
  bool usage_reports_ = true;  // false once the control plane lacks the function
  bool draining_ = false;
  std::chrono::steady_clock::time_point drain_deadline_{};
  bool in_run_ = false;
  // Health as this worker sees it, and whether the control plane has it.
  bool healthy_ = true;
  std::string health_detail_;
  bool health_reported_ = true;
  RetryTimer plane_retry_;
  RepeatedMessage plane_failures_;
  RepeatedMessage disk_messages_;
};

}  // namespace odooops::worker
