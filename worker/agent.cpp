#include "agent.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <iostream>
#include <thread>

#include "run.h"

using nlohmann::json;

namespace odooops::worker {
namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

int g_pipe[2] = {-1, -1};
volatile sig_atomic_t g_terms = 0;

void on_signal(int) {
  int saved = errno;
  g_terms = g_terms + 1;
  if (g_pipe[1] >= 0) (void)!write(g_pipe[1], "x", 1);
  errno = saved;
}

std::string pg_array(const std::vector<std::string>& items) {
  std::string out = "{";
  for (size_t i = 0; i < items.size(); ++i)
    out += (i ? "," : "") + std::string("\"") + items[i] + "\"";
  return out + "}";
}

int level_rank(const std::string& l) {
  return l == "debug" ? 0 : l == "info" ? 1 : l == "warning" ? 2 : 3;
}

}  // namespace

Signals& signals() {
  static Signals s;
  s.terms = g_terms;
  return s;
}

void Signals::drain_pipe() {
  char buf[64];
  while (g_pipe[0] >= 0 && read(g_pipe[0], buf, sizeof buf) > 0) {
  }
}

void install_signal_handlers() {
  if (pipe2(g_pipe, O_CLOEXEC | O_NONBLOCK) != 0) throw std::runtime_error("pipe2 failed");
  struct sigaction sa = {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
  signals().wake_fd = g_pipe[0];
}

Agent::Agent(Config cfg) : cfg_(std::move(cfg)), db_(cfg_.dsn) {}

void Agent::log(const std::string& level, const std::string& message) const {
  if (level_rank(level) < level_rank(cfg_.log_level)) return;
  std::cerr << "odooops-worker[" << cfg_.worker_id << "] " << level << ": " << message << std::endl;
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
  log("info", "registered (kinds " + pg_array(cfg_.kinds) +
                  (cfg_.team.empty() ? "" : ", team " + cfg_.team) + "); steps from " +
                  cfg_.steps_dir + ", state in " + cfg_.state_dir);
}

void Agent::agent_heartbeat() {
  Rows r = db_.exec("SELECT ops.agent_heartbeat($1) AS status", {cfg_.worker_id});
  last_agent_heartbeat_ = Clock::now();
  if (!r.empty() && r.text(0, "status") == "disabled")
    log("warning", "this worker is disabled in ops.agents");
}

void Agent::set_status(const std::string& status) {
  try {
    db_.exec("SELECT ops.set_agent_status($1, $2)", {cfg_.worker_id, status});
  } catch (const DbError& e) {
    log("warning", "cannot set the agent status to " + status + ": " + e.what());
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

void Agent::execute(const Claim& c) {
  log("info", "claimed run " + std::to_string(c.run_id) + " (" + c.workflow + ", attempt " +
                  std::to_string(c.attempt) + ")");
  auto interrupt = [this]() -> std::string {
    Signals& s = signals();
    s.drain_pipe();
    if (s.terms > 0 && !draining_) {
      draining_ = true;
      drain_deadline_ =
          Clock::now() + std::chrono::milliseconds(static_cast<long>(cfg_.drain_grace * 1000));
      log("info", "SIGTERM: draining; the current run may take " +
                      std::to_string(static_cast<int>(cfg_.drain_grace)) + " s more");
      set_status("draining");
    }
    if (s.terms > 1) return "second SIGTERM";
    if (draining_ && Clock::now() >= drain_deadline_) return "the drain grace period expired";
    return {};
  };
  RunExecution run(db_, cfg_, c.run_id, c.attempt, interrupt);
  RunExecution::Outcome o;
  try {
    o = run.execute();
  } catch (const DbError& e) {
    log("error", "run " + std::to_string(c.run_id) + ": " + e.what() +
                     " (the lease expires and the run is requeued)");
    return;
  } catch (const std::exception& e) {
    log("error", "run " + std::to_string(c.run_id) + ": internal error: " + e.what() +
                     " (the lease expires and the run is requeued)");
    return;
  }
  const char* names[] = {"succeeded", "failed", "handed back to the queue",
                         "lost (lease taken away; nothing written)"};
  log(o == RunExecution::Outcome::Succeeded ? "info" : "warning",
      "run " + std::to_string(c.run_id) + " " + names[static_cast<int>(o)]);
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

int Agent::run() {
  prune_workspaces(cfg_.state_dir);
  const std::string channel = cfg_.listen ? "odooops_runs" : "";
  for (int tries = 0;; ++tries) {
    try {
      db_.connect(channel);
      register_agent();
      break;
    } catch (const DbError& e) {
      if (e.sqlstate == "42501") {
        // Retrying cannot help: the login may not act as this worker id.
        log("error", std::string(e.what()) + " (run with a --worker-id bound to this login in " +
                         "ops.worker_logins)");
        return 2;
      }
      if (tries >= 4 || signals().terms > 0) {
        log("error", e.what());
        return 2;
      }
      log("warning", std::string(e.what()) + "; retrying");
      std::this_thread::sleep_for(std::chrono::seconds(1 << tries));
    }
  }
  auto idle_since = Clock::now();
  bool check_now = true;
  int backoff = 1;
  int runs_done = 0;
  while (true) {
    Signals& s = signals();
    s.drain_pipe();
    if (s.terms > 0) break;
    try {
      if (!db_.connected()) db_.connect(channel);
      if (since(last_agent_heartbeat_) >= std::min(30.0, cfg_.heartbeat_interval))
        agent_heartbeat();
      if (cfg_.rescue && since(last_rescue_) >= std::min(10.0, cfg_.poll_interval * 2)) {
        last_rescue_ = Clock::now();
        Rows r = db_.exec("SELECT count(*) AS n FROM ops.requeue_expired_runs(100)");
        if (!r.empty() && r.text(0, "n") != "0") {
          log("info", "requeued " + r.text(0, "n") + " run(s) whose lease expired");
          check_now = true;
        }
      }
      Claim c;
      if (check_now && claim(c)) {
        execute(c);
        ++runs_done;
        idle_since = Clock::now();
        if (cfg_.once || draining_) break;
        continue;  // more work may be waiting
      }
      check_now = false;
      backoff = 1;
      if (cfg_.exit_when_idle > 0 && since(idle_since) >= cfg_.exit_when_idle) {
        log("info",
            "idle for " + std::to_string(static_cast<int>(cfg_.exit_when_idle)) + " s; exiting");
        break;
      }
      double wait = cfg_.poll_interval;
      if (cfg_.exit_when_idle > 0) wait = std::min(wait, cfg_.exit_when_idle);
      db_.wait_notification(wait, s.wake_fd);
      check_now = true;  // a notification, the poll interval, or a signal
    } catch (const DbError& e) {
      log("warning", std::string("control plane: ") + e.what() + "; retrying in " +
                         std::to_string(backoff) + " s");
      db_.close();
      std::this_thread::sleep_for(std::chrono::seconds(backoff));
      backoff = std::min(backoff * 2, 30);
      check_now = true;
    }
  }
  if (signals().terms > 0) log("info", "drained after " + std::to_string(runs_done) + " run(s)");
  set_status("offline");
  return 0;
}

}  // namespace odooops::worker
