#include "agent.h"

#include <sysexits.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include "disk.h"
#include "metrics.h"
#include "run.h"
#include "signals.h"
#include "spool.h"
#include "usage.h"
#include "validation.h"

using nlohmann::json;

namespace odooops::worker {
namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

std::string pg_array(const std::vector<std::string>& items) {
  std::string out = "{";
  for (size_t i = 0; i < items.size(); ++i)
    out += (i ? "," : "") + std::string("\"") + items[i] + "\"";
  return out + "}";
}

std::string seconds_text(double s) {
  char buf[32];
  snprintf(buf, sizeof buf, "%.1f", s);
  return buf;
}

std::string held_back_text(long held_back) {
  return held_back ? " (" + std::to_string(held_back) + " more since the last message)" : "";
}

// Workspaces of failed runs are kept for inspection; older than three days
// they go.
void prune_workspaces(const std::string& state_dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const auto cutoff = fs::file_time_type::clock::now() - std::chrono::hours(72);
  for (const auto& e : fs::directory_iterator(state_dir + "/workspaces", ec)) {
    if (e.is_directory(ec) && fs::last_write_time(e.path(), ec) < cutoff)
      fs::remove_all(e.path(), ec);
  }
}

}  // namespace

Agent::Agent(Config cfg)
    : cfg_(std::move(cfg)),
      db_(cfg_.dsn),
      cleanup_(db_, cfg_),
      downloads_(db_, cfg_),
      mail_(db_, cfg_),
      plane_retry_(1, 30),
      plane_failures_(60),
      disk_messages_(60) {
  // A signal ends a wait for the control plane at once; during a run only
  // the second SIGTERM does (the first one drains).
  db_.set_abort(signals().wake_fd, [this] {
    Signals& s = signals();
    s.drain_pipe();
    return in_run_ ? s.terms > 1 : s.terms > 0;
  });
}

void Agent::register_agent() {
  json labels = json::object();
  for (const auto& [k, v] : cfg_.labels) labels[k] = v;
  char host[256] = "";
  gethostname(host, sizeof host - 1);
  db_.exec("SELECT ops.register_agent($1, $2::text[], $3, $4::jsonb, $5, $6)",
           {cfg_.worker_id, pg_array(cfg_.kinds), cfg_.team.empty() ? Param() : Param(cfg_.team),
            labels.dump(), cfg_.version, std::string(host)});
  last_agent_heartbeat_ = Clock::now();
  health_reported_ = false;  // a new row starts healthy; say what this worker sees
  log(LogLevel::Info, "registered (kinds " + pg_array(cfg_.kinds) +
                          (cfg_.team.empty() ? "" : ", team " + cfg_.team) + "); steps from " +
                          cfg_.steps_dir + ", state in " + cfg_.state_dir);
}

void Agent::agent_heartbeat() {
  Rows r;
  try {
    r = db_.exec("SELECT ops.agent_heartbeat($1) AS status", {cfg_.worker_id});
  } catch (const DbError& e) {
    if (e.sqlstate != "OD002") throw;
    // Someone removed this worker's row: without it the worker is invisible
    // to operators and alerts.
    log(LogLevel::Warning, "this worker is not in ops.agents any more; registering again");
    register_agent();
    return;
  }
  last_agent_heartbeat_ = Clock::now();
  if (!r.empty() && r.text(0, "status") == "disabled")
    log(LogLevel::Warning, "this worker is disabled in ops.agents");
}

bool Agent::disk_has_room() {
  const auto space = disk_space(cfg_.state_dir);
  const bool short_of_space =
      space && disk_short(*space, static_cast<unsigned long long>(cfg_.min_free_bytes),
                          cfg_.min_free_percent);
  if (short_of_space) {
    const std::string detail = std::string(utf8_prefix(
        "disk full: state directory " + cfg_.state_dir + ": " + describe_space(*space), 1000));
    if (healthy_) health_reported_ = false;  // a change: say it once
    healthy_ = false;
    health_detail_ = detail;
    long held_back = 0;
    if (disk_messages_.due(monotonic_seconds(), held_back))
      log(LogLevel::Warning,
          detail + "; claiming nothing until space returns" + held_back_text(held_back));
  } else if (!healthy_) {
    healthy_ = true;
    health_detail_.clear();
    health_reported_ = false;
    disk_messages_.success();
    log(LogLevel::Info, "the state directory has room again; claiming again");
  }
  if (!health_reported_) report_health();
  return healthy_;
}

void Agent::report_health() {
  try {
    db_.exec("SELECT ops.set_agent_health($1, $2, $3)",
             {cfg_.worker_id, std::string(healthy_ ? "true" : "false"),
              health_detail_.empty() ? Param() : Param(health_detail_)});
  } catch (const DbError& e) {
    if (e.transient() && e.sqlstate != "42883") throw;  // tried again with the loop
    log(LogLevel::Warning, std::string("cannot report this worker's health: ") + e.what());
  }
  health_reported_ = true;
}

void Agent::report_usage(bool filestores) {
  last_usage_report_ = Clock::now();
  const auto space = disk_space(cfg_.state_dir);
  if (!usage_reports_ || !space) return;
  json sizes = json::object();
  if (filestores) {
    for (const auto& [env, bytes] : filestore_sizes(cfg_.state_dir)) sizes[env] = bytes;
  }
  try {
    db_.exec("SELECT ops.report_agent_usage($1, $2, $3, $4, $5::jsonb)",
             {cfg_.worker_id, cfg_.state_dir, std::to_string(space->total_bytes),
              std::to_string(space->available_bytes), sizes.dump()});
  } catch (const DbError& e) {
    if (e.sqlstate == "42883") {
      usage_reports_ = false;  // an older control plane: nothing to report to
      log(LogLevel::Info, "the control plane takes no disk use reports (ops.report_agent_usage)");
      return;
    }
    if (e.transient()) throw;  // tried again with the loop
    log(LogLevel::Warning, std::string("cannot report disk use: ") + e.what());
  }
}

void Agent::set_status(const std::string& status) {
  try {
    db_.exec("SELECT ops.set_agent_status($1, $2)", {cfg_.worker_id, status});
  } catch (const DbError& e) {
    log(LogLevel::Warning, "cannot set the agent status to " + status + ": " + e.what());
  }
}

bool Agent::claim(Claim& out) {
  Rows r = db_.exec("SELECT id, attempt, workflow FROM ops.claim_next_run($1, $2)",
                    {cfg_.worker_id, std::to_string(cfg_.lease_seconds)});
  if (r.empty()) return false;
  out.run_id = std::stoll(r.text(0, "id"));
  out.attempt = std::stoi(r.text(0, "attempt"));
  out.workflow = r.text(0, "workflow");
  return true;
}

std::string Agent::interrupt() {
  Signals& s = signals();
  s.drain_pipe();
  if (s.terms > 0 && !draining_) {
    draining_ = true;
    drain_deadline_ =
        Clock::now() + std::chrono::milliseconds(static_cast<long>(cfg_.drain_grace * 1000));
    log(LogLevel::Info, "SIGTERM: draining; the current run may take " +
                            std::to_string(static_cast<int>(cfg_.drain_grace)) + " s more");
    set_status("draining");
    metrics().set_draining(true);
  }
  if (s.terms > 1) return "second SIGTERM";
  if (draining_ && Clock::now() >= drain_deadline_) return "the drain grace period expired";
  return {};
}

void Agent::execute(const Claim& c) {
  log(LogLevel::Info, "claimed run " + std::to_string(c.run_id) + " (" + c.workflow + ", attempt " +
                          std::to_string(c.attempt) + ")");
  RunHooks hooks;
  hooks.interrupt = [this] { return interrupt(); };
  hooks.reregister = [this] {
    log(LogLevel::Warning, "this worker is not in ops.agents any more; registering again");
    try {
      register_agent();
    } catch (const DbError& e) {
      log(LogLevel::Warning, std::string("cannot register again yet: ") + e.what());
    }
  };
  RunExecution run(db_, cfg_, c.run_id, c.attempt, std::move(hooks));
  RunExecution::Outcome o;
  in_run_ = true;
  try {
    o = run.execute();
  } catch (const DbError& e) {
    in_run_ = false;
    metrics().run_finished("error");
    log(LogLevel::Error, "run " + std::to_string(c.run_id) + ": " + e.what() +
                             " (the lease expires and the run is requeued)");
    return;
  } catch (const std::exception& e) {
    in_run_ = false;
    metrics().run_finished("error");
    log(LogLevel::Error, "run " + std::to_string(c.run_id) + ": internal error: " + e.what() +
                             " (the lease expires and the run is requeued)");
    return;
  }
  in_run_ = false;
  // In the order of RunExecution::Outcome.
  const char* outcomes[] = {"succeeded", "failed", "handed_back", "lease_lost", "abandoned"};
  metrics().run_finished(outcomes[static_cast<int>(o)]);
  metrics().set_spool(0, 0);  // the run's spool is gone with it
  const char* names[] = {"succeeded", "failed", "handed back to the queue",
                         "lost (lease taken away; nothing written)",
                         "not recorded (the lease expires and the run is requeued)"};
  log(o == RunExecution::Outcome::Succeeded ? LogLevel::Info : LogLevel::Warning,
      "run " + std::to_string(c.run_id) + " " + names[static_cast<int>(o)]);
}

bool Agent::back_off(const DbError& e) {
  db_.close();
  const double now = monotonic_seconds();
  plane_retry_.failed(now);
  long held_back = 0;
  if (plane_failures_.due(now, held_back))
    log(LogLevel::Warning, std::string("control plane: ") + e.what() + "; trying again in " +
                               seconds_text(plane_retry_.last_delay_s()) + " s" +
                               held_back_text(held_back));
  return sleep_unless_signalled(plane_retry_.last_delay_s(), 0);
}

int Agent::start(const std::string& channel) {
  const auto t0 = Clock::now();
  while (signals().terms == 0) {
    try {
      db_.connect(channel);
      register_agent();
      if (const long failures = plane_failures_.success())
        log(LogLevel::Info,
            "reached the control plane after " + std::to_string(failures) + " failed tries");
      plane_retry_.succeeded();
      return -1;
    } catch (const DbError& e) {
      if (e.sqlstate == "42501") {
        // Retrying cannot help: the login may not act as this worker id.
        log(LogLevel::Error, std::string(e.what()) + " (run with a --worker-id bound to this " +
                                 "login in ops.worker_logins)");
        return EX_CONFIG;
      }
      if (!e.transient()) {
        log(LogLevel::Error,
            std::string("the control plane refused the registration: ") + e.what());
        return EX_CONFIG;
      }
      if (cfg_.startup_timeout > 0 && since(t0) >= cfg_.startup_timeout) {
        log(LogLevel::Error, "no control plane within --startup-timeout " +
                                 seconds_text(cfg_.startup_timeout) + " s: " + e.what());
        return EX_UNAVAILABLE;
      }
      if (!back_off(e)) break;
    }
  }
  log(LogLevel::Info, "stopped before reaching the control plane");
  return 0;
}

int Agent::run() {
  prune_workspaces(cfg_.state_dir);
  prune_spools(cfg_.state_dir);
  const std::string channel = cfg_.listen ? "odooops_runs" : "";
  if (const int rc = start(channel); rc >= 0) return rc;
  auto idle_since = Clock::now();
  bool check_now = true;
  int runs_done = 0;
  while (true) {
    Signals& s = signals();
    s.drain_pipe();
    if (s.terms > 0) break;
    try {
      if (!db_.connected()) db_.connect(channel);
      if (since(last_agent_heartbeat_) >= std::min(30.0, cfg_.heartbeat_interval))
        agent_heartbeat();
      const bool room = disk_has_room();
      if (cfg_.rescue && since(last_rescue_) >= std::min(10.0, cfg_.poll_interval * 2)) {
        last_rescue_ = Clock::now();
        Rows r = db_.exec("SELECT count(*) AS n FROM ops.requeue_expired_runs(100)");
        if (!r.empty() && r.text(0, "n") != "0") {
          log(LogLevel::Info, "requeued " + r.text(0, "n") + " run(s) whose lease expired");
          check_now = true;
        }
      }
      if (const long failures = plane_failures_.success()) {
        log(LogLevel::Info,
            "the control plane answers again after " + std::to_string(failures) + " failed tries");
        plane_retry_.succeeded();
      }
      Claim c;
      if (since(last_usage_report_) >= 900) report_usage(true);
      if (room && check_now && claim(c)) {
        execute(c);
        if (c.workflow == "deploy" || c.workflow == "restore" || c.workflow == "backup" ||
            c.workflow == "destroy")
          report_usage(true);
        ++runs_done;
        idle_since = Clock::now();
        if (cfg_.once || draining_) break;
        continue;  // more work may be waiting
      }
      check_now = false;
      // Between runs, mail the environments' catchers caught goes to the
      // control plane.
      if (!draining_) mail_.ingest_some();
      // Download links members asked for are signed before anything else
      // between runs: somebody waits for them.
      if (!draining_ && downloads_.due(monotonic_seconds()) &&
          downloads_.sign_some(monotonic_seconds()) > 0) {
        check_now = true;
        continue;
      }
      // No run is waiting: delete one expired object, then look for runs
      // again first, so that a deletion delays a run by one object at most.
      if (!draining_ && cleanup_.due(monotonic_seconds()) &&
          cleanup_.delete_one(monotonic_seconds())) {
        check_now = true;
        continue;
      }
      if (cfg_.exit_when_idle > 0 && since(idle_since) >= cfg_.exit_when_idle) {
        log(LogLevel::Info,
            "idle for " + std::to_string(static_cast<int>(cfg_.exit_when_idle)) + " s; exiting");
        break;
      }
      double wait = cfg_.poll_interval;
      if (cfg_.exit_when_idle > 0) wait = std::min(wait, cfg_.exit_when_idle);
      db_.wait_notification(wait, s.wake_fd);
      check_now = true;  // a notification, the poll interval, or a signal
    } catch (const DbError& e) {
      if (!back_off(e)) break;
      check_now = true;
    }
  }
  if (signals().terms > 0)
    log(LogLevel::Info, "drained after " + std::to_string(runs_done) + " run(s)");
  set_status("offline");
  return 0;
}

}  // namespace odooops::worker
