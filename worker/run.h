// One claimed run, from start_run to finish_run: its context, its steps, its
// events, its artifacts and its result. Every write is fenced by
// (worker_id, attempt); a refused write (OD003) stops the run at once.
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "config.h"
#include "db.h"
#include "step_runner.h"

namespace odooops::worker {

// Buffers output lines and sends them in order with ops.append_events.
class EventSink {
 public:
  EventSink(Db& db, long long run_id, int attempt, const Config& cfg);
  void add(nlohmann::json event);
  // Sends what is buffered if the batch is full, the flush interval passed, or `force`.
  void flush(bool force = false);
  bool lease_lost() const { return lease_lost_; }
  const std::string& lost_reason() const { return lost_reason_; }
  long long sent() const { return sent_; }

 private:
  Db& db_;
  long long run_id_;
  int attempt_;
  const Config& cfg_;
  std::vector<nlohmann::json> pending_;
  std::chrono::steady_clock::time_point last_flush_;
  bool lease_lost_ = false;
  std::string lost_reason_;
  long long sent_ = 0;
};

class RunExecution {
 public:
  enum class Outcome { Succeeded, Failed, HandedBack, LeaseLost };
  // `interrupt` is polled while steps run: a non-empty answer hands the run
  // back to the queue (drain).
  RunExecution(Db& db, const Config& cfg, long long run_id, int attempt,
               std::function<std::string()> interrupt);
  Outcome execute();

 private:
  void load_context();
  void export_backup_to_restore(const std::string& refusal_suffix);
  void plan_run_backup(const std::string& workflow);
  bool record_run_backup(const std::string& step, std::string& refusal);
  std::map<std::string, std::string> step_environment(const std::string& step_name,
                                                      int index) const;
  std::vector<std::string> list_steps(std::string& dir_out) const;
  bool heartbeat();
  StepOutcome run_step(const std::string& path, const std::string& step, int index,
                       std::string& last_stderr);
  bool run_failure_hooks(const std::string& steps_dir, const std::string& failed_step,
                         const std::string& error);
  void event(const std::string& level, const std::string& message, const std::string& step = {},
             const nlohmann::json& payload = nlohmann::json::object());
  void handle_line(const std::string& step, const char* stream, std::string_view line);
  void record_artifact(const std::string& step, nlohmann::json artifact);
  Outcome fail(const std::string& error);
  Outcome succeed();
  Outcome hand_back(const std::string& reason);
  bool stale(const DbError& e);

  Db& db_;
  const Config& cfg_;
  long long run_id_;
  int attempt_;
  std::function<std::string()> interrupt_;
  EventSink events_;
  std::string worker_;
  std::map<std::string, std::string> ctx_;  // run, project, environment columns
  nlohmann::json run_metadata_, env_settings_, project_settings_;
  nlohmann::json result_ = nlohmann::json::object();
  nlohmann::json artifacts_ = nlohmann::json::array();
  std::map<std::string, std::string> exported_;   // ::odooops::env
  std::map<std::string, std::string> extra_env_;  // backup/restore context
  std::string workspace_, env_dir_, runtime_;
  // The backup a production deploy, restore or destroy takes first of what
  // it replaces or removes (ops.record_run_backup names its type:
  // pre_deploy, pre_restore, final): where it goes is chosen by the worker,
  // not the steps; the prefix is empty once recorded or when none is taken.
  // A required one that was taken but cannot be verified or recorded fails
  // the run before anything is replaced.
  struct RunBackup {
    std::string type, prefix;
    bool required = false;
  } run_backup_;
  RuntimeValues runtime_values_;  // runtime, odoo-bin, addons, image of this run
  std::chrono::steady_clock::time_point last_heartbeat_;
  bool lease_lost_ = false;
};

}  // namespace odooops::worker
