// One claimed run, from start_run to finish_run: its context, its steps, its
// events, its artifacts and its result. Every write is fenced by
// (worker_id, attempt); a refused write (OD003) stops the run at once.
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "config.h"
#include "db.h"
#include "log.h"
#include "retry.h"
#include "spool.h"
#include "step_runner.h"

namespace odooops::worker {

// The run attempt's output: each event is numbered and written to the
// spool (spool.h), then sent in order with ops.append_events, which stores
// each number once. A failed call is tried again after a backoff delay
// while the run goes on; a line the server refuses is found (the batch is
// halved) and replaced by a warning with its number.
class EventSink {
 public:
  EventSink(Db& db, long long run_id, int attempt, const Config& cfg);
  void add(nlohmann::json event);
  // Sends what is spooled if a batch is full, the flush interval passed, or
  // `force`; not before the retry delay of a failed call has passed.
  void flush(bool force = false);
  bool lease_lost() const { return lease_lost_; }
  const std::string& lost_reason() const { return lost_reason_; }
  long long sent() const { return sent_; }
  // Everything added was stored.
  bool empty() const { return spool_.empty(); }
  std::size_t pending() const { return spool_.pending(); }
  unsigned long long pending_bytes() const { return spool_.pending_bytes(); }
  // Seconds until the next try after a failed call (0: none failed).
  double retry_wait_s() const;
  // errno of the last spool write the disk refused (0: none).
  int disk_error() const { return disk_error_; }

 private:
  bool send_batch();

  Db& db_;
  long long run_id_;
  int attempt_;
  const Config& cfg_;
  Spool spool_;
  long long next_seq_ = 0;
  std::size_t batch_limit_;
  // A refused line's replacement (a warning with its number), sent in its place.
  std::string head_override_;
  RetryTimer retry_;
  RepeatedMessage failures_;
  std::chrono::steady_clock::time_point last_flush_;
  bool lease_lost_ = false;
  std::string lost_reason_;
  long long sent_ = 0;
  int disk_error_ = 0;
};

// What a run needs from the agent running it.
struct RunHooks {
  // Polled while steps run and while a result waits to be recorded: a
  // non-empty answer hands the run back to the queue (drain) or gives up.
  std::function<std::string()> interrupt;
  // The agent's row is gone (ops.agent_heartbeat answered NULL).
  std::function<void()> reregister;
};

// Where an environment's runtime is and how it runs, as a step of a run of
// that environment sees it; a session in the environment (session.cpp)
// gets the same. `ctx` holds the columns the worker reads from
// ops.run_context or ops.redeem_session: workflow, project, project_id,
// environment, environment_id, stage, production_branch, repo_url,
// repo_url_schemes, git_sha, git_ref, db_name, runtime_profile.
struct EnvironmentPlace {
  const std::map<std::string, std::string>& ctx;
  const RuntimeValues& runtime;
  const std::string& env_dir;
  const std::string& workspace;
  std::optional<int> http_port, websocket_port, next_http_port, next_websocket_port;
  const nlohmann::json& run_metadata;
  const nlohmann::json& env_settings;
  const nlohmann::json& project_settings;
  const nlohmann::json& result;
};

// The variables of that environment (worker/README.md, "Environment of a
// step"): a few of the worker's own (PATH, HOME, proxies, ...), the
// storage settings file, and the environment's context; never the control
// plane's connection. A run adds the run's and the step's own.
std::map<std::string, std::string> environment_variables(const Config& cfg,
                                                         const EnvironmentPlace& place);

class RunExecution {
 public:
  // Abandoned: the result could not be recorded before the worker was told
  // to stop; the lease expires and the run is requeued.
  enum class Outcome { Succeeded, Failed, HandedBack, LeaseLost, Abandoned };
  RunExecution(Db& db, const Config& cfg, long long run_id, int attempt, RunHooks hooks);
  Outcome execute();

 private:
  enum class Recorded { Yes, LeaseLost, GaveUp };
  // Delivers every spooled event, then makes `call`; both are tried again
  // while the control plane is away or refuses for a reason that can pass
  // (DbError::transient), keeping the lease meanwhile, until `call`
  // succeeds, the server says the lease is gone, or hooks.interrupt says
  // stop. Any other error is thrown. `what` names the call in messages.
  Recorded record(const std::string& what, const std::function<void()>& call);
  // Why the worker's own disk stops this run ("" while it has room).
  std::string disk_problem();
  void load_context(const Rows& rows);
  void export_backup_to_restore(const std::string& refusal_suffix);
  void plan_run_backup(const std::string& workflow);
  void choose_http_port(const std::string& workflow);
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
  // Back to the queue: at once (drain) or, for the worker's full disk,
  // claimable after --disk-retry-delay.
  Outcome hand_back(const std::string& reason, double retry_after = 0);
  Outcome outcome_of(Recorded r, Outcome done) const;
  bool stale(const DbError& e);

  Db& db_;
  const Config& cfg_;
  long long run_id_;
  int attempt_;
  RunHooks hooks_;
  EventSink events_;
  std::string worker_;
  std::map<std::string, std::string> ctx_;  // run, project, environment columns
  nlohmann::json run_metadata_, env_settings_, project_settings_;
  nlohmann::json result_ = nlohmann::json::object();
  nlohmann::json artifacts_ = nlohmann::json::array();
  std::map<std::string, std::string> exported_;   // ::odooops::env
  std::map<std::string, std::string> extra_env_;  // backup/restore context
  std::string workspace_, env_dir_, runtime_;
  std::optional<int> http_port_;            // the environment's port on this host (http_ports.h)
  std::optional<int> websocket_port_;       // its Odoo's websocket (gevent) port
  std::optional<int> next_http_port_;       // behind the proxy: the new Odoo of a redeploy
  std::optional<int> next_websocket_port_;  // and its websocket port
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
  RepeatedMessage heartbeat_failures_{60};
  std::chrono::steady_clock::time_point last_disk_check_{};
  std::string disk_problem_;  // set once the disk stopped the run
  bool lease_lost_ = false;
};

}  // namespace odooops::worker
